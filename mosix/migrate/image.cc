// The process image stream codec (docs/migration-image.md): ImageWriter
// frames the metadata and page runs into records and checksums them;
// ImageReader checks every length before allocating, every field's range
// and the checksum. Not the dump or the restore (dump.h, restore.h). The
// only file that includes <xxhash.h>.
#include "mosix/migrate/image.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <utility>

#include "common/le.h"
#include "common/zstd.h"

namespace mosix::migrate {
namespace {

using mrc::fail;
using Bytes = std::vector<std::byte>;
using std::to_string;

// Record types (docs/migration-image.md §3). 0 is none, so a zeroed stream is refused.
enum RecordType : uint32_t { k_rec_header = 1, k_rec_core, k_rec_files, k_rec_regions, k_rec_pages, k_rec_end };
constexpr uint32_t k_flag_zstd = 1u << 0;  // PAGES only: the page data is one zstd frame
constexpr size_t k_head_bytes = 16;        // record head: type u32, flags u32, length u64
constexpr size_t k_run_bytes = 20;         // PageRun: region u32, first u64, count u64
constexpr size_t k_end_bytes = 16;         // END: total u64, XXH3-64 u64
constexpr size_t k_file_min_bytes = 29;    // a FileDesc with an empty path
constexpr size_t k_region_min_bytes = 40;  // a Region with an empty path
// A record's buffer grows by this much as its bytes arrive, so a lying
// length costs what was really sent, not k_max_record (bytes).
constexpr size_t k_read_step = 1u << 20;

std::string type_name(uint32_t t) {
  static constexpr const char* k_names[] = {nullptr, "HEADER", "CORE", "FILES", "REGIONS", "PAGES", "END"};
  return t >= 1 && t <= k_rec_end ? k_names[t] : "type " + to_string(t);
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

XXH3_state_t* xxh(void* p) { return static_cast<XXH3_state_t*>(p); }

void* new_hash() {
  XXH3_state_t* s = XXH3_createState();
  if (s == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(s);
  return s;
}

// ---- field codec --------------------------------------------------------
// Each record's fields are listed once (the *_fields templates below) and
// walked by both Enc and Dec, so writer and reader cannot disagree.

class Enc {
 public:
  /// Integers as themselves, enums as u32, bools as one u8.
  template <typename... T>
  void num(const T&... v) {
    (one(v), ...);
  }
  void bytes(std::span<const std::byte> b) {
    num(static_cast<uint32_t>(b.size()));  // > 4 GiB cannot pass the k_max_record check anyway
    m_b.insert(m_b.end(), b.begin(), b.end());
  }
  void str(const std::string& s) { bytes(std::as_bytes(std::span(s))); }
  void u64s(const std::vector<uint64_t>& v) {
    num(static_cast<uint32_t>(v.size()));
    for (uint64_t x : v) num(x);
  }
  void u32s(const std::vector<uint32_t>& v) {
    num(static_cast<uint32_t>(v.size()));
    for (uint32_t x : v) num(x);
  }
  Bytes& out() { return m_b; }

 private:
  template <typename I>
  void one(const I& v) {
    if constexpr (std::is_enum_v<I>) {
      static_assert(std::is_same_v<std::underlying_type_t<I>, uint32_t>, "enums travel as u32");
      one(static_cast<uint32_t>(v));
    } else if constexpr (std::is_same_v<I, bool>) {
      one(static_cast<uint8_t>(v ? 1 : 0));
    } else {
      size_t at = m_b.size();
      m_b.resize(at + sizeof(I));
      mrc::put_le(m_b.data() + at, v);
    }
  }
  Bytes m_b;
};

/// Reads fields from one record's payload. The first problem sticks: later
/// reads yield zeros, and problem() names it.
class Dec {
 public:
  explicit Dec(std::span<const std::byte> b) : m_b(b) {}
  template <typename... T>
  void num(T&... v) {
    (one(v), ...);
  }
  void bytes(Bytes& v) {
    std::span<const std::byte> b = take_counted("byte string");
    v.assign(b.begin(), b.end());
  }
  void str(std::string& v) {
    std::span<const std::byte> b = take_counted("string");
    v.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  void u64s(std::vector<uint64_t>& v) {
    v.resize(count(8, "u64 vector"));
    for (uint64_t& x : v) num(x);
  }
  void u32s(std::vector<uint32_t>& v) {
    v.resize(count(4, "u32 vector"));
    for (uint32_t& x : v) num(x);
  }
  /// A u32 count of entries of at least `min_bytes` each, checked against
  /// what is left before the caller allocates them; 0 after an error.
  uint32_t count(size_t min_bytes, const char* what) {
    uint32_t n;
    num(n);
    bool ok = need(uint64_t{n} * min_bytes, [&] { return what + (" of " + to_string(n) + " entries"); });
    return ok ? n : 0;
  }
  /// The first problem, or the bytes the fields did not consume; "" if none.
  std::string problem() const {
    if (!m_err.empty()) return m_err;
    if (m_at != m_b.size()) return to_string(m_b.size() - m_at) + " trailing bytes after its last field";
    return {};
  }

 private:
  template <typename I>
  void one(I& v) {
    if constexpr (std::is_enum_v<I>) {
      uint32_t raw;
      one(raw);
      v = static_cast<I>(raw);  // its range is checked after the record (*_problem)
    } else if constexpr (std::is_same_v<I, bool>) {
      uint8_t raw;
      one(raw);
      if (raw > 1 && m_err.empty()) m_err = "boolean of value " + to_string(raw);
      v = raw == 1;
    } else {
      v = I{};
      if (!need(sizeof(I), [] { return to_string(sizeof(I)) + "-byte field"; })) return;
      v = mrc::get_le<I>(m_b.data() + m_at);
      m_at += sizeof(I);
    }
  }
  /// A u32 length, then that many bytes.
  std::span<const std::byte> take_counted(const char* what) {
    uint32_t n;
    num(n);
    if (!need(n, [&] { return what + (" of " + to_string(n) + " bytes"); })) return {};
    m_at += n;
    return m_b.subspan(m_at - n, n);
  }
  /// Whether `n` more bytes are there; if not, the problem, described by
  /// `what()` (only built then).
  template <typename What>
  bool need(uint64_t n, What what) {
    if (!m_err.empty()) return false;
    if (n <= m_b.size() - m_at) return true;
    m_err = what() + " longer than the " + to_string(m_b.size() - m_at) + " bytes left in the record";
    return false;
  }
  std::span<const std::byte> m_b;
  size_t m_at = 0;
  std::string m_err;
};

template <typename Ar, typename H>
void header_fields(Ar& a, H& h) {
  a.num(h.version);  // first in every version: a reader checks it before the rest
  a.num(h.machine, h.xcr0, h.xsave_size, h.cpu_features, h.vdso_hash, h.vdso_size, h.taken_unix_ms);
  a.str(h.source_node);
}

template <typename Ar, typename C>
void core_fields(Ar& a, C& c) {
  a.num(c.pid);
  a.str(c.comm);
  for (auto& r : c.regs) a.num(r);
  a.bytes(c.xsave);
  a.num(c.sigmask, c.pending);
  for (auto& s : c.sigactions) a.num(s.handler, s.flags, s.restorer, s.mask);
  for (auto& t : c.itimers) a.num(t.interval_us, t.value_us);
  for (auto& l : c.rlimits) a.num(l.cur, l.max);
  auto& m = c.mm;
  a.num(m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk, m.start_stack, m.arg_start, m.arg_end,
        m.env_start, m.env_end);
  a.u64s(m.auxv);
  a.str(m.exe_path);
  a.num(c.tid_address, c.robust_list, c.robust_len, c.rseq, c.rseq_len, c.rseq_sig, c.altstack_sp, c.altstack_size,
        c.altstack_flags, c.umask, c.personality);
  a.str(c.cwd);
  for (auto& u : c.uids) a.num(u);
  for (auto& g : c.gids) a.num(g);
  a.u32s(c.groups);
}

template <typename Ar, typename F>
void file_fields(Ar& a, F& f) {
  a.num(f.fd, f.kind);
  a.str(f.path);
  a.num(f.flags, f.offset, f.cloexec, f.share_id);
}

template <typename Ar, typename R>
void region_fields(Ar& a, R& r) {
  a.num(r.start, r.end, r.prot, r.flags, r.kind, r.file_offset);
  a.str(r.path);
}

template <typename Ar, typename P>
void run_fields(Ar& a, P& p) {
  a.num(p.region, p.first, p.count);
}

// ---- range checks, shared by the writer (refuses to write) and the reader
// (refuses to read): each returns the problem, or "" if none.

std::string header_problem(const ImageHeader& h) {
  if (h.version != k_image_version)
    return "version " + to_string(h.version) + ", this reader knows only " + to_string(k_image_version);
  if (h.machine != k_machine_x86_64)
    return "machine " + to_string(h.machine) + ", not x86_64 (" + to_string(k_machine_x86_64) + ")";
  return {};
}

std::string core_problem(const ImageHeader& h, const CoreState& c) {
  if (c.xsave.size() != h.xsave_size)
    return "xsave of " + to_string(c.xsave.size()) + " bytes, the header says " + to_string(h.xsave_size);
  if (c.groups.size() > 65536) return to_string(c.groups.size()) + " supplementary groups, more than NGROUPS_MAX (65536)";
  return {};
}

std::string files_problem(const std::vector<FileDesc>& files) {
  for (size_t i = 0; i < files.size(); ++i) {
    const FileDesc& f = files[i];
    auto kind = static_cast<uint32_t>(f.kind);
    if (f.fd < 0) return "file " + to_string(i) + ": negative fd " + to_string(f.fd);
    if (kind < static_cast<uint32_t>(FdKind::regular) || kind > static_cast<uint32_t>(FdKind::relayed))
      return "file " + to_string(i) + " (fd " + to_string(f.fd) + "): unknown kind " + to_string(kind);
  }
  return {};
}

std::string regions_problem(const std::vector<Region>& regions) {
  for (size_t i = 0; i < regions.size(); ++i) {
    const Region& r = regions[i];
    auto name = [&] { return "region " + to_string(i) + " [" + hex(r.start) + ", " + hex(r.end) + ")"; };
    auto kind = static_cast<uint32_t>(r.kind);
    if (r.start % k_page_size != 0 || r.end % k_page_size != 0) return name() + ": not page aligned";
    if (r.start >= r.end) return name() + ": empty or reversed";
    if (i > 0 && r.start < regions[i - 1].end) return name() + ": overlaps or precedes region " + to_string(i - 1);
    if (kind < static_cast<uint32_t>(RegionKind::anonymous) || kind > static_cast<uint32_t>(RegionKind::vdso))
      return name() + ": unknown kind " + to_string(kind);
    if ((r.prot & ~uint32_t{7}) != 0) return name() + ": unknown prot bits " + hex(r.prot);
  }
  return {};
}

std::string run_problem(const std::vector<Region>& regions, const PageRun& p) {
  if (p.region >= regions.size())
    return "region " + to_string(p.region) + " out of range (" + to_string(regions.size()) + " regions)";
  if (p.count == 0 || p.count > k_pages_per_chunk)
    return "count " + to_string(p.count) + " outside 1.." + to_string(k_pages_per_chunk);
  const Region& r = regions[p.region];
  if (r.kind == RegionKind::vdso) return "region " + to_string(p.region) + " is the vdso, whose pages are not stored";
  if (p.first > r.pages() || p.count > r.pages() - p.first)
    return "pages " + to_string(p.first) + "+" + to_string(p.count) + " outside region " + to_string(p.region) + " (" +
           to_string(r.pages()) + " pages)";
  return {};
}

std::string meta_problem(const ImageMeta& m) {
  for (std::string p :
       {header_problem(m.header), core_problem(m.header, m.core), files_problem(m.files), regions_problem(m.regions)})
    if (!p.empty()) return p;
  return {};
}

// ---- reading ------------------------------------------------------------

struct Record {
  uint32_t type = 0, flags = 0;
  uint64_t length = 0, at = 0;  // payload bytes; stream offset of the record's head
  std::string name() const { return "record " + type_name(type) + " at byte " + to_string(at); }
};

/// The reader's source with its byte count and running hash; made afresh
/// by each ImageReader call over the reader's members.
class Source {
 public:
  Source(ReadFn& fn, uint64_t& read, void* hash) : m_fn(fn), m_read(read), m_hash(xxh(hash)) {}

  /// Bytes into `out` until it is full or the source ends; how many.
  Result<size_t> fill(std::span<std::byte> out) {
    size_t got = 0;
    while (got < out.size()) {
      Result<size_t> n = m_fn(out.subspan(got));
      if (!n) return fail(EIO, "image: read: " + n.error().message);
      if (*n > out.size() - got) return fail(EIO, "image: read: the source returned more bytes than asked for");
      if (*n == 0) break;
      got += *n;
      m_read += *n;
    }
    return got;
  }
  /// Exactly out.size() bytes; `what` names them if the stream ends first.
  Result<void> exact(std::span<std::byte> out, const std::string& what, uint64_t done = 0, uint64_t total = 0) {
    Result<size_t> got = fill(out);
    if (!got) return tl::unexpected(got.error());
    if (*got < out.size()) {
      if (total == 0) total = out.size();
      return fail(EINVAL, "image: truncated stream: " + what + " ends after " + to_string(done + *got) + " of " +
                              to_string(total) + " bytes");
    }
    return {};
  }
  void hash(std::span<const std::byte> b) { XXH3_64bits_update(m_hash, b.data(), b.size()); }
  uint64_t digest() const { return XXH3_64bits_digest(m_hash); }

  /// The next record's head, its type, flags and length checked; hashed
  /// unless it is the END record (the checksum covers what precedes END).
  Result<Record> head() {
    Record r;
    r.at = m_read;
    std::array<std::byte, k_head_bytes> b;
    Result<size_t> got = fill(b);
    if (!got) return tl::unexpected(got.error());
    if (*got == 0)
      return fail(EINVAL, "image: truncated stream: ends at byte " + to_string(r.at) + " without an END record");
    if (*got < b.size())
      return fail(EINVAL, "image: truncated stream: record head at byte " + to_string(r.at) + " ends after " +
                              to_string(*got) + " of 16 bytes");
    r.type = mrc::get_le<uint32_t>(b.data());
    r.flags = mrc::get_le<uint32_t>(b.data() + 4);
    r.length = mrc::get_le<uint64_t>(b.data() + 8);
    if (r.type < k_rec_header || r.type > k_rec_end)
      return fail(EINVAL, "image: unknown record type " + to_string(r.type) + " at byte " + to_string(r.at));
    uint32_t allowed = r.type == k_rec_pages ? k_flag_zstd : 0;
    if ((r.flags & ~allowed) != 0) return fail(EINVAL, "image: " + r.name() + ": unknown flags " + hex(r.flags));
    if (r.length > k_max_record)
      return fail(EINVAL, "image: " + r.name() + ": length " + to_string(r.length) + " exceeds the limit of " +
                              to_string(k_max_record) + " bytes");
    if (r.type == k_rec_end && r.length != k_end_bytes)
      return fail(EINVAL, "image: " + r.name() + ": length " + to_string(r.length) + ", an END record has 16");
    if (r.type != k_rec_end) hash(b);
    return r;
  }

  /// `n` payload bytes of `r`, `base` bytes into it, hashed; the buffer
  /// grows as bytes arrive.
  Result<Bytes> payload(const Record& r, uint64_t n, uint64_t base = 0) {
    Bytes b;
    while (b.size() < n) {
      size_t at = b.size();
      b.resize(at + std::min<uint64_t>(n - at, k_read_step));
      if (auto ok = exact(std::span(b).subspan(at), r.name() + " payload", base + at, r.length); !ok)
        return tl::unexpected(ok.error());
    }
    hash(b);
    return b;
  }

 private:
  ReadFn& m_fn;
  uint64_t& m_read;
  XXH3_state_t* m_hash;
};

/// The payload of the record that must come next, of `type`; its head in `rec`.
Result<Bytes> expect(Source& src, uint32_t type, Record& rec) {
  Result<Record> r = src.head();
  if (!r) return tl::unexpected(r.error());
  rec = *r;
  if (rec.type != type) return fail(EINVAL, "image: " + rec.name() + " out of order: expected " + type_name(type));
  return src.payload(rec, rec.length);
}

/// An error naming `rec` and the first non-empty problem, if any.
Result<void> refuse_first(const Record& rec, std::initializer_list<std::string> problems) {
  for (const std::string& p : problems)
    if (!p.empty()) return fail(EINVAL, "image: " + rec.name() + ": " + p);
  return {};
}

/// Magic, HEADER, CORE, FILES and REGIONS into `m`, each checked.
Result<void> read_meta(Source& src, ImageMeta& m) {
  std::array<std::byte, k_image_magic.size()> magic;
  if (Result<void> r = src.exact(magic, "magic"); !r) return r;
  src.hash(magic);
  if (!std::equal(magic.begin(), magic.end(), std::as_bytes(std::span(k_image_magic)).begin()))
    return fail(EINVAL, "image: bad magic: not a process image");

  Record rec;
  Result<Bytes> b = expect(src, k_rec_header, rec);
  if (!b) return tl::unexpected(b.error());
  // The version alone first: the rest of HEADER may be laid out otherwise
  // in another version. (The other fields' defaults pass header_problem.)
  ImageHeader version_only;
  if (b->size() >= 4) version_only.version = mrc::get_le<uint32_t>(b->data());
  if (Result<void> r = refuse_first(rec, {header_problem(version_only)}); !r) return r;
  Dec header(*b);
  header_fields(header, m.header);
  if (Result<void> r = refuse_first(rec, {header.problem(), header_problem(m.header)}); !r) return r;

  if (b = expect(src, k_rec_core, rec); !b) return tl::unexpected(b.error());
  Dec core(*b);
  core_fields(core, m.core);
  if (Result<void> r = refuse_first(rec, {core.problem(), core_problem(m.header, m.core)}); !r) return r;

  if (b = expect(src, k_rec_files, rec); !b) return tl::unexpected(b.error());
  Dec files(*b);
  m.files.resize(files.count(k_file_min_bytes, "file list"));
  for (FileDesc& f : m.files) file_fields(files, f);
  if (Result<void> r = refuse_first(rec, {files.problem(), files_problem(m.files)}); !r) return r;

  if (b = expect(src, k_rec_regions, rec); !b) return tl::unexpected(b.error());
  Dec regions(*b);
  m.regions.resize(regions.count(k_region_min_bytes, "region list"));
  for (Region& g : m.regions) region_fields(regions, g);
  return refuse_first(rec, {regions.problem(), regions_problem(m.regions)});
}

/// The END record `r` (head read): total and checksum, then nothing more.
Result<void> read_end(Source& src, const Record& r) {
  uint64_t digest = src.digest();  // of every byte before r's head
  std::array<std::byte, k_end_bytes> b;
  if (Result<void> ok = src.exact(b, r.name() + " payload"); !ok) return ok;
  auto total = mrc::get_le<uint64_t>(b.data());
  auto sum = mrc::get_le<uint64_t>(b.data() + 8);
  if (total != r.at)
    return fail(EINVAL, "image: length mismatch: the END record says " + to_string(total) +
                            " bytes precede it, the stream had " + to_string(r.at));
  if (sum != digest)
    return fail(EINVAL,
                "image: checksum mismatch: the END record says " + hex(sum) + ", the stream hashes to " + hex(digest));
  std::byte extra;
  Result<size_t> got = src.fill(std::span(&extra, 1));
  if (!got) return tl::unexpected(got.error());
  if (*got != 0)
    return fail(EINVAL, "image: trailing bytes after the END record, from byte " +
                            to_string(r.at + k_head_bytes + k_end_bytes));
  return {};
}

/// The next PAGES record into `run` and `data` (true), or the END record (false).
Result<bool> read_pages(Source& src, const std::vector<Region>& regions, PageRun& run, Bytes& data) {
  Result<Record> r = src.head();
  if (!r) return tl::unexpected(r.error());
  if (r->type == k_rec_end) {
    if (Result<void> ok = read_end(src, *r); !ok) return tl::unexpected(ok.error());
    return false;
  }
  if (r->type != k_rec_pages)
    return fail(EINVAL, "image: " + r->name() + " out of order: only PAGES and END follow REGIONS");
  std::string name = "image: page run at byte " + to_string(r->at) + ": ";
  if (r->length < k_run_bytes)
    return fail(EINVAL, name + "record of " + to_string(r->length) + " bytes, shorter than its 20-byte run");
  std::array<std::byte, k_run_bytes> rb;
  if (Result<void> ok = src.exact(rb, r->name() + " payload", 0, r->length); !ok) return tl::unexpected(ok.error());
  src.hash(rb);
  Dec d(rb);
  run_fields(d, run);  // cannot fail: exactly its 20 bytes
  if (std::string p = run_problem(regions, run); !p.empty()) return fail(EINVAL, name + p);
  uint64_t raw = run.count * k_page_size;  // <= 4 MiB: count was checked
  uint64_t n = r->length - k_run_bytes;
  if ((r->flags & k_flag_zstd) == 0) {
    if (n != raw)
      return fail(EINVAL, name + to_string(n) + " bytes of page data for " + to_string(run.count) + " pages");
    data.resize(raw);
    if (Result<void> ok = src.exact(data, r->name() + " payload", k_run_bytes, r->length); !ok)
      return tl::unexpected(ok.error());
    src.hash(data);
    return true;
  }
  // A writer compresses only when it pays, so a frame is never as large as the data.
  if (n == 0 || n >= raw)
    return fail(EINVAL, name + "compressed data of " + to_string(n) + " bytes, not smaller than its " + to_string(raw) +
                            " raw bytes");
  Result<Bytes> frame = src.payload(*r, n, k_run_bytes);
  if (!frame) return tl::unexpected(frame.error());
  Result<Bytes> pages = mrc::zstd_decompress(*frame, raw);
  if (!pages) return fail(EINVAL, name + pages.error().message);
  if (pages->size() != raw)
    return fail(EINVAL,
                name + "data decompresses to " + to_string(pages->size()) + " bytes, expected " + to_string(raw));
  data = std::move(*pages);
  return true;
}

}  // namespace

// ---- ImageWriter --------------------------------------------------------

ImageWriter::ImageWriter(WriteFn sink, int zstd_level)
    : m_sink(std::move(sink)), m_level(zstd_level), m_hash(new_hash()) {}

ImageWriter::~ImageWriter() { XXH3_freeState(xxh(m_hash)); }

Result<void> ImageWriter::write(std::span<const std::byte> bytes) {
  if (bytes.empty()) return {};
  if (Result<void> r = m_sink(bytes); !r) {
    m_failed = true;  // the stream is cut mid-record: nothing after can be valid
    return fail(r.error().code != 0 ? r.error().code : EIO, "image: write: " + r.error().message);
  }
  XXH3_64bits_update(xxh(m_hash), bytes.data(), bytes.size());
  m_written += bytes.size();
  return {};
}

Result<void> ImageWriter::emit(uint32_t type, uint32_t flags, std::span<const std::byte> payload,
                               std::span<const std::byte> tail) {
  std::array<std::byte, k_head_bytes> head;
  mrc::put_le(head.data(), type);
  mrc::put_le(head.data() + 4, flags);
  mrc::put_le(head.data() + 8, uint64_t{payload.size() + tail.size()});
  if (Result<void> r = write(head); !r) return r;
  if (Result<void> r = write(payload); !r) return r;
  return write(tail);
}

Result<void> ImageWriter::begin(const ImageMeta& meta) {
  assert(!m_begun && !m_finished && "ImageWriter::begin() comes first, once");
  if (m_failed) return fail(EIO, "image: write: the sink failed earlier");
  if (std::string p = meta_problem(meta); !p.empty()) return fail(EINVAL, "image: " + p);
  Enc header, core, files, regions;
  header_fields(header, meta.header);
  core_fields(core, meta.core);
  files.num(static_cast<uint32_t>(meta.files.size()));
  for (const FileDesc& f : meta.files) file_fields(files, f);
  regions.num(static_cast<uint32_t>(meta.regions.size()));
  for (const Region& r : meta.regions) region_fields(regions, r);
  std::pair<uint32_t, Enc*> records[] = {
      {k_rec_header, &header}, {k_rec_core, &core}, {k_rec_files, &files}, {k_rec_regions, &regions}};
  for (auto [type, enc] : records)
    if (enc->out().size() > k_max_record)
      return fail(EINVAL, "image: record " + type_name(type) + " of " + to_string(enc->out().size()) +
                              " bytes exceeds the limit of " + to_string(k_max_record));
  if (Result<void> r = write(std::as_bytes(std::span(k_image_magic))); !r) return r;
  for (auto [type, enc] : records)
    if (Result<void> r = emit(type, 0, enc->out()); !r) return r;
  m_regions = meta.regions;
  m_begun = true;
  return {};
}

Result<void> ImageWriter::pages(const PageRun& run, std::span<const std::byte> data) {
  assert(m_begun && !m_finished && "ImageWriter::pages() between begin() and finish()");
  if (m_failed) return fail(EIO, "image: write: the sink failed earlier");
  if (std::string p = run_problem(m_regions, run); !p.empty()) return fail(EINVAL, "image: page run: " + p);
  if (data.size() != run.count * k_page_size)
    return fail(EINVAL,
                "image: page run: " + to_string(data.size()) + " bytes of data for " + to_string(run.count) + " pages");
  Enc head;
  run_fields(head, run);
  if (m_level > 0)
    if (std::optional<Bytes> z = mrc::zstd_compress_if_smaller(data, m_level))
      return emit(k_rec_pages, k_flag_zstd, head.out(), *z);
  return emit(k_rec_pages, 0, head.out(), data);
}

Result<void> ImageWriter::finish() {
  assert(m_begun && !m_finished && "ImageWriter::finish() once, after begin()");
  m_finished = true;
  if (m_failed) return fail(EIO, "image: write: the sink failed earlier");
  Enc end;
  end.num(m_written);  // bytes before the END record
  end.num(static_cast<uint64_t>(XXH3_64bits_digest(xxh(m_hash))));
  return emit(k_rec_end, 0, end.out());
}

// ---- ImageReader --------------------------------------------------------

ImageReader::ImageReader(ReadFn source) : m_source(std::move(source)), m_hash(new_hash()) {}

ImageReader::~ImageReader() { XXH3_freeState(xxh(m_hash)); }

Result<ImageMeta> ImageReader::begin() {
  assert(!m_begun && "ImageReader::begin() once, first");
  m_begun = true;
  Source src(m_source, m_read, m_hash);
  if (Result<void> r = read_meta(src, m_meta); !r) {
    m_failed = true;
    return tl::unexpected(r.error());
  }
  return m_meta;
}

Result<bool> ImageReader::next_pages(PageRun& run, std::vector<std::byte>& data) {
  assert(m_begun && "ImageReader::next_pages() after begin()");
  if (m_failed) return fail(EINVAL, "image: the stream was refused earlier");
  if (m_done) return false;
  Source src(m_source, m_read, m_hash);
  Result<bool> r = read_pages(src, m_meta.regions, run, data);
  m_failed = !r;  // after an error the position in the stream is lost
  m_done = r && !*r;
  return r;
}

}  // namespace mosix::migrate
