// Process image codec (docs/migration-image.md): a round trip of every
// field and of page runs at both levels, the byte layout against the spec
// (XXH3-64 recomputed with the library itself), streaming while bytes
// arrive, the writer's refusals, and a catalogue of malformed streams, each
// refused naming its cause; sweeps flip every byte and cut at every length.
#include "mosix/migrate/image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <tuple>

#include "common/zstd.h"

namespace mosix::migrate {
namespace {

using Bytes = std::vector<std::byte>;
using Chunk = std::pair<PageRun, Bytes>;

constexpr uint64_t k_base = 0x7f0000000000;  // where the test regions start
constexpr size_t k_head = 16;                // record head bytes (§2)

/// A meta with every field set and distinct, so a field written into
/// another's place shows.
ImageMeta full_meta() {
  uint64_t next = 0x5eed;
  auto v = [&] { return next += 0x1020304; };
  ImageMeta m;
  ImageHeader& h = m.header;
  h.xcr0 = v(), h.xsave_size = 832, h.cpu_features = k_cpu_avx2 | k_cpu_sha, h.vdso_hash = v();
  h.vdso_size = 8192, h.taken_unix_ms = -static_cast<int64_t>(v()), h.source_node = "node-7.cluster";
  CoreState& c = m.core;
  c.pid = 4242, c.comm = "worker";
  for (auto& r : c.regs) r = v();
  for (size_t i = 0; i < 832; ++i) c.xsave.push_back(static_cast<std::byte>(i * 7 + 1));
  c.sigmask = v(), c.pending = v();
  for (auto& s : c.sigactions) s = {v(), v(), v(), v()};
  for (auto& t : c.itimers) t = {static_cast<int64_t>(v()), -static_cast<int64_t>(v())};
  for (auto& l : c.rlimits) l = {v(), UINT64_MAX - v()};
  MmFields& mm = c.mm;
  for (auto* f : {&mm.start_code, &mm.end_code, &mm.start_data, &mm.end_data, &mm.start_brk, &mm.brk, &mm.start_stack,
                  &mm.arg_start, &mm.arg_end, &mm.env_start, &mm.env_end})
    *f = v();
  mm.auxv = {6, 4096, 25, v(), 0, 0}, mm.exe_path = "/usr/bin/worker";
  c.tid_address = v(), c.robust_list = v(), c.robust_len = 24, c.rseq = v(), c.rseq_len = 32;
  c.rseq_sig = 0x53053053, c.altstack_sp = v(), c.altstack_size = 65536, c.altstack_flags = -2;
  c.umask = 022, c.personality = v(), c.cwd = "/home/u/work dir";
  c.uids = {1000, 1001, 1002}, c.gids = {100, 101, 102}, c.groups = {4, 24, 27, 65534};
  m.files = {{0, FdKind::relayed, "", O_RDWR, 0, false, 1},
             {1, FdKind::relayed, "", O_WRONLY, 0, false, 1},
             {3, FdKind::regular, "/data/in.bin", O_RDONLY | O_NONBLOCK, 123456789, true, 0},
             {4, FdKind::directory, "/data", O_RDONLY, 0, true, 2},
             {9, FdKind::dev_null, "/dev/null", O_WRONLY | O_APPEND, 7, false, 0}};
  m.regions = {
      {k_base, k_base + 16 * k_page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, RegionKind::anonymous, 0, "[heap]"},
      {k_base + 32 * k_page_size, k_base + 64 * k_page_size, PROT_READ | PROT_EXEC, MAP_PRIVATE,
       RegionKind::file_private, 8192, "/usr/lib/libx.so"},
      {k_base + 80 * k_page_size, k_base + 82 * k_page_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, RegionKind::vdso, 0,
       "[vdso]"}};
  return m;
}

Bytes compressible(uint64_t pages, int seed) {
  Bytes b(pages * k_page_size);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>("process image "[(i + seed) % 14]);
  return b;
}
Bytes random_pages(uint64_t pages, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes b(pages * k_page_size);
  for (auto& x : b) x = static_cast<std::byte>(gen());
  return b;
}
/// Two runs: one that compresses (2 pages of the heap), one that does not.
std::vector<Chunk> sample_runs() { return {{{0, 0, 2}, compressible(2, 0)}, {{1, 3, 1}, random_pages(1, 1)}}; }

Bytes write_image(const ImageMeta& m, const std::vector<Chunk>& runs, int level) {
  Bytes out;
  ImageWriter w(
      [&out](std::span<const std::byte> b) -> mrc::Result<void> {
        out.insert(out.end(), b.begin(), b.end());
        return {};
      },
      level);
  EXPECT_TRUE(w.begin(m).has_value());
  for (const auto& [run, data] : runs) EXPECT_TRUE(w.pages(run, data).has_value());
  EXPECT_TRUE(w.finish().has_value());
  EXPECT_EQ(w.bytes_written(), out.size());
  return out;
}
Bytes valid() { return write_image(full_meta(), sample_runs(), 1); }

/// Reads `b` (which may grow between calls) at most `chunk` bytes per call.
ReadFn source(const Bytes& b, size_t chunk = SIZE_MAX) {
  auto at = std::make_shared<size_t>(0);
  return [&b, at, chunk](std::span<std::byte> out) -> mrc::Result<size_t> {
    size_t n = std::min({out.size(), b.size() - *at, chunk});
    if (n > 0) std::memcpy(out.data(), b.data() + *at, n);
    *at += n;
    return n;
  };
}

struct Image {
  ImageMeta meta;
  std::vector<Chunk> runs;
  uint64_t bytes_read = 0;
};
mrc::Result<Image> read_image(const Bytes& b, size_t chunk = SIZE_MAX) {
  ImageReader r(source(b, chunk));
  Image out;
  mrc::Result<ImageMeta> m = r.begin();
  if (!m) return tl::unexpected(m.error());
  out.meta = *m;
  for (;;) {
    Chunk run;
    mrc::Result<bool> more = r.next_pages(run.first, run.second);
    if (!more) return tl::unexpected(more.error());
    if (!*more) break;
    out.runs.push_back(std::move(run));
  }
  out.bytes_read = r.bytes_read();
  return out;
}

/// `b` must be refused with `code` and a message "image: ..." naming `cause`.
void expect_refused(const Bytes& b, const std::string& cause, int code = EINVAL) {
  mrc::Result<Image> r = read_image(b);
  ASSERT_FALSE(r.has_value()) << "accepted; expected a refusal naming: " << cause;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("image: ", 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(cause), std::string::npos) << r.error().message;
}

template <typename I>
I peek(const Bytes& b, size_t at) {
  I v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
template <typename I>
void poke(Bytes& b, size_t at, I v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

/// A record's head as found in a stream: `at` is the head's offset.
struct Rec {
  uint32_t type, flags;
  uint64_t length;
  size_t at;
  size_t payload() const { return at + k_head; }
  size_t end() const { return at + k_head + length; }
};
std::vector<Rec> records(const Bytes& b) {
  std::vector<Rec> out;
  for (size_t at = 8; at + k_head <= b.size(); at = out.back().end())
    out.push_back({peek<uint32_t>(b, at), peek<uint32_t>(b, at + 4), peek<uint64_t>(b, at + 8), at});
  return out;
}
enum : size_t { k_header, k_core, k_files, k_regions, k_pages0, k_pages1, k_end };  // indices in valid()

Bytes record(uint32_t type, uint32_t flags, const Bytes& payload) {
  Bytes b(k_head);
  poke(b, 0, type), poke(b, 4, flags), poke(b, 8, uint64_t{payload.size()});
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
Bytes pages_record(PageRun run, const Bytes& data, uint32_t flags) {
  Bytes p(20);
  poke(p, 0, run.region), poke(p, 4, run.first), poke(p, 12, run.count);
  p.insert(p.end(), data.begin(), data.end());
  return record(5, flags, p);
}
/// valid() up to its page records, then `tail`.
Bytes meta_then(const Bytes& tail) {
  Bytes b = valid();
  b.resize(records(b)[k_pages0].at);
  b.insert(b.end(), tail.begin(), tail.end());
  return b;
}

/// valid() with `v` written at byte `at`.
template <typename I>
Bytes poked(size_t at, I v) {
  Bytes b = valid();
  poke(b, at, v);
  return b;
}
size_t head_of(size_t rec) { return records(valid())[rec].at; }
size_t payload_of(size_t rec) { return records(valid())[rec].payload(); }
/// Offset of region 1 in REGIONS' payload: count, region 0 (40 bytes + "[heap]").
constexpr size_t k_region1 = 4 + 40 + 6;

auto tie(const PageRun& p) { return std::tie(p.region, p.first, p.count); }
auto tie(const FileDesc& f) { return std::tie(f.fd, f.kind, f.path, f.flags, f.offset, f.cloexec, f.share_id); }
auto tie(const Region& r) { return std::tie(r.start, r.end, r.prot, r.flags, r.kind, r.file_offset, r.path); }
auto tie(const ImageHeader& h) {
  return std::tie(h.version, h.machine, h.xcr0, h.xsave_size, h.cpu_features, h.vdso_hash, h.vdso_size, h.taken_unix_ms,
                  h.source_node);
}
auto tie(const CoreState& c) {
  return std::tie(c.pid, c.comm, c.regs, c.xsave, c.sigmask, c.pending, c.tid_address, c.robust_list, c.robust_len,
                  c.rseq, c.rseq_len, c.rseq_sig, c.altstack_sp, c.altstack_size, c.altstack_flags, c.umask,
                  c.personality, c.cwd, c.uids, c.gids, c.groups);
}
auto tie(const MmFields& m) {
  return std::tie(m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk, m.start_stack, m.arg_start,
                  m.arg_end, m.env_start, m.env_end, m.auxv, m.exe_path);
}

void expect_same(const ImageMeta& a, const ImageMeta& b) {
  EXPECT_EQ(tie(a.header), tie(b.header));
  const CoreState &x = a.core, &y = b.core;
  EXPECT_EQ(tie(x), tie(y));
  EXPECT_EQ(tie(x.mm), tie(y.mm));
  // Arrays of structs of u64/i64 only (no padding): every field compared.
  static_assert(sizeof(SigAction) == 32 && sizeof(ITimer) == 16 && sizeof(RLimit) == 16);
  EXPECT_EQ(std::memcmp(x.sigactions.data(), y.sigactions.data(), sizeof x.sigactions), 0);
  EXPECT_EQ(std::memcmp(x.itimers.data(), y.itimers.data(), sizeof x.itimers), 0);
  EXPECT_EQ(std::memcmp(x.rlimits.data(), y.rlimits.data(), sizeof x.rlimits), 0);
  ASSERT_EQ(a.files.size(), b.files.size());
  for (size_t f = 0; f < a.files.size(); ++f) EXPECT_EQ(tie(a.files[f]), tie(b.files[f])) << f;
  ASSERT_EQ(a.regions.size(), b.regions.size());
  for (size_t r = 0; r < a.regions.size(); ++r) EXPECT_EQ(tie(a.regions[r]), tie(b.regions[r])) << r;
}

// ---- round trips and layout ---------------------------------------------

TEST(Image, RoundTripsEveryMetaField) {
  ImageMeta in = full_meta();
  mrc::Result<Image> out = read_image(write_image(in, {}, 1));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  expect_same(in, out->meta);
  EXPECT_TRUE(out->runs.empty());
}
TEST(Image, RoundTripsPageRunsAtBothLevels) {
  std::vector<Chunk> in = {{{0, 0, 3}, compressible(3, 1)},
                           {{1, 30, 2}, random_pages(2, 2)},
                           {{0, 5, 1}, Bytes(k_page_size)},  // a zero page
                           {{1, 0, 30}, compressible(30, 3)}};
  for (int level : {0, 1}) {
    SCOPED_TRACE(level);
    Bytes b = write_image(full_meta(), in, level);
    mrc::Result<Image> out = read_image(b);
    ASSERT_TRUE(out.has_value()) << out.error().message;
    ASSERT_EQ(out->runs.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ(tie(out->runs[i].first), tie(in[i].first));
      EXPECT_TRUE(out->runs[i].second == in[i].second) << "run " << i;
    }
    EXPECT_EQ(out->bytes_read, b.size());
    std::vector<Rec> recs = records(b);
    ASSERT_EQ(recs.size(), 4 + in.size() + 1);
    std::vector<uint32_t> zstd_flags;  // per PAGES record
    for (size_t i = 4; i < 4 + in.size(); ++i) zstd_flags.push_back(recs[i].flags);
    // At level 1 the random run is stored raw: compressing it does not pay.
    EXPECT_EQ(zstd_flags, (level == 0 ? std::vector<uint32_t>{0, 0, 0, 0} : std::vector<uint32_t>{1, 0, 1, 1}));
  }
}
TEST(Image, RoundTripsAFullChunk) {
  std::vector<Chunk> in = {{{0, 0, 16}, compressible(16, 4)}};
  ImageMeta m = full_meta();
  m.regions[0].end = m.regions[0].start + 2 * k_pages_per_chunk * k_page_size;
  for (Region& r : std::span(m.regions).subspan(1))
    r.start += 2 * k_pages_per_chunk * k_page_size, r.end += 2 * k_pages_per_chunk * k_page_size;
  in.push_back({{0, k_pages_per_chunk, k_pages_per_chunk}, random_pages(k_pages_per_chunk, 5)});
  mrc::Result<Image> out = read_image(write_image(m, in, 1));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  ASSERT_EQ(out->runs.size(), 2u);
  EXPECT_TRUE(out->runs[1].second == in[1].second);
}
TEST(Image, ReReadImageIsWrittenByteForByte) {
  Bytes first = valid();
  mrc::Result<Image> out = read_image(first);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(write_image(out->meta, out->runs, 1) == first);
}
TEST(Image, LaysOutBytesAsSpecified) {
  Bytes b = valid();
  EXPECT_EQ(std::memcmp(b.data(), "MOSXIMG\n", 8), 0);
  EXPECT_EQ(peek<uint32_t>(b, 24), k_image_version);  // HEADER's first field, at a fixed offset
  EXPECT_EQ(peek<uint32_t>(b, 28), k_machine_x86_64);
  std::vector<Rec> recs = records(b);
  std::vector<uint32_t> types;
  for (const Rec& r : recs) types.push_back(r.type);
  EXPECT_EQ(types, (std::vector<uint32_t>{1, 2, 3, 4, 5, 5, 6}));
  EXPECT_EQ(recs[k_regions].flags | recs[k_core].flags | recs[k_end].flags, 0u);
  // CORE ends with the credentials: uids u32[3], gids u32[3], groups (u32 count, u32s).
  const Rec& core = recs[k_core];
  size_t creds = core.end() - (3 * 4 + 3 * 4 + 4 + 4 * 4);
  EXPECT_EQ(std::tuple(peek<uint32_t>(b, creds), peek<uint32_t>(b, creds + 8), peek<uint32_t>(b, creds + 12)),
            std::tuple(1000u, 1002u, 100u));
  EXPECT_EQ(peek<uint32_t>(b, creds + 24), 4u);
  EXPECT_EQ(peek<uint32_t>(b, creds + 28 + 12), 65534u);
  const Rec& pages = recs[k_pages0];  // run {0, 0, 2}: region u32, first u64, count u64
  EXPECT_EQ(std::tuple(peek<uint32_t>(b, pages.payload()), peek<uint64_t>(b, pages.payload() + 4),
                       peek<uint64_t>(b, pages.payload() + 12)),
            std::tuple(0u, uint64_t{0}, uint64_t{2}));
  EXPECT_EQ(peek<uint32_t>(b, pages.payload() + 20), 0xFD2FB528u);  // the data is a zstd frame
  EXPECT_EQ(recs[k_pages1].length, 20 + k_page_size);               // stored raw
  const Rec& end = recs[k_end];
  EXPECT_EQ(end.length, 16u);
  EXPECT_EQ(end.end(), b.size());
  EXPECT_EQ(peek<uint64_t>(b, end.payload()), end.at);
  EXPECT_EQ(peek<uint64_t>(b, end.payload() + 8), XXH3_64bits(b.data(), end.at));
}
TEST(Image, ReadsWhileBytesArriveInSmallPieces) {
  Bytes b = valid();
  for (size_t chunk : {1, 7, 4093}) {
    mrc::Result<Image> out = read_image(b, chunk);
    ASSERT_TRUE(out.has_value()) << chunk << ": " << out.error().message;
    EXPECT_EQ(out->bytes_read, b.size());
    EXPECT_TRUE(out->runs[1].second == sample_runs()[1].second);
  }
}
TEST(Image, HandsOutARunBeforeTheRestHasArrived) {
  Bytes full = valid();
  size_t first_run_end = records(full)[k_pages0].end();
  Bytes avail(full.begin(), full.begin() + first_run_end);
  ImageReader r(source(avail));
  ASSERT_TRUE(r.begin().has_value());
  Chunk run;
  mrc::Result<bool> more = r.next_pages(run.first, run.second);
  ASSERT_TRUE(more.has_value() && *more);
  EXPECT_TRUE(run.second == sample_runs()[0].second);
  EXPECT_EQ(r.bytes_read(), first_run_end);  // took nothing beyond the record
  avail.insert(avail.end(), full.begin() + first_run_end, full.end());
  more = r.next_pages(run.first, run.second);
  ASSERT_TRUE(more.has_value() && *more);
  for (int again = 0; again < 2; ++again) {  // the end, then false again: not an error
    more = r.next_pages(run.first, run.second);
    EXPECT_TRUE(more.has_value() && !*more);
  }
  EXPECT_EQ(r.bytes_read(), full.size());
}
TEST(Image, ReaderPassesDuplicatePagesOn) {
  std::vector<Chunk> in = {{{0, 0, 2}, compressible(2, 0)}, {{0, 1, 1}, random_pages(1, 9)}};
  mrc::Result<Image> out = read_image(write_image(full_meta(), in, 0));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->runs.size(), 2u);  // page 1 twice: the restore decides
}

// ---- the writer's refusals ----------------------------------------------

mrc::Error writer_refusal(const ImageMeta& m, const PageRun* run, size_t data_bytes, Bytes& out) {
  ImageWriter w([&out](std::span<const std::byte> b) -> mrc::Result<void> {
    out.insert(out.end(), b.begin(), b.end());
    return {};
  });
  mrc::Result<void> r = w.begin(m);
  if (r && run != nullptr) r = w.pages(*run, Bytes(data_bytes));
  EXPECT_FALSE(r.has_value());
  return r ? mrc::Error{} : r.error();
}
TEST(ImageWriter, RefusesRunsOutsideTheRegions) {
  ImageMeta m = full_meta();
  const std::pair<PageRun, std::string> cases[] = {
      {{3, 0, 1}, "region 3 out of range"}, {{0, 15, 2}, "outside region 0"},
      {{0, 0, 0}, "count 0 outside"},       {{0, 0, k_pages_per_chunk + 1}, "outside 1..1024"},
      {{2, 0, 1}, "is the vdso"},           {{0, UINT64_MAX, 2}, "outside region 0"}};
  for (const auto& [run, cause] : cases) {
    Bytes out;
    mrc::Error e = writer_refusal(m, &run, run.count * k_page_size, out);
    EXPECT_EQ(e.code, EINVAL);
    EXPECT_NE(e.message.find(cause), std::string::npos) << e.message;
  }
}
TEST(ImageWriter, RefusesDataOfTheWrongSize) {
  Bytes out;
  PageRun run{0, 0, 2};
  mrc::Error e = writer_refusal(full_meta(), &run, k_page_size, out);
  EXPECT_EQ(e.code, EINVAL);
  EXPECT_NE(e.message.find("4096 bytes of data for 2 pages"), std::string::npos) << e.message;
}
TEST(ImageWriter, RefusesMetaAReaderWouldRefuseAndWritesNothing) {
  const std::pair<std::function<void(ImageMeta&)>, std::string> cases[] = {
      {[](ImageMeta& m) { m.header.xsave_size = 512; }, "xsave of 832 bytes, the header says 512"},
      {[](ImageMeta& m) { m.header.version = 9; }, "version 9"},
      {[](ImageMeta& m) { m.regions[1].start += 1; }, "not page aligned"},
      {[](ImageMeta& m) { m.regions[1].start = m.regions[0].start; }, "overlaps"},
      {[](ImageMeta& m) { m.files[2].kind = FdKind{0}; }, "unknown kind 0"}};
  for (const auto& [spoil, cause] : cases) {
    ImageMeta m = full_meta();
    spoil(m);
    Bytes out;
    mrc::Error e = writer_refusal(m, nullptr, 0, out);
    EXPECT_EQ(e.code, EINVAL);
    EXPECT_NE(e.message.find(cause), std::string::npos) << e.message;
    EXPECT_TRUE(out.empty());
  }
}
TEST(ImageWriter, FailsEveryCallAfterTheSinkFailed) {
  int calls = 0;
  ImageWriter w([&calls](std::span<const std::byte>) -> mrc::Result<void> {
    if (++calls == 3) return mrc::fail(ENOSPC, "checkpoint: No space left on device");
    return {};
  });
  mrc::Result<void> r = w.begin(full_meta());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ENOSPC);
  EXPECT_NE(r.error().message.find("image: write: checkpoint: No space"), std::string::npos);
  EXPECT_FALSE(w.begin(full_meta()).has_value());
  EXPECT_EQ(calls, 3);  // the second begin() did not write
}

mrc::Result<void> discard(std::span<const std::byte>) { return {}; }
void finish_twice() {
  ImageWriter w(discard);
  (void)w.begin(full_meta());
  (void)w.finish();
  (void)w.finish();
}
TEST(ImageWriterDeathTest, AssertsOnCallsOutOfOrder) {
  EXPECT_DEATH((void)ImageWriter(discard).pages({0, 0, 1}, Bytes(k_page_size)), "between begin");
  EXPECT_DEATH(finish_twice(), "once, after begin");
}

// ---- malformed streams: one cause each ----------------------------------

TEST(ImageReader, RejectsBadMagic) { expect_refused(poked(3, 'Z'), "bad magic"); }
TEST(ImageReader, RejectsEmptyStream) { expect_refused({}, "truncated stream: magic ends after 0 of 8"); }
TEST(ImageReader, RejectsOtherVersionBeforeTheRestOfTheHeader) {
  Bytes b = valid();
  poke(b, 24, uint32_t{1});  // the layout before CORE had the credentials
  poke(b, 16, uint64_t{7});  // HEADER now too short for its fields: the version still decides
  expect_refused(b, "version 1, this reader knows only 2");
}
TEST(ImageReader, RejectsOtherMachine) {
  expect_refused(poked(payload_of(k_header) + 4, uint32_t{183}), "machine 183, not x86_64");  // aarch64
}
TEST(ImageReader, RejectsXsaveSizeNotMatchingHeader) {
  // version, machine, xcr0, then xsave_size
  expect_refused(poked(payload_of(k_header) + 16, uint32_t{1024}), "xsave of 832 bytes, the header says 1024");
}
TEST(ImageReader, RejectsUnknownRecordType) {
  expect_refused(poked(head_of(k_files), uint32_t{77}), "unknown record type 77");
}
TEST(ImageReader, RejectsRecordsOutOfOrder) {
  expect_refused(poked(head_of(k_core), uint32_t{3}), "out of order: expected CORE");
}
TEST(ImageReader, RejectsPagesBeforeRegions) {
  expect_refused(poked(head_of(k_regions), uint32_t{5}), "out of order: expected REGIONS");
}
TEST(ImageReader, RejectsMetadataRecordAmongPages) {
  expect_refused(poked(head_of(k_pages1), uint32_t{1}), "out of order: only PAGES and END follow REGIONS");
}
TEST(ImageReader, RejectsZstdFlagOnAMetadataRecord) {
  expect_refused(poked(head_of(k_core) + 4, uint32_t{1}), ": unknown flags 0x1");
}
TEST(ImageReader, RejectsOversizedRecordBeforeAllocating) {
  Bytes b = valid();
  Rec core = records(b)[k_core];
  poke(b, core.at + 8, uint64_t{1} << 62);
  ImageReader r(source(b));
  mrc::Result<ImageMeta> m = r.begin();
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message.find("length 4611686018427387904 exceeds the limit"), std::string::npos);
  EXPECT_EQ(r.bytes_read(), core.payload());  // not a byte of the payload was asked for
  poke(b, core.at + 8, k_max_record + 1);
  expect_refused(b, "exceeds the limit of 67108864 bytes");
}
TEST(ImageReader, RejectsStringLongerThanItsRecord) {
  // comm's length
  expect_refused(poked(payload_of(k_core) + 4, uint32_t{0xFFFFFF00}), "string of 4294967040 bytes longer than the");
}
TEST(ImageReader, RejectsEntryCountLongerThanItsRecord) {
  expect_refused(poked(payload_of(k_files), uint32_t{1000000}), "file list of 1000000 entries longer than the");
}
TEST(ImageReader, RejectsTrailingBytesInsideARecord) {
  Bytes b = valid();
  Rec header = records(b)[k_header];
  b.insert(b.begin() + header.end(), std::byte{0});
  poke(b, header.at + 8, header.length + 1);
  expect_refused(b, "record HEADER at byte 8: 1 trailing bytes after its last field");
}
TEST(ImageReader, RejectsUnknownFdKind) {
  // file 0: count, fd, then kind
  expect_refused(poked(payload_of(k_files) + 8, uint32_t{9}), "file 0 (fd 0): unknown kind 9");
}
TEST(ImageReader, RejectsBooleanOtherThanZeroOrOne) {
  // file 0's cloexec (its path is empty)
  expect_refused(poked(payload_of(k_files) + 28, uint8_t{2}), "boolean of value 2");
}
TEST(ImageReader, RejectsMisalignedRegion) {
  // region 0's end
  expect_refused(poked(payload_of(k_regions) + 4 + 8, k_base + 100),
                 "region 0 [0x7f0000000000, 0x7f0000000064): not page aligned");
}
TEST(ImageReader, RejectsReversedRegion) {
  expect_refused(poked(payload_of(k_regions) + 4 + 8, k_base - k_page_size), "empty or reversed");
}
TEST(ImageReader, RejectsOverlappingRegions) {
  expect_refused(poked(payload_of(k_regions) + k_region1, k_base + 8 * k_page_size), "overlaps or precedes region 0");
}
TEST(ImageReader, RejectsUnknownRegionKind) {
  expect_refused(poked(payload_of(k_regions) + 4 + 24, uint32_t{4}),
                 "region 0 [0x7f0000000000, 0x7f0000010000): unknown kind 4");
}
TEST(ImageReader, RejectsRunRegionOutOfRange) {
  expect_refused(poked(payload_of(k_pages1), uint32_t{3}), "region 3 out of range (3 regions)");
}
TEST(ImageReader, RejectsRunOutsideRegion) {
  // Region 1 has 32 pages; a first page of 2^64-1 must not wrap around.
  expect_refused(poked(payload_of(k_pages1) + 4, uint64_t{32}), "pages 32+1 outside region 1 (32 pages)");
  expect_refused(poked(payload_of(k_pages1) + 4, UINT64_MAX), "pages 18446744073709551615+1 outside region 1");
}
TEST(ImageReader, RejectsRunOfZeroPagesOrAboveAChunk) {
  expect_refused(poked(payload_of(k_pages1) + 12, uint64_t{0}), "count 0 outside 1..1024");
  expect_refused(poked(payload_of(k_pages1) + 12, k_pages_per_chunk + 1), "count 1025 outside 1..1024");
}
TEST(ImageReader, RejectsPagesOfTheVdso) {
  expect_refused(meta_then(pages_record({2, 0, 1}, Bytes(k_page_size), 0)), "region 2 is the vdso");
}
TEST(ImageReader, RejectsPageRecordShorterThanItsRun) {
  expect_refused(meta_then(record(5, 0, Bytes(12))), "record of 12 bytes, shorter than its 20-byte run");
}
TEST(ImageReader, RejectsRawDataNotMatchingTheCount) {
  expect_refused(meta_then(pages_record({0, 0, 2}, Bytes(k_page_size), 0)), "4096 bytes of page data for 2 pages");
}
TEST(ImageReader, RejectsCompressedDataNotSmallerThanRaw) {
  expect_refused(meta_then(pages_record({0, 0, 1}, Bytes(k_page_size), 1)), "compressed data of 4096 bytes");
}
TEST(ImageReader, RejectsFrameDecompressingToFewerBytes) {
  std::optional<Bytes> frame = mrc::zstd_compress_if_smaller(compressible(3, 0), 1);
  ASSERT_TRUE(frame.has_value());
  expect_refused(meta_then(pages_record({0, 0, 4}, *frame, 1)), "data decompresses to 12288 bytes, expected 16384");
}
TEST(ImageReader, RejectsFrameDeclaringMoreThanTheRun) {
  std::optional<Bytes> frame = mrc::zstd_compress_if_smaller(compressible(5, 0), 1);
  ASSERT_TRUE(frame.has_value());
  expect_refused(meta_then(pages_record({0, 0, 4}, *frame, 1)), "frame declares 20480 bytes, limit 16384");
}
TEST(ImageReader, RejectsCorruptFrame) {
  expect_refused(meta_then(pages_record({0, 0, 1}, Bytes(100, std::byte{0xAA}), 1)), "zstd: corrupt frame");
}
TEST(ImageReader, RejectsTruncatedPageRecord) {
  Bytes b = valid();
  b.resize(records(b)[k_pages1].payload() + 100);
  expect_refused(b, "truncated stream: record PAGES at byte");
  expect_refused(b, "payload ends after 100 of 4116 bytes");
}
TEST(ImageReader, RejectsStreamWithoutEnd) {
  Bytes b = valid();
  b.resize(records(b)[k_end].at);
  expect_refused(b, "without an END record");
}
TEST(ImageReader, RejectsChecksumMismatch) {
  Bytes b = valid();
  b[records(b)[k_pages1].payload() + 20 + 77] ^= std::byte{0x10};  // raw page data: only the checksum sees it
  expect_refused(b, "checksum mismatch");
}
TEST(ImageReader, RejectsTotalLengthMismatch) {
  Bytes b = valid();
  Rec end = records(b)[k_end];
  poke(b, end.payload(), uint64_t{end.at - 1});
  expect_refused(b, "length mismatch: the END record says");
}
TEST(ImageReader, RejectsEndRecordOfOtherLength) {
  Bytes b = valid();
  poke(b, records(b)[k_end].at + 8, uint64_t{24});
  b.resize(b.size() + 8);
  expect_refused(b, "length 24, an END record has 16");
}
TEST(ImageReader, RejectsTrailingBytesAfterEnd) {
  Bytes b = valid();
  b.push_back(std::byte{0});
  expect_refused(b, "trailing bytes after the END record");
}
TEST(ImageReader, RejectsRecordAfterEnd) {
  Bytes b = valid();
  Bytes again = pages_record({0, 0, 1}, Bytes(k_page_size), 0);
  b.insert(b.end(), again.begin(), again.end());
  expect_refused(b, "trailing bytes after the END record");
}
TEST(ImageReader, ReportsSourceFailureAsEioAndStaysFailed) {
  Bytes b = valid();
  size_t limit = records(b)[k_pages0].end();
  size_t at = 0;
  ImageReader r([&](std::span<std::byte> out) -> mrc::Result<size_t> {
    if (at >= limit) return mrc::fail(ECONNRESET, "recv: Connection reset by peer");
    size_t n = std::min(out.size(), limit - at);
    std::memcpy(out.data(), b.data() + at, n);
    at += n;
    return n;
  });
  ASSERT_TRUE(r.begin().has_value());
  Chunk run;
  ASSERT_TRUE(r.next_pages(run.first, run.second).has_value());
  mrc::Result<bool> more = r.next_pages(run.first, run.second);
  ASSERT_FALSE(more.has_value());
  EXPECT_EQ(more.error().code, EIO);
  EXPECT_EQ(more.error().message, "image: read: recv: Connection reset by peer");
  limit = b.size();  // the source recovers; the reader does not
  more = r.next_pages(run.first, run.second);
  ASSERT_FALSE(more.has_value());
  EXPECT_NE(more.error().message.find("refused earlier"), std::string::npos);
}

// ---- sweeps -------------------------------------------------------------

TEST(ImageReader, RefusesAFlippedByteAnywhere) {
  Bytes good = valid();
  ASSERT_TRUE(read_image(good).has_value());
  for (size_t at = 0; at < good.size(); ++at)
    for (std::byte mask : {std::byte{1} << (at % 8), std::byte{0xFF}}) {
      Bytes b = good;
      b[at] ^= mask;
      mrc::Result<Image> r = read_image(b);
      ASSERT_FALSE(r.has_value()) << "accepted with byte " << at << " of " << good.size() << " flipped";
      ASSERT_EQ(r.error().message.rfind("image: ", 0), 0u) << r.error().message;
    }
}
TEST(ImageReader, RefusesEveryTruncation) {
  Bytes good = valid();
  for (size_t n = 0; n < good.size(); ++n) {
    mrc::Result<Image> r = read_image(Bytes(good.begin(), good.begin() + n));
    ASSERT_FALSE(r.has_value()) << "accepted the first " << n << " bytes";
    ASSERT_NE(r.error().message.find("image: truncated stream"), std::string::npos) << n << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace mosix::migrate
