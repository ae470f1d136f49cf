// restore: fork a child that reopens the files, seize it, rebuild its
// address space and state by injected syscalls, set its registers. The
// order matters: the trampoline page first (code that survives the
// munmap of everything else), rseq off before its area goes, the vdso
// moved before the regions that may sit where it was, pages after their
// regions, PR_SET_MM_MAP once the memory it points into exists.
#include "mosix/migrate/restore.h"

#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "common/log.h"
#include "mosix/migrate/dump.h"
#include "mosix/migrate/kernel_abi.h"
#include "mosix/migrate/procfs.h"

namespace mosix::migrate {
namespace {

using mrc::fail;

/// Where the trampoline's data (paths, structs) starts in its page; the
/// `syscall` instruction is at 0.
constexpr uint64_t k_tramp_data = 64;

tl::unexpected<mrc::Error> cannot(const std::string& why) { return fail(ENOEXEC, "cannot restore: " + why); }

/// The flags a file of the image is opened again with: its own, less
/// those that act only when a file is first opened (create, truncate).
int reopen_flags(const FileDesc& f) {
  return static_cast<int>(f.flags & ~static_cast<uint32_t>(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));
}

/// The child between fork and seize: the image's files at their numbers
/// (stdio, which the deputy relays, stays ours), its cwd and umask; then
/// it closes `ready` and waits to be taken over. On failure it writes
/// the cause to `ready` and exits.
[[noreturn]] void child_main(const ImageMeta& m, int ready, const std::array<int, 3>& stdio) {
  auto die = [&](const char* what, const std::string& path) {
    std::string msg = std::string(what) + " " + path + ": " + std::strerror(errno);
    (void)!::write(ready, msg.data(), msg.size());
    ::_exit(1);
  };
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int i = 0; i < 3; ++i)
    if (stdio[static_cast<size_t>(i)] >= 0 && ::dup2(stdio[static_cast<size_t>(i)], i) < 0)
      die("dup2 to fd", std::to_string(i));
  // Files are opened onto "parked" numbers above every number the image
  // uses, then everything else is closed, then they move into place.
  int park = std::max(ready, 2) + 1;
  for (const FileDesc& f : m.files) park = std::max(park, f.fd + 1);
  std::map<uint32_t, int> shared;          // share id -> parked fd
  std::vector<std::pair<int, int>> place;  // parked fd -> image fd
  for (const FileDesc& f : m.files) {
    if (f.kind == FdKind::relayed) continue;
    int fd = -1;
    if (f.share_id && shared.count(f.share_id)) {
      fd = ::fcntl(shared[f.share_id], F_DUPFD, park);
    } else {
      int opened = ::open(f.path.c_str(), reopen_flags(f));
      if (opened < 0) die("open", f.path);
      fd = opened >= park ? opened : ::fcntl(opened, F_DUPFD, park);
      if (fd != opened) ::close(opened);
      if (fd >= 0 && f.kind == FdKind::regular && ::lseek(fd, static_cast<off_t>(f.offset), SEEK_SET) < 0)
        die("lseek", f.path);
      if (f.share_id) shared[f.share_id] = fd;
    }
    if (fd < 0) die("fcntl F_DUPFD", f.path);
    place.push_back({fd, f.fd});
  }
  // Everything not in the image goes (stdio stays: relayed or replaced).
  std::vector<int> keep{ready};
  for (auto [parked, target] : place) keep.push_back(parked);
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int k : keep) {
    if (static_cast<unsigned>(k) > from) ::syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0);
    from = std::max(from, static_cast<unsigned>(k) + 1);
  }
  ::syscall(SYS_close_range, from, ~0u, 0);
  for (auto [parked, target] : place) {
    const FileDesc* f = nullptr;
    for (const FileDesc& d : m.files)
      if (d.fd == target) f = &d;
    if (::dup3(parked, target, f && f->cloexec ? O_CLOEXEC : 0) < 0) die("dup3 to fd", std::to_string(target));
  }
  for (auto [parked, target] : place) ::close(parked);  // parked numbers are above every target
  if (::chdir(m.core.cwd.c_str()) != 0) die("chdir", m.core.cwd);
  ::umask(static_cast<mode_t>(m.core.umask));
  // Ready is said by closing `ready` (EOF at the other end): had we
  // written instead, the seize could come before the close, and the
  // process would keep this pipe.
  ::close(ready);
  for (;;) ::pause();  // seized in here or on the way
}

/// The injected syscall `nr`, its result checked: a negative errno is an
/// error naming `what`.
Result<uint64_t> call(Tracee& t, long nr, std::array<uint64_t, 6> args, const std::string& what) {
  auto r = t.syscall(nr, args);
  if (!r) return tl::unexpected(r.error());
  if (*r < 0 && *r > -4096) {
    int e = static_cast<int>(-*r);
    return fail(e, "cannot restore: " + what + ": " + std::strerror(e));
  }
  return static_cast<uint64_t>(*r);
}

/// An address for the trampoline page clear of the image and of the
/// child's own mappings.
Result<uint64_t> trampoline_address(const ImageMeta& m, const std::vector<MapEntry>& own) {
  auto clear = [&](uint64_t a) {
    for (const Region& r : m.regions)
      if (a < r.end && r.start < a + k_page_size) return false;
    for (const MapEntry& e : own)
      if (a < e.end && e.start < a + k_page_size) return false;
    return true;
  };
  for (uint64_t a = 0x7e0000000000; a > 0x10000000; a -= 0x40000000)
    if (clear(a)) return a;
  return cannot("no free address for the trampoline page");
}

/// Injects open() of `path` in the child (the path written to the
/// trampoline's data area); returns the child's fd.
Result<uint64_t> open_in_child(Tracee& t, uint64_t tramp, const std::string& path, int flags) {
  if (path.size() + 1 > k_page_size - k_tramp_data) return cannot("path too long: " + path);
  std::vector<std::byte> z(path.size() + 1);
  std::memcpy(z.data(), path.c_str(), path.size() + 1);
  if (auto w = t.write_memory(tramp + k_tramp_data, z); !w) return tl::unexpected(w.error());
  return call(t, SYS_openat, {static_cast<uint64_t>(AT_FDCWD), tramp + k_tramp_data, static_cast<uint64_t>(flags)},
              "open " + path);
}

/// Moves the child's vdso (and the vvar pages beside it) to where the
/// image had it: code in the image calls into it at those addresses.
Result<uint64_t> place_vdso(Tracee& t, const ImageMeta& m, const std::vector<MapEntry>& own) {
  const Region* want = nullptr;
  for (const Region& r : m.regions)
    if (r.kind == RegionKind::vdso) want = &r;
  const MapEntry* have = nullptr;
  for (const MapEntry& e : own)
    if (e.path == "[vdso]") have = &e;
  if (!want || !have) return uint64_t{0};
  if (have->end - have->start != want->end - want->start) return cannot("this kernel's vdso differs from the image's");
  int64_t delta = static_cast<int64_t>(want->start) - static_cast<int64_t>(have->start);
  if (delta == 0) return have->start;
  for (const MapEntry& e : own) {
    if (e.path != "[vdso]" && e.path != "[vvar]" && e.path != "[vvar_vclock]") continue;
    uint64_t len = e.end - e.start;
    auto r =
        call(t, SYS_mremap, {e.start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, e.start + static_cast<uint64_t>(delta)},
             "move " + e.path + " to " + hex(e.start + static_cast<uint64_t>(delta)));
    if (!r) return tl::unexpected(r.error());
  }
  return want->start;
}

Result<void> map_region(Tracee& t, uint64_t tramp, const Region& r) {
  uint64_t len = r.end - r.start;
  if (r.kind == RegionKind::anonymous) {
    uint64_t flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (r.flags & MAP_GROWSDOWN);
    auto a = call(t, SYS_mmap, {r.start, len, r.prot, flags, ~uint64_t{0}, 0}, "map " + hex(r.start));
    return a ? Result<void>{} : tl::unexpected(a.error());
  }
  int oflags = (r.flags & MAP_SHARED) && (r.prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
  auto fd = open_in_child(t, tramp, r.path, oflags);
  if (!fd) return tl::unexpected(fd.error());
  uint64_t flags = (r.flags & MAP_SHARED ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
  auto a =
      call(t, SYS_mmap, {r.start, len, r.prot, flags, *fd, r.file_offset}, "map " + r.path + " at " + hex(r.start));
  (void)t.syscall(SYS_close, {*fd});
  return a ? Result<void>{} : tl::unexpected(a.error());
}

/// Its name, signal dispositions, alternate stack, robust list, rseq, tid address:
/// what the process set up for itself, set again from inside. Not the
/// timers: release_restored() arms them.
Result<void> thread_state(Tracee& t, uint64_t tramp, const CoreState& c) {
  const uint64_t data = tramp + k_tramp_data;
  auto put = [&](const void* p, size_t n) { return t.write_memory(data, {static_cast<const std::byte*>(p), n}); };
  // Its name (ps, top, /proc/PID/comm), not the restorer's: at most 15 bytes.
  char name[16] = {};
  std::memcpy(name, c.comm.data(), std::min<size_t>(c.comm.size(), 15));
  if (auto w = put(name, sizeof(name)); !w) return w;
  if (auto r = call(t, SYS_prctl, {PR_SET_NAME, data, 0, 0, 0}, "PR_SET_NAME"); !r) return tl::unexpected(r.error());
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const SigAction& a = c.sigactions[static_cast<size_t>(sig - 1)];
    if (auto w = put(&a, sizeof(a)); !w) return w;
    auto r = t.syscall(SYS_rt_sigaction, {static_cast<uint64_t>(sig), data, 0, 8});
    if (!r) return tl::unexpected(r.error());
    // 32 and 33 are glibc's own: the kernel takes them, glibc set them.
    if (*r < 0 && sig != 32 && sig != 33)
      return fail(static_cast<int>(-*r), "cannot restore: rt_sigaction " + std::to_string(sig));
  }
  struct {
    uint64_t sp;
    int32_t flags, pad;
    uint64_t size;
  } ss{c.altstack_sp, c.altstack_flags, 0, c.altstack_size};
  if (!(c.altstack_flags & SS_DISABLE)) {
    if (auto w = put(&ss, sizeof(ss)); !w) return w;
    if (auto r = call(t, SYS_sigaltstack, {data, 0}, "sigaltstack"); !r) return tl::unexpected(r.error());
  }
  if (c.robust_list)
    if (auto r = call(t, SYS_set_robust_list, {c.robust_list, c.robust_len}, "set_robust_list"); !r)
      return tl::unexpected(r.error());
  if (c.rseq)
    if (auto r = call(t, SYS_rseq, {c.rseq, c.rseq_len, 0, c.rseq_sig}, "rseq"); !r) return tl::unexpected(r.error());
  if (c.tid_address) {
    auto tid = call(t, SYS_set_tid_address, {c.tid_address}, "set_tid_address");
    if (!tid) return tl::unexpected(tid.error());
    // glibc keeps its thread's tid there (struct pthread::tid): the new one.
    auto v = static_cast<int32_t>(*tid);
    if (auto w = t.write_memory(c.tid_address, {reinterpret_cast<const std::byte*>(&v), sizeof(v)}); !w) return w;
  }
  return {};
}

/// PR_SET_MM_MAP with the image's fields and `exe_fd` (the child's fd, or
/// ~0 to keep its exe).
Result<void> set_mm_map(Tracee& t, uint64_t tramp, const MmFields& mm, uint32_t exe_fd) {
  struct {
    uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
        env_end, auxv;
    uint32_t auxv_size, exe_fd;
  } map{mm.start_code,
        mm.end_code,
        mm.start_data,
        mm.end_data,
        mm.start_brk,
        mm.brk,
        mm.start_stack,
        mm.arg_start,
        mm.arg_end,
        mm.env_start,
        mm.env_end,
        0,
        0,
        exe_fd};
  const uint64_t data = tramp + k_tramp_data;
  const uint64_t auxv_at = data + 256;
  if (mm.auxv.size() * 8 > k_page_size - k_tramp_data - 256) return cannot("auxv too large");
  if (auto w = t.write_memory(auxv_at, {reinterpret_cast<const std::byte*>(mm.auxv.data()), mm.auxv.size() * 8}); !w)
    return w;
  map.auxv = auxv_at;
  map.auxv_size = static_cast<uint32_t>(mm.auxv.size() * 8);
  if (auto w = t.write_memory(data, {reinterpret_cast<const std::byte*>(&map), sizeof(map)}); !w) return w;
  auto r = call(t, SYS_prctl, {PR_SET_MM, PR_SET_MM_MAP, data, sizeof(map), 0}, "PR_SET_MM_MAP");
  return r ? Result<void>{} : tl::unexpected(r.error());
}

/// The mm fields /proc and the kernel report (brk, arg and env areas,
/// auxv, exe), set in one PR_SET_MM_MAP. The exe (/proc/PID/exe, which
/// programs re-exec or find their files by) is the file at the image's
/// exe path here - home's over the home files, or this node's own - if
/// there is one the kernel takes (a regular, executable file; the
/// restorer's executable no longer mapped). Otherwise it stays the
/// restorer's, logged: nothing else depends on it.
Result<void> mm_fields(Tracee& t, uint64_t tramp, const MmFields& mm) {
  constexpr uint32_t k_keep = ~uint32_t{0};
  auto keep = [&](const mrc::Error& why) {
    mrc::logger("restore")->info("pid {}: /proc/PID/exe stays the restorer's: {}", t.pid(), why.message);
  };
  uint32_t exe_fd = k_keep;
  if (!mm.exe_path.empty()) {
    auto fd = open_in_child(t, tramp, mm.exe_path, O_RDONLY | O_CLOEXEC);
    if (fd)
      exe_fd = static_cast<uint32_t>(*fd);
    else
      keep(fd.error());
  }
  auto set = set_mm_map(t, tramp, mm, exe_fd);
  if (exe_fd == k_keep) return set;
  if (!set) {
    keep(set.error());
    set = set_mm_map(t, tramp, mm, k_keep);
  }
  (void)call(t, SYS_close, {exe_fd}, "close the exe");
  return set;
}

/// Who the process runs as: the image's credentials, if they are not
/// `t`'s already (a guest end or a recovery runs as root; a deputy going
/// home is the process itself). setgroups, setresgid, setresuid: the last
/// injected syscalls that need privilege. Then dumpable again, which the
/// change of euid cleared (its user could not ptrace it or read its /proc
/// files). Errors: EPERM if we may not become them.
Result<void> credentials(Tracee& t, uint64_t tramp, const CoreState& c) {
  auto now = read_credentials(t.pid());
  if (!now) return tl::unexpected(now.error());
  if (now->uids == c.uids && now->gids == c.gids && now->groups == c.groups) return {};
  const uint64_t data = tramp + k_tramp_data;
  if (c.groups.size() * 4 > k_page_size - k_tramp_data)
    return cannot(std::to_string(c.groups.size()) + " supplementary groups: at most " +
                  std::to_string((k_page_size - k_tramp_data) / 4) + " are restored");
  if (auto w = t.write_memory(data, {reinterpret_cast<const std::byte*>(c.groups.data()), c.groups.size() * 4}); !w)
    return w;
  auto g = call(t, SYS_setgroups, {c.groups.size(), data}, "setgroups");
  if (!g) return tl::unexpected(g.error());
  auto rg = call(t, SYS_setresgid, {c.gids[0], c.gids[1], c.gids[2]}, "setresgid");
  if (!rg) return tl::unexpected(rg.error());
  auto ru = call(t, SYS_setresuid, {c.uids[0], c.uids[1], c.uids[2]}, "setresuid");
  if (!ru) return tl::unexpected(ru.error());
  auto d = call(t, SYS_prctl, {PR_SET_DUMPABLE, 1, 0, 0, 0}, "PR_SET_DUMPABLE");
  return d ? Result<void>{} : tl::unexpected(d.error());
}

/// Steps 2-6 of a restore on `t`, stopped, whose files, cwd and umask
/// are the image's already: the address space, the process's own state,
/// the registers. The image's metadata `m` is read; its pages are next.
Result<void> rebuild(Tracee& t, const ImageMeta& m, ImageReader& reader, RestoreStats& stats) {
  const pid_t pid = t.pid();
  // 2. The trampoline: one page with a `syscall` at 0 and room for data.
  auto own = read_maps(pid);
  if (!own) return tl::unexpected(own.error());
  auto tramp = trampoline_address(m, *own);
  if (!tramp) return tl::unexpected(tramp.error());
  auto mapped = call(t, SYS_mmap,
                     {*tramp, k_page_size, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, ~uint64_t{0}, 0},
                     "map the trampoline");
  if (!mapped) return tl::unexpected(mapped.error());
  const std::byte insn[2] = {std::byte{0x0f}, std::byte{0x05}};
  if (auto w = t.write_memory(*tramp, insn); !w) return tl::unexpected(w.error());
  t.use_trampoline(*tramp, *tramp);

  // 3. Our rseq off (its area is about to go), everything else unmapped,
  //    the vdso where the image expects it.
  if (auto r = t.unregister_rseq(); !r) return tl::unexpected(r.error());
  for (const MapEntry& e : *own) {
    if (e.path == "[vdso]" || e.path == "[vvar]" || e.path == "[vvar_vclock]" || e.path == "[vsyscall]") continue;
    if (auto r = call(t, SYS_munmap, {e.start, e.end - e.start}, "unmap " + hex(e.start)); !r)
      return tl::unexpected(r.error());
  }
  auto vdso = place_vdso(t, m, *own);
  if (!vdso) return tl::unexpected(vdso.error());

  // 4. The image's regions, then its pages as they arrive.
  for (const Region& r : m.regions) {
    if (r.kind == RegionKind::vdso) continue;
    if (auto made = map_region(t, *tramp, r); !made) return tl::unexpected(made.error());
    ++stats.regions;
  }
  PageRun run;
  std::vector<std::byte> data;
  for (;;) {
    auto more = reader.next_pages(run, data);
    if (!more) return tl::unexpected(more.error());
    if (!*more) break;
    const Region& r = m.regions[run.region];
    if (auto w = t.write_memory(r.start + run.first * k_page_size, data); !w) return tl::unexpected(w.error());
    stats.pages += run.count;
  }
  stats.image_bytes = reader.bytes_read();
  stats.itimers = m.core.itimers;

  // 5. What the process set up for itself, the mm fields, the limits.
  if (auto s = thread_state(t, *tramp, m.core); !s) return tl::unexpected(s.error());
  if (auto s = mm_fields(t, *tramp, m.core.mm); !s) return tl::unexpected(s.error());
  for (size_t res = 0; res < m.core.rlimits.size(); ++res) {
    rlimit64 l{m.core.rlimits[res].cur, m.core.rlimits[res].max};
    (void)::prlimit64(pid, static_cast<__rlimit_resource>(res), &l,
                      nullptr);  // a limit we may not raise stays ours
  }
  if (auto s = credentials(t, *tramp, m.core); !s) return tl::unexpected(s.error());

  // 6. The trampoline goes, through the vdso's own `syscall` (same kernel:
  //    same offset as in ours), then the registers, xsave and mask.
  if (*vdso) {
    t.use_trampoline(0, 0);  // the next syscall finds the instruction in the
                             // vdso, where it now is
    auto r = call(t, SYS_munmap, {*tramp, k_page_size}, "unmap the trampoline");
    if (!r) return tl::unexpected(r.error());
  } else {
    t.use_trampoline(*tramp,
                     0);  // no vdso to run from: the page stays (one page, never used again)
  }
  user_regs_struct regs;
  static_assert(sizeof(regs) == sizeof(m.core.regs));
  std::memcpy(&regs, m.core.regs.data(), sizeof(regs));
  regs.orig_rax = ~uint64_t{0};  // not in a syscall: rip and rax say what runs next
  if (auto s = t.set_xstate(m.core.xsave); !s) return tl::unexpected(s.error());
  if (auto s = t.set_regs(regs); !s) return tl::unexpected(s.error());
  if (auto s = t.set_signal_mask(m.core.sigmask); !s) return tl::unexpected(s.error());
  return {};
}

}  // namespace

Result<void> check_restorable(const ImageMeta& meta) {
  if (meta.header.machine != k_machine_x86_64) return cannot("the image is of another machine type");
  uint64_t missing = meta.header.cpu_features & ~cpu_features();
  if (missing) return cannot("this CPU lacks features the image may use (mask " + hex(missing) + ")");
  return {};
}

Result<Restored> restore(ImageReader& reader, const std::array<int, 3>& stdio) {
  auto meta = reader.begin();
  if (!meta) return tl::unexpected(meta.error());
  if (auto ok = check_restorable(*meta); !ok) return tl::unexpected(ok.error());

  // 1. A child with the image's files, cwd and umask, waiting.
  int pp[2];
  if (::pipe2(pp, O_CLOEXEC) != 0) return mrc::fail_errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) return mrc::fail_errno("fork");
  if (pid == 0) {
    ::close(pp[0]);
    child_main(*meta, pp[1], stdio);
  }
  ::close(pp[1]);
  auto kill_child = [&] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, __WALL);
  };
  std::string said(4096, '\0');
  ssize_t n;
  do {
    n = ::read(pp[0], said.data(), said.size());
  } while (n < 0 && errno == EINTR);
  ::close(pp[0]);
  if (n != 0 || ::waitpid(pid, nullptr, WNOHANG | __WALL) != 0) {
    kill_child();
    return cannot(n > 0 ? said.substr(0, static_cast<size_t>(n)) : "the child died before it was ready");
  }
  auto traced = Tracee::seize(pid);
  if (!traced) {
    kill_child();
    return tl::unexpected(traced.error());
  }
  Restored out{std::move(*traced), {}};
  Tracee& t = out.tracee;
  auto fail_out = [&](const mrc::Error& e) -> tl::unexpected<mrc::Error> {
    t.abandon();
    kill_child();
    return tl::unexpected(e);
  };

  if (auto b = rebuild(t, *meta, reader, out.stats); !b) return fail_out(b.error());
  return out;
}

}  // namespace mosix::migrate

namespace mosix::migrate {
namespace {

/// The files of `t` (a deputy, stopped) made the image's: an fd on the
/// image's path keeps its open file (shared with whoever shares it at
/// home) at the image's offset; others are opened, or dup'ed from their
/// share; fds the image lacks are closed; relayed stdio stays. Then its
/// cwd and umask. Injected through the page at `page`.
Result<void> files_into(Tracee& t, uint64_t page, const ImageMeta& m) {
  const pid_t pid = t.pid();
  auto fd_path = [&](int fd) {
    std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  std::map<uint32_t, int> shared;  // share id -> the fd that has it
  std::vector<int> keep;
  for (const FileDesc& f : m.files) {
    keep.push_back(f.fd);
    if (f.kind == FdKind::relayed) continue;
    const uint64_t fd = static_cast<uint64_t>(f.fd);
    if (f.share_id && shared.count(f.share_id)) {
      if (auto r = call(t, SYS_dup3, {static_cast<uint64_t>(shared[f.share_id]), fd, f.cloexec ? O_CLOEXEC : 0u},
                        "dup3 to fd " + std::to_string(f.fd));
          !r)
        return tl::unexpected(r.error());
      continue;
    }
    if (fd_path(f.fd) != f.path) {
      auto opened = open_in_child(t, page, f.path, reopen_flags(f));
      if (!opened) return tl::unexpected(opened.error());
      if (*opened != fd) {
        auto d = call(t, SYS_dup3, {*opened, fd, 0}, "dup3 to fd " + std::to_string(f.fd));
        (void)t.syscall(SYS_close, {*opened});
        if (!d) return tl::unexpected(d.error());
      }
    }
    if (f.kind == FdKind::regular)
      if (auto r = call(t, SYS_lseek, {fd, f.offset, SEEK_SET}, "lseek " + f.path); !r)
        return tl::unexpected(r.error());
    if (auto r = call(t, SYS_fcntl, {fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0u}, "fcntl F_SETFD"); !r)
      return tl::unexpected(r.error());
    if (f.share_id) shared[f.share_id] = f.fd;
  }
  auto have = read_fds(pid);
  if (!have) return tl::unexpected(have.error());
  for (const OpenFd& o : *have)
    if (std::find(keep.begin(), keep.end(), o.fd) == keep.end() && o.fd > 2)
      (void)t.syscall(SYS_close, {static_cast<uint64_t>(o.fd)});
  if (m.core.cwd.size() + 1 > k_page_size - k_tramp_data) return cannot("cwd too long");
  std::vector<std::byte> z(m.core.cwd.size() + 1);
  std::memcpy(z.data(), m.core.cwd.c_str(), z.size());
  if (auto w = t.write_memory(page + k_tramp_data, z); !w) return w;
  if (auto r = call(t, SYS_chdir, {page + k_tramp_data}, "chdir " + m.core.cwd); !r) return tl::unexpected(r.error());
  (void)t.syscall(SYS_umask, {m.core.umask});
  return {};
}

}  // namespace

Result<RestoreStats> restore_into(Tracee& t, ImageReader& reader) {
  auto meta = reader.begin();
  if (!meta) return tl::unexpected(meta.error());
  if (auto ok = check_restorable(*meta); !ok) return tl::unexpected(ok.error());
  auto page = t.scratch();
  if (!page) return tl::unexpected(page.error());
  if (auto f = files_into(t, *page, *meta); !f) return tl::unexpected(f.error());
  RestoreStats stats;
  if (auto b = rebuild(t, *meta, reader, stats); !b) return tl::unexpected(b.error());
  return stats;
}

}  // namespace mosix::migrate

namespace mosix::migrate {

Result<void> Restored::release() { return release_restored(tracee, stats.itimers); }

Result<void> release_restored(Tracee& t, const std::array<ITimer, 3>& itimers) {
  bool any = false;
  for (const ITimer& it : itimers) any = any || it.value_us || it.interval_us;
  if (any) {
    auto page = t.scratch();
    if (!page) return tl::unexpected(page.error());
    for (size_t which = 0; which < itimers.size(); ++which) {
      const ITimer& it = itimers[which];
      int64_t v[4] = {it.interval_us / 1'000'000, it.interval_us % 1'000'000, it.value_us / 1'000'000,
                      it.value_us % 1'000'000};
      if (auto w = t.write_memory(*page, {reinterpret_cast<const std::byte*>(v), sizeof(v)}); !w) return w;
      if (auto r = call(t, SYS_setitimer, {which, *page, 0}, "setitimer"); !r) return tl::unexpected(r.error());
    }
  }
  return t.detach();  // the scratch page goes with it
}

}  // namespace mosix::migrate
