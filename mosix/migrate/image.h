// The process image: everything a dump takes from a frozen process and a
// restore needs to rebuild it (DESIGN §7), and the stream it travels in —
// one sequential byte stream, usable both over TCP and as a checkpoint
// file (byte layout: docs/migration-image.md). Data model and codec only:
// taking a process apart is dump.h, putting it back restore.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace mosix::migrate {

using mrc::Result;

/// First 8 bytes of every image ("MOSXIMG" and a newline, so `head -1`
/// of a checkpoint file names what it is).
inline constexpr std::array<char, 8> k_image_magic = {'M', 'O', 'S', 'X', 'I', 'M', 'G', '\n'};
/// Bumped on any change of the byte layout; a reader refuses others.
inline constexpr uint32_t k_image_version = 2;
/// ELF machine of x86_64 (EM_X86_64), the only one we dump.
inline constexpr uint32_t k_machine_x86_64 = 62;
/// Bytes of one page; regions and page runs are in these units.
inline constexpr uint64_t k_page_size = 4096;
/// Page bytes per zstd frame at most (DESIGN §7: frames of 1-4 MiB).
inline constexpr uint64_t k_pages_per_chunk = (4u << 20) / k_page_size;
/// Largest record a reader accepts before allocating (bytes): larger is a
/// corrupt image, not a big process (page data comes in chunks).
inline constexpr uint64_t k_max_record = 64u << 20;

/// CPU features a process may have started using (CPUID bits), as a mask
/// of these; a destination must have every bit the image has.
enum CpuFeature : uint64_t {
  k_cpu_sse3 = 1u << 0,
  k_cpu_ssse3 = 1u << 1,
  k_cpu_sse41 = 1u << 2,
  k_cpu_sse42 = 1u << 3,
  k_cpu_popcnt = 1u << 4,
  k_cpu_aes = 1u << 5,
  k_cpu_avx = 1u << 6,
  k_cpu_avx2 = 1u << 7,
  k_cpu_fma = 1u << 8,
  k_cpu_bmi1 = 1u << 9,
  k_cpu_bmi2 = 1u << 10,
  k_cpu_avx512f = 1u << 11,
  k_cpu_avx512bw = 1u << 12,
  k_cpu_avx512vl = 1u << 13,
  k_cpu_sha = 1u << 14,
  k_cpu_vaes = 1u << 15,
};

/// Where and on what the image was taken.
struct ImageHeader {
  uint32_t version = k_image_version;
  uint32_t machine = k_machine_x86_64;
  uint64_t xcr0 = 0;          ///< XSAVE feature mask of the source (XGETBV 0)
  uint32_t xsave_size = 0;    ///< bytes of CoreState::xsave (CPUID 0xD.0 EBX)
  uint64_t cpu_features = 0;  ///< CpuFeature bits of the source CPU
  uint64_t vdso_hash = 0;     ///< XXH3-64 of the source's vdso bytes
  uint64_t vdso_size = 0;     ///< bytes
  int64_t taken_unix_ms = 0;  ///< when the process was frozen (CLOCK_REALTIME)
  std::string source_node;    ///< host name of the source, for messages
};

/// One signal's disposition (struct kernel_sigaction: rt_sigaction's).
struct SigAction {
  uint64_t handler = 0;   ///< SIG_DFL 0, SIG_IGN 1, else an address
  uint64_t flags = 0;     ///< SA_*
  uint64_t restorer = 0;  ///< SA_RESTORER trampoline
  uint64_t mask = 0;      ///< blocked while the handler runs
};

/// One interval timer (setitimer), microseconds.
struct ITimer {
  int64_t interval_us = 0;
  int64_t value_us = 0;  ///< left until it fires; 0: disarmed
};

/// One resource limit (prlimit), RLIM_INFINITY as UINT64_MAX.
struct RLimit {
  uint64_t cur = 0, max = 0;
};

/// The process' mm fields that PR_SET_MM_MAP takes (prctl_mm_map).
struct MmFields {
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;  ///< /proc/PID/auxv as (type, value) pairs, ending with AT_NULL
  std::string exe_path;        ///< /proc/PID/exe at the source
};

/// The state of the process' one thread and of the process as a whole.
struct CoreState {
  int32_t pid = 0;                           ///< at the source (the deputy's PID)
  std::string comm;                          ///< /proc/PID/comm
  std::array<uint64_t, 27> regs{};           ///< struct user_regs_struct, in its field order
  std::vector<std::byte> xsave;              ///< NT_X86_XSTATE, ImageHeader::xsave_size bytes
  uint64_t sigmask = 0;                      ///< blocked signals (PTRACE_GETSIGMASK)
  uint64_t pending = 0;                      ///< signals pending for the thread (recorded, not sent again on restore)
  std::array<SigAction, 64> sigactions{};    ///< signals 1..64 at [0..63]
  std::array<ITimer, 3> itimers{};           ///< ITIMER_REAL, _VIRTUAL, _PROF
  std::array<RLimit, 16> rlimits{};          ///< RLIMIT_* 0..15
  MmFields mm;
  uint64_t tid_address = 0;                  ///< set_tid_address / clear_child_tid
  uint64_t robust_list = 0, robust_len = 0;  ///< get_robust_list
  uint64_t rseq = 0, rseq_len = 0;           ///< PTRACE_GET_RSEQ_CONFIGURATION; 0: none
  uint32_t rseq_sig = 0;
  uint64_t altstack_sp = 0, altstack_size = 0;  ///< sigaltstack
  int32_t altstack_flags = 0;
  uint32_t umask = 0;
  uint64_t personality = 0;
  std::string cwd;  ///< /proc/PID/cwd at the source
  /// The credentials (/proc/PID/status Uid, Gid, Groups): real, effective,
  /// saved. A restore gives them back last, so the process runs as the
  /// user it was, not as the restorer.
  std::array<uint32_t, 3> uids{}, gids{};
  std::vector<uint32_t> groups;  ///< supplementary groups, at most NGROUPS_MAX (65536)
};

/// How a file descriptor comes back.
enum class FdKind : uint32_t {
  regular = 1,    ///< a regular file, reopened by path at its offset and flags
  directory = 2,  ///< a directory, reopened by path
  dev_null = 3,   ///< /dev/null (also /dev/zero, /dev/full, /dev/urandom by path)
  relayed = 4,    ///< a tty, pipe or socket of the job's stdio: relayed by the deputy
};

struct FileDesc {
  int32_t fd = 0;
  FdKind kind = FdKind::regular;
  std::string path;      ///< as the home node sees it
  uint32_t flags = 0;    ///< O_* status flags (O_APPEND, O_NONBLOCK, access mode)
  uint64_t offset = 0;   ///< file position, bytes
  bool cloexec = false;  ///< FD_CLOEXEC
  /// fds with the same non-zero share id are one open file description
  /// (dup'ed or inherited: one offset); restored as dups of the first.
  uint32_t share_id = 0;
};

/// What a memory region is, for how it is rebuilt.
enum class RegionKind : uint32_t {
  anonymous = 1,     ///< private anonymous (heap, stack, bss, malloc arenas)
  file_private = 2,  ///< a private mapping of a file: mapped again, then its changed pages
  vdso = 3,          ///< [vdso]: put back with ARCH_MAP_VDSO_64, no pages stored
};

struct Region {
  uint64_t start = 0, end = 0;  ///< [start, end), page aligned
  uint32_t prot = 0;            ///< PROT_READ | PROT_WRITE | PROT_EXEC
  uint32_t flags = 0;           ///< MAP_PRIVATE, MAP_GROWSDOWN, ...
  RegionKind kind = RegionKind::anonymous;
  uint64_t file_offset = 0;  ///< bytes, file_private only
  std::string path;          ///< file_private: the file (as the home node sees it); else the maps name ([heap], [stack])
  uint64_t pages() const { return (end - start) / k_page_size; }
};

/// A run of consecutive pages of one region whose contents travel in the
/// image (untouched pages and unchanged file pages are not stored).
struct PageRun {
  uint32_t region = 0;  ///< index into the image's regions
  uint64_t first = 0;   ///< page index within the region
  uint64_t count = 0;   ///< pages; at most k_pages_per_chunk
};

/// The process described by an image, without its page contents.
struct ImageMeta {
  ImageHeader header;
  CoreState core;
  std::vector<FileDesc> files;
  std::vector<Region> regions;
};

/// Sink of the byte stream (a file, a socket): all of `bytes` or an error.
using WriteFn = std::function<Result<void>(std::span<const std::byte> bytes)>;
/// Source of the byte stream: fills `out` with up to out.size() bytes;
/// returns how many (0 at the end of the stream) or an error.
using ReadFn = std::function<Result<size_t>(std::span<std::byte> out)>;

/// Writes an image as a stream: header and metadata first, then page runs
/// in zstd frames as they are handed in, then the end record with the
/// checksum of everything before it. Not thread-safe.
class ImageWriter {
 public:
  /// `zstd_level` 0 stores page data uncompressed (each frame says which).
  ImageWriter(WriteFn sink, int zstd_level = 1);
  ~ImageWriter();
  ImageWriter(const ImageWriter&) = delete;
  ImageWriter& operator=(const ImageWriter&) = delete;
  /// Header, core, files and regions. Must come first, once. Errors:
  /// EINVAL (nothing written) if `meta` is one a reader refuses (version,
  /// machine, xsave size, fd or region kinds, regions not page aligned,
  /// empty, unsorted or overlapping) or a record exceeds k_max_record; the
  /// sink's error (EIO if it has none), after which every call fails.
  [[nodiscard]] Result<void> begin(const ImageMeta& meta);
  /// The contents of `run` (run.count pages, data.size() == count * 4096
  /// bytes). Runs may come in any order but each page at most once (not
  /// checked). Errors: EINVAL (nothing written) for a run outside the
  /// regions given to begin(), into the vdso, of count 0 or above
  /// k_pages_per_chunk, or with data of another size; the sink's error.
  [[nodiscard]] Result<void> pages(const PageRun& run, std::span<const std::byte> data);
  /// The end record (total length and XXH3-64 of all bytes before it).
  /// Nothing may follow. Errors: the sink's.
  [[nodiscard]] Result<void> finish();
  /// Bytes handed to the sink so far, END record included.
  uint64_t bytes_written() const { return m_written; }

 private:
  Result<void> emit(uint32_t type, uint32_t flags, std::span<const std::byte> payload,
                    std::span<const std::byte> tail = {});
  Result<void> write(std::span<const std::byte> bytes);  // to the sink, hashed and counted
  WriteFn m_sink;
  int m_level;
  uint64_t m_written = 0;
  void* m_hash = nullptr;         // XXH3_state_t*, owned
  std::vector<Region> m_regions;  // from begin(), for pages()' range checks
  bool m_begun = false, m_finished = false;
  bool m_failed = false;  // the sink failed: the stream is cut, every later call fails
};

/// Reads an image stream, checking every length before allocating, every
/// field's range and the final checksum; any violation is an error naming
/// it ("image: page run 3 outside region 1"), never a crash.
class ImageReader {
 public:
  explicit ImageReader(ReadFn source);
  ~ImageReader();
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;
  /// Header (magic, version, machine) and metadata. Must come first, once.
  /// Errors: EINVAL for a malformed or truncated stream, EIO if the source
  /// fails; after any error every later call fails.
  [[nodiscard]] Result<ImageMeta> begin();
  /// The next page run and its contents (into `data`, resized to
  /// run.count * 4096 bytes), or false at the end record, whose length and
  /// checksum have then been checked and after which the source must end.
  /// A run is checked against the regions, not against earlier runs: a
  /// page given twice is passed on twice (the restore decides). Until
  /// false, the pages are not yet covered by the checksum. Errors: as
  /// begin(); false again after false.
  [[nodiscard]] Result<bool> next_pages(PageRun& run, std::vector<std::byte>& data);
  /// Bytes taken from the source so far.
  uint64_t bytes_read() const { return m_read; }

 private:
  ReadFn m_source;
  uint64_t m_read = 0;
  void* m_hash = nullptr;  // XXH3_state_t*, owned
  ImageMeta m_meta;        // for range checks of page runs
  bool m_begun = false, m_done = false;
  bool m_failed = false;  // an error was returned: the position in the stream is lost
};

}  // namespace mosix::migrate
