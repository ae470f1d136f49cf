// What a dump reads about a process from /proc (proc(5)): its mappings,
// which of their pages hold data of their own (pagemap), its threads, open
// file descriptors and a few status fields. Parsing only; no ptrace.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace mosix::migrate {

using mrc::Result;

/// One line of /proc/PID/maps.
struct MapEntry {
  uint64_t start = 0, end = 0;  ///< [start, end), bytes
  bool read = false, write = false, exec = false;
  bool shared = false;  ///< 's' (MAP_SHARED) rather than 'p'
  uint64_t offset = 0;  ///< into the file, bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  ///< file path, "[heap]", "[stack]", "[vdso]", ... or empty (anonymous)
  bool deleted = false;  ///< the path ended in " (deleted)" (stripped from path)
};

/// Parses /proc/PID/maps. Errors: ESRCH (gone), EINVAL (a malformed line).
[[nodiscard]] Result<std::vector<MapEntry>> read_maps(pid_t pid);
/// Parses one maps line (exposed for tests).
[[nodiscard]] Result<MapEntry> parse_maps_line(const std::string& line);

/// pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
inline constexpr uint64_t k_pm_present = uint64_t{1} << 63;
inline constexpr uint64_t k_pm_swapped = uint64_t{1} << 62;
inline constexpr uint64_t k_pm_file_or_shared = uint64_t{1} << 61;

/// For each page of [start, end): whether it has data that must travel.
/// A page counts if it is present or swapped out, and - for a private
/// file mapping (`file_backed`) - no longer the file's own page (it was
/// written: copy-on-write made it anonymous). Untouched pages do not.
[[nodiscard]] Result<std::vector<bool>> pages_with_data(pid_t pid, uint64_t start, uint64_t end, bool file_backed);

/// Number of threads (entries of /proc/PID/task).
[[nodiscard]] Result<size_t> thread_count(pid_t pid);

/// An open file descriptor as /proc shows it.
struct OpenFd {
  int fd = 0;
  std::string target;  ///< readlink of /proc/PID/fd/N ("/path", "pipe:[123]", "socket:[9]", "anon_inode:[eventfd]")
  uint64_t pos = 0;    ///< fdinfo "pos:", bytes
  uint32_t flags = 0;  ///< fdinfo "flags:" (octal there): O_* incl. O_CLOEXEC
  uint32_t mode = 0;   ///< st_mode of the file (stat of /proc/PID/fd/N)
  uint64_t rdev = 0;   ///< st_rdev, for character devices
};

/// The process' descriptors in fd order. Errors: ESRCH, EACCES.
[[nodiscard]] Result<std::vector<OpenFd>> read_fds(pid_t pid);

/// A "Key:\tvalue" field of /proc/PID/status ("Umask", "SigPnd", ...).
[[nodiscard]] Result<std::string> status_field(pid_t pid, const std::string& key);

/// The decimal ids of a status field's value, separated by blanks
/// ("0\t0\t0\t0" of Uid, "4 24 27 " of Groups; "" is none). Errors:
/// EINVAL naming `what` and the value.
[[nodiscard]] Result<std::vector<uint32_t>> parse_ids(const std::string& value, const std::string& what);

/// The soft and hard limits of /proc/PID/limits, RLIMIT_* 0..15 in the
/// kernel's order, "unlimited" as 2^64-1: (cur, max) pairs. For a process
/// prlimit64(2) may not read (another user's, without CAP_SYS_RESOURCE).
/// Errors: EINVAL naming the line that does not parse, or too few lines.
[[nodiscard]] Result<std::vector<std::pair<uint64_t, uint64_t>>> parse_limits(const std::string& text);

/// Who a process runs as (/proc/PID/status Uid, Gid, Groups).
struct Credentials {
  std::array<uint32_t, 3> uids{}, gids{};  ///< real, effective, saved
  std::vector<uint32_t> groups;            ///< supplementary, as the kernel keeps them (sorted)
};
[[nodiscard]] Result<Credentials> read_credentials(pid_t pid);

/// Whole small /proc file (comm, auxv, personality, stat).
[[nodiscard]] Result<std::string> read_proc_file(pid_t pid, const std::string& name);

/// Fields of /proc/PID/stat by their number in proc(5): v[n] is field n
/// (v[0] is empty; field 2, comm, is cut at the last ')', so spaces or
/// parentheses in the name do not shift the others).
[[nodiscard]] Result<std::vector<std::string>> stat_fields(pid_t pid);

}  // namespace mosix::migrate
