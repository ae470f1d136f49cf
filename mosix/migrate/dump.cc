// dump: /proc and ptrace into ImageMeta, then the pages. State only the
// process can tell (sigactions, itimers, brk, tid address, sigaltstack) is
// asked for by injected syscalls into the tracee's scratch page.
#include "mosix/migrate/dump.h"

#include <cpuid.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mosix/migrate/procfs.h"
#include "mosix/migrate/kernel_abi.h"

namespace mosix::migrate {
namespace {

using mrc::fail;

/// Where the kernel puts XCR0 in a ptrace XSTATE area: the first u64 of
/// the fxsave sw_reserved bytes (USER_XSTATE_XCR0_WORD, read by gdb).
constexpr size_t k_xstate_xfeatures_offset = 464;
/// Syscall restart codes (include/linux/errno.h; not visible to user space).
constexpr int64_t k_erestartsys = -512, k_erestartnointr = -513, k_erestartnohand = -514,
                  k_erestart_restartblock = -516;

tl::unexpected<mrc::Error> refuse(const std::string& why) { return fail(EOPNOTSUPP, "cannot move: " + why); }


bool skipped_mapping(const MapEntry& m) {
  return m.path == "[vsyscall]" || m.path == "[vvar]" || m.path == "[vvar_vclock]";
}

/// Character devices a restore reopens by path (no state of their own).
bool plain_device(const std::string& path) {
  return path == "/dev/null" || path == "/dev/zero" || path == "/dev/full" || path == "/dev/urandom" ||
         path == "/dev/random";
}

/// The job's stdio may be a tty, pipe or socket: the deputy relays it.
bool relayable(const OpenFd& f) {
  return f.fd <= 2 && (S_ISCHR(f.mode) || S_ISFIFO(f.mode) || S_ISSOCK(f.mode));
}

Result<void> check_fd(const OpenFd& f) {
  if (S_ISREG(f.mode) || S_ISDIR(f.mode)) {
    if (f.target.ends_with(" (deleted)")) return refuse("fd " + std::to_string(f.fd) + " is a deleted file: " + f.target);
    return {};
  }
  if (S_ISCHR(f.mode) && plain_device(f.target)) return {};
  if (relayable(f)) return {};
  if (S_ISSOCK(f.mode)) return refuse("fd " + std::to_string(f.fd) + " is a socket (" + f.target + ")");
  if (S_ISFIFO(f.mode)) return refuse("fd " + std::to_string(f.fd) + " is a pipe (" + f.target + ")");
  if (S_ISCHR(f.mode) || S_ISBLK(f.mode)) return refuse("fd " + std::to_string(f.fd) + " is a device (" + f.target + ")");
  return refuse("fd " + std::to_string(f.fd) + " is " + f.target);
}

Result<void> check_map(const MapEntry& m) {
  if (skipped_mapping(m) || m.path == "[vdso]") return {};
  if (m.path.rfind("/dev/", 0) == 0 && m.path != "/dev/zero")
    return refuse("device mapping at " + hex(m.start) + " (" + m.path + ")");
  if (m.shared && (m.write || m.inode == 0 || m.path.rfind("/SYSV", 0) == 0 || m.path.rfind("/memfd:", 0) == 0))
    return refuse("shared memory at " + hex(m.start) + (m.path.empty() ? "" : " (" + m.path + ")"));
  if (m.deleted) return refuse("the file mapped at " + hex(m.start) + " was deleted (" + m.path + ")");
  return {};
}

/// A syscall the process was in when frozen, rewritten to be executed
/// again on restore (DESIGN §7): rax = orig_rax, rip back over `syscall`.
/// A relative nanosleep whose remaining time the kernel wrote to `rem`
/// sleeps for that remainder instead of its whole request.
void prepare_restart(user_regs_struct& r) {
  auto rax = static_cast<int64_t>(r.rax);
  auto nr = static_cast<int64_t>(r.orig_rax);
  if (nr < 0) return;
  if (rax != k_erestartsys && rax != k_erestartnointr && rax != k_erestartnohand && rax != k_erestart_restartblock) return;
  r.rax = r.orig_rax;
  r.rip -= 2;
  if (rax != k_erestart_restartblock) return;
  if (nr == SYS_nanosleep && r.rsi != 0) r.rdi = r.rsi;                  // nanosleep(req, rem)
  if (nr == SYS_clock_nanosleep && r.rsi == 0 && r.r10 != 0) r.rdx = r.r10;  // relative (flags 0)
}

Result<void> core_from_ptrace(Tracee& t, CoreState& c, ImageHeader& h) {
  auto regs = t.regs();
  if (!regs) return tl::unexpected(regs.error());
  user_regs_struct r = *regs;
  prepare_restart(r);
  static_assert(sizeof(user_regs_struct) == sizeof(c.regs));
  std::memcpy(c.regs.data(), &r, sizeof(r));
  auto xs = t.xstate();
  if (!xs) return tl::unexpected(xs.error());
  c.xsave = std::move(*xs);
  h.xsave_size = static_cast<uint32_t>(c.xsave.size());
  if (c.xsave.size() >= k_xstate_xfeatures_offset + 8) std::memcpy(&h.xcr0, c.xsave.data() + k_xstate_xfeatures_offset, 8);
  auto mask = t.signal_mask();
  if (!mask) return tl::unexpected(mask.error());
  c.sigmask = *mask;
  RseqConfig rs{};
  // Returns the bytes it filled in (not 0) on success.
  if (::ptrace(static_cast<__ptrace_request>(k_ptrace_get_rseq), t.pid(), reinterpret_cast<void*>(sizeof(rs)), &rs) >
      0) {
    c.rseq = rs.rseq_abi_pointer;
    c.rseq_len = rs.rseq_abi_size;
    c.rseq_sig = rs.signature;
  }
  uint64_t head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, t.pid(), &head, &len) == 0) {
    c.robust_list = head;
    c.robust_len = len;
  }
  // prlimit64 may not read another user's limits (no CAP_SYS_RESOURCE,
  // as in a container): /proc/PID/limits then. Never zeros in the image:
  // a restore would set them.
  for (int res = 0; res < static_cast<int>(c.rlimits.size()); ++res) {
    rlimit64 l{};
    if (::prlimit64(t.pid(), static_cast<__rlimit_resource>(res), nullptr, &l) == 0) {
      c.rlimits[res] = {l.rlim_cur, l.rlim_max};
      continue;
    }
    auto text = read_proc_file(t.pid(), "limits");
    if (!text) return tl::unexpected(text.error());
    auto all = parse_limits(*text);
    if (!all) return fail(all.error().code, "/proc/" + std::to_string(t.pid()) + "/" + all.error().message);
    for (size_t k = 0; k < c.rlimits.size(); ++k) c.rlimits[k] = {(*all)[k].first, (*all)[k].second};
    break;
  }
  return {};
}

/// Asks the process itself, through syscalls injected into it.
Result<void> core_from_inside(Tracee& t, CoreState& c) {
  auto page = t.scratch();
  if (!page) return tl::unexpected(page.error());
  auto ask = [&](long nr, std::array<uint64_t, 6> args, std::span<std::byte> out, const char* what) -> Result<void> {
    auto r = t.syscall(nr, args);
    if (!r) return tl::unexpected(r.error());
    if (*r < 0) return fail(static_cast<int>(-*r), std::string("injected ") + what + " failed: " + std::strerror(static_cast<int>(-*r)));
    if (!out.empty()) return t.read_memory(*page, out);
    return {};
  };
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    SigAction a{};
    auto r = ask(SYS_rt_sigaction, {static_cast<uint64_t>(sig), 0, *page, 8}, {reinterpret_cast<std::byte*>(&a), sizeof(a)},
                 "rt_sigaction");
    if (!r) return r;
    c.sigactions[static_cast<size_t>(sig - 1)] = a;
  }
  for (int which = 0; which < 3; ++which) {
    struct {
      int64_t isec, iusec, vsec, vusec;
    } v{};
    auto r = ask(SYS_getitimer, {static_cast<uint64_t>(which), *page}, {reinterpret_cast<std::byte*>(&v), sizeof(v)},
                 "getitimer");
    if (!r) return r;
    c.itimers[static_cast<size_t>(which)] = {v.isec * 1'000'000 + v.iusec, v.vsec * 1'000'000 + v.vusec};
  }
  uint64_t tid_addr = 0;
  if (auto r = ask(SYS_prctl, {PR_GET_TID_ADDRESS, *page}, {reinterpret_cast<std::byte*>(&tid_addr), 8}, "prctl");
      !r)
    return r;
  c.tid_address = tid_addr;
  struct {
    uint64_t sp;
    int32_t flags, pad;
    uint64_t size;
  } ss{};
  if (auto r = ask(SYS_sigaltstack, {0, *page}, {reinterpret_cast<std::byte*>(&ss), sizeof(ss)}, "sigaltstack"); !r)
    return r;
  c.altstack_sp = ss.sp;
  c.altstack_flags = ss.flags;
  c.altstack_size = ss.size;
  auto brk = t.syscall(SYS_brk, {0});
  if (!brk) return tl::unexpected(brk.error());
  c.mm.brk = static_cast<uint64_t>(*brk);
  return {};
}

Result<void> core_from_proc(pid_t pid, CoreState& c) {
  c.pid = pid;
  if (auto comm = read_proc_file(pid, "comm"); comm) {
    c.comm = *comm;
    if (!c.comm.empty() && c.comm.back() == '\n') c.comm.pop_back();
  }
  auto umask = status_field(pid, "Umask");
  if (!umask) return tl::unexpected(umask.error());
  c.umask = static_cast<uint32_t>(std::stoul(*umask, nullptr, 8));
  for (const char* k : {"SigPnd", "ShdPnd"})
    if (auto p = status_field(pid, k); p) c.pending |= std::stoull(*p, nullptr, 16);
  if (auto p = read_proc_file(pid, "personality"); p) c.personality = std::stoull(*p, nullptr, 16);
  // Who it runs as: real, effective, saved (the fourth, fs, follows the effective).
  auto creds = read_credentials(pid);
  if (!creds) return tl::unexpected(creds.error());
  c.uids = creds->uids;
  c.gids = creds->gids;
  c.groups = std::move(creds->groups);
  char buf[4096];
  std::string base = "/proc/" + std::to_string(pid) + "/";
  ssize_t n = ::readlink((base + "cwd").c_str(), buf, sizeof(buf));
  if (n < 0) return mrc::fail_errno("readlink " + base + "cwd");
  c.cwd.assign(buf, static_cast<size_t>(n));
  n = ::readlink((base + "exe").c_str(), buf, sizeof(buf));
  if (n > 0) c.mm.exe_path.assign(buf, static_cast<size_t>(n));
  auto st = stat_fields(pid);
  if (!st) return tl::unexpected(st.error());
  if (st->size() <= 51) return fail(EINVAL, "short /proc/" + std::to_string(pid) + "/stat");
  auto f = [&](size_t i) { return std::stoull((*st)[i]); };
  c.mm.start_code = f(26);
  c.mm.end_code = f(27);
  c.mm.start_stack = f(28);
  c.mm.start_data = f(45);
  c.mm.end_data = f(46);
  c.mm.start_brk = f(47);
  c.mm.arg_start = f(48);
  c.mm.arg_end = f(49);
  c.mm.env_start = f(50);
  c.mm.env_end = f(51);
  auto auxv = read_proc_file(pid, "auxv");
  if (!auxv) return tl::unexpected(auxv.error());
  c.mm.auxv.resize(auxv->size() / 8);
  std::memcpy(c.mm.auxv.data(), auxv->data(), c.mm.auxv.size() * 8);
  return {};
}

Result<std::vector<FileDesc>> files_of(pid_t pid) {
  auto fds = read_fds(pid);
  if (!fds) return tl::unexpected(fds.error());
  std::vector<FileDesc> out;
  uint32_t next_share = 1;
  for (size_t i = 0; i < fds->size(); ++i) {
    const OpenFd& f = (*fds)[i];
    if (auto ok = check_fd(f); !ok) return tl::unexpected(ok.error());
    FileDesc d;
    d.fd = f.fd;
    d.path = f.target;
    d.flags = f.flags & ~static_cast<uint32_t>(O_CLOEXEC);
    d.cloexec = (f.flags & O_CLOEXEC) != 0;
    d.offset = f.pos;
    d.kind = S_ISREG(f.mode)   ? FdKind::regular
             : S_ISDIR(f.mode) ? FdKind::directory
             : relayable(f)    ? FdKind::relayed
                               : FdKind::dev_null;
    // One open file description behind several fds (dup, inheritance):
    // they share an offset, so they come back as one.
    for (size_t j = 0; j < i && d.share_id == 0; ++j)
      if (::syscall(SYS_kcmp, pid, pid, KCMP_FILE, (*fds)[j].fd, f.fd) == 0) {
        if (out[j].share_id == 0) out[j].share_id = next_share++;
        d.share_id = out[j].share_id;
      }
    out.push_back(std::move(d));
  }
  return out;
}

Region region_of(const MapEntry& m);

Result<std::vector<Region>> regions_of(pid_t pid, uint64_t scratch) {
  auto maps = read_maps(pid);
  if (!maps) return tl::unexpected(maps.error());
  std::vector<Region> out;
  for (const MapEntry& m : *maps) {
    if (auto ok = check_map(m); !ok) return tl::unexpected(ok.error());
    if (skipped_mapping(m)) continue;
    // Our scratch page is not the process' (the kernel may have merged it
    // into a neighbouring anonymous mapping): cut it out.
    if (scratch >= m.start && scratch < m.end) {
      if (scratch > m.start) {
        MapEntry left = m;
        left.end = scratch;
        out.push_back(region_of(left));
      }
      if (scratch + k_page_size < m.end) {
        MapEntry right = m;
        right.start = scratch + k_page_size;
        if (right.inode) right.offset += right.start - m.start;
        out.push_back(region_of(right));
      }
      continue;
    }
    out.push_back(region_of(m));
  }
  return out;
}

Region region_of(const MapEntry& m) {
  Region r;
  r.start = m.start;
  r.end = m.end;
  r.prot = (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
  r.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
  r.path = m.path;
  if (m.path == "[vdso]") {
    r.kind = RegionKind::vdso;
  } else if (m.inode != 0 && !m.path.empty() && m.path[0] == '/') {
    r.kind = RegionKind::file_private;
    r.file_offset = m.offset;
  } else {
    r.kind = RegionKind::anonymous;
    if (m.path == "[stack]") r.flags |= MAP_GROWSDOWN;
  }
  return r;
}

}  // namespace

uint64_t cpu_features() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  uint64_t f = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    if (c & bit_SSE3) f |= k_cpu_sse3;
    if (c & bit_SSSE3) f |= k_cpu_ssse3;
    if (c & bit_SSE4_1) f |= k_cpu_sse41;
    if (c & bit_SSE4_2) f |= k_cpu_sse42;
    if (c & bit_POPCNT) f |= k_cpu_popcnt;
    if (c & bit_AES) f |= k_cpu_aes;
    if (c & bit_AVX) f |= k_cpu_avx;
    if (c & bit_FMA) f |= k_cpu_fma;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (b & bit_AVX2) f |= k_cpu_avx2;
    if (b & bit_BMI) f |= k_cpu_bmi1;
    if (b & bit_BMI2) f |= k_cpu_bmi2;
    if (b & bit_AVX512F) f |= k_cpu_avx512f;
    if (b & bit_AVX512BW) f |= k_cpu_avx512bw;
    if (b & bit_AVX512VL) f |= k_cpu_avx512vl;
    if (b & bit_SHA) f |= k_cpu_sha;
    if (c & bit_VAES) f |= k_cpu_vaes;
  }
  return f;
}

Result<void> check_movable(pid_t pid) {
  auto threads = thread_count(pid);
  if (!threads) return tl::unexpected(threads.error());
  if (*threads != 1) return refuse("it has " + std::to_string(*threads) + " threads (only single-threaded processes move)");
  auto fds = read_fds(pid);
  if (!fds) return tl::unexpected(fds.error());
  for (const OpenFd& f : *fds)
    if (auto ok = check_fd(f); !ok) return ok;
  auto maps = read_maps(pid);
  if (!maps) return tl::unexpected(maps.error());
  for (const MapEntry& m : *maps)
    if (auto ok = check_map(m); !ok) return ok;
  return {};
}

Result<ImageMeta> describe(Tracee& t) {
  if (auto ok = check_movable(t.pid()); !ok) return tl::unexpected(ok.error());
  ImageMeta meta;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  meta.header.taken_unix_ms = now.tv_sec * 1000 + now.tv_nsec / 1'000'000;
  meta.header.cpu_features = cpu_features();
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) meta.header.source_node = host;
  if (auto r = core_from_ptrace(t, meta.core, meta.header); !r) return tl::unexpected(r.error());
  if (auto r = core_from_proc(t.pid(), meta.core); !r) return tl::unexpected(r.error());
  if (auto r = core_from_inside(t, meta.core); !r) return tl::unexpected(r.error());
  auto files = files_of(t.pid());
  if (!files) return tl::unexpected(files.error());
  meta.files = std::move(*files);
  auto scratch = t.scratch();
  if (!scratch) return tl::unexpected(scratch.error());
  auto regions = regions_of(t.pid(), *scratch);
  if (!regions) return tl::unexpected(regions.error());
  meta.regions = std::move(*regions);
  for (const Region& r : meta.regions)
    if (r.kind == RegionKind::vdso) meta.header.vdso_size = r.end - r.start;
  return meta;
}

Result<DumpStats> dump(Tracee& t, ImageWriter& w) {
  auto meta = describe(t);
  if (!meta) return tl::unexpected(meta.error());
  if (auto r = w.begin(*meta); !r) return tl::unexpected(r.error());
  DumpStats s;
  s.regions = meta->regions.size();
  std::vector<std::byte> buf;
  for (uint32_t i = 0; i < meta->regions.size(); ++i) {
    const Region& r = meta->regions[i];
    if (r.kind == RegionKind::vdso || (r.flags & MAP_SHARED)) {
      s.skipped += r.pages();
      continue;
    }
    auto has = pages_with_data(t.pid(), r.start, r.end, r.kind == RegionKind::file_private);
    if (!has) return tl::unexpected(has.error());
    for (uint64_t p = 0; p < has->size();) {
      if (!(*has)[p]) {
        ++s.skipped;
        ++p;
        continue;
      }
      uint64_t q = p;
      while (q < has->size() && (*has)[q] && q - p < k_pages_per_chunk) ++q;
      PageRun run{i, p, q - p};
      buf.resize(run.count * k_page_size);
      if (auto rd = t.read_memory(r.start + p * k_page_size, buf); !rd) return tl::unexpected(rd.error());
      if (auto wr = w.pages(run, buf); !wr) return tl::unexpected(wr.error());
      s.pages += run.count;
      p = q;
    }
  }
  if (auto r = w.finish(); !r) return tl::unexpected(r.error());
  s.image_bytes = w.bytes_written();
  return s;
}

}  // namespace mosix::migrate
