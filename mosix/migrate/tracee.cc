// Tracee: ptrace seize/interrupt, register access and syscall injection.
// Injection single-steps a `syscall` instruction found in the process'
// vdso, so no code is written into the process. orig_rax = -1 while it
// runs keeps the kernel from restarting the syscall the process was in.
#include "mosix/migrate/tracee.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "common/fd.h"
#include "mosix/migrate/kernel_abi.h"

namespace mosix::migrate {
namespace {

using mrc::fail;
using mrc::fail_errno;

/// How long a single injected syscall may take before we give up, ms.
constexpr int k_inject_timeout_ms = 10000;
/// Poll interval while waiting for a stop, µs.
constexpr useconds_t k_wait_poll_us = 200;

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

std::string who(pid_t pid) { return "process " + std::to_string(pid); }

enum class Direction : bool { from_process, to_process };

/// Moves `len` bytes between our `local` and the process' `addr`:
/// process_vm_readv/writev while they go, then /proc/PID/mem, which acts
/// with the tracer's rights (as a debugger does) on pages the process
/// itself may not read or write (PROT_NONE, code, read-only data).
Result<void> copy_memory(pid_t pid, uint64_t addr, std::byte* local, size_t len, Direction dir) {
  const bool to = dir == Direction::to_process;
  size_t done = 0;
  while (done < len) {
    iovec here{local + done, len - done};
    iovec there{reinterpret_cast<void*>(addr + done), len - done};
    ssize_t n = to ? ::process_vm_writev(pid, &here, 1, &there, 1, 0) : ::process_vm_readv(pid, &here, 1, &there, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    std::string path = "/proc/" + std::to_string(pid) + "/mem";
    mrc::UniqueFd mem(::open(path.c_str(), (to ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    if (!mem) return fail_errno("open " + path);
    while (done < len) {
      auto off = static_cast<off_t>(addr + done);
      ssize_t m = to ? ::pwrite(mem.get(), local + done, len - done, off) : ::pread(mem.get(), local + done, len - done, off);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0)
        return fail(m < 0 ? errno : EFAULT, std::string(to ? "cannot write " : "cannot read ") +
                                                std::to_string(len - done) + " bytes at " + hex(addr + done) +
                                                " of " + who(pid));
      done += static_cast<size_t>(m);
    }
  }
  return {};
}

}  // namespace

Result<Tracee> Tracee::seize(pid_t pid, int timeout_ms) {
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) {
    int e = errno;
    if (e == EPERM)
      return fail(e, "cannot trace " + who(pid) +
                         ": not permitted (another tracer, another user's process, or "
                         "/proc/sys/kernel/yama/ptrace_scope)");
    return fail(e, "cannot trace " + who(pid) + ": " + std::strerror(e));
  }
  Tracee t(pid);
  if (::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_INTERRUPT " + who(pid));
  if (auto s = t.wait_stop(timeout_ms); !s) return tl::unexpected(s.error());  // ~Tracee detaches
  return t;
}

Tracee::Tracee(Tracee&& o) noexcept
    : m_pid(std::exchange(o.m_pid, -1)), m_syscall_insn(o.m_syscall_insn), m_scratch(std::exchange(o.m_scratch, 0)),
      m_signals(std::move(o.m_signals)) {}

Tracee& Tracee::operator=(Tracee&& o) noexcept {
  if (this != &o) {
    if (m_pid > 0) (void)detach();
    m_pid = std::exchange(o.m_pid, -1);
    m_syscall_insn = o.m_syscall_insn;
    m_scratch = std::exchange(o.m_scratch, 0);
    m_signals = std::move(o.m_signals);
  }
  return *this;
}

Tracee::~Tracee() {
  if (m_pid > 0) (void)detach();
}

Result<int> Tracee::wait_stop(int timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(m_pid, &st, __WALL | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_errno("waitpid " + who(m_pid));
    }
    if (r == 0) {
      if (now_ms() >= deadline) return fail(ETIMEDOUT, who(m_pid) + " did not stop within " +
                                                           std::to_string(timeout_ms) + " ms");
      ::usleep(k_wait_poll_us);
      continue;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      m_pid = -1;
      return fail(ESRCH, "the process exited while it was being traced");
    }
    if (!WIFSTOPPED(st)) continue;
    int sig = WSTOPSIG(st);
    int event = st >> 16;
    if (event == PTRACE_EVENT_STOP) return sig;   // interrupt or group stop
    if (event == 0 && sig == SIGTRAP) return sig;  // our single step
    // A signal on its way to the process: hold it back until we let go.
    if (event == 0) m_signals.push_back(sig);
    if (::ptrace(PTRACE_CONT, m_pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_CONT " + who(m_pid));
    // The interrupt we asked for is still due: it stops the process again.
    if (event == 0 && ::ptrace(PTRACE_INTERRUPT, m_pid, nullptr, nullptr) != 0)
      return fail_errno("PTRACE_INTERRUPT " + who(m_pid));
  }
}

Result<user_regs_struct> Tracee::regs() const {
  user_regs_struct r{};
  if (::ptrace(PTRACE_GETREGS, m_pid, nullptr, &r) != 0) return fail_errno("PTRACE_GETREGS " + who(m_pid));
  return r;
}

Result<void> Tracee::set_regs(const user_regs_struct& r) {
  if (::ptrace(PTRACE_SETREGS, m_pid, nullptr, &r) != 0) return fail_errno("PTRACE_SETREGS " + who(m_pid));
  return {};
}

Result<std::vector<std::byte>> Tracee::xstate() const {
  std::vector<std::byte> area(64 * 1024);  // more than any XSAVE area today
  iovec iov{area.data(), area.size()};
  if (::ptrace(PTRACE_GETREGSET, m_pid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return fail_errno("PTRACE_GETREGSET NT_X86_XSTATE " + who(m_pid));
  area.resize(iov.iov_len);
  return area;
}

Result<void> Tracee::set_xstate(std::span<const std::byte> area) {
  std::vector<std::byte> copy(area.begin(), area.end());
  iovec iov{copy.data(), copy.size()};
  if (::ptrace(PTRACE_SETREGSET, m_pid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return fail_errno("PTRACE_SETREGSET NT_X86_XSTATE " + who(m_pid));
  return {};
}

Result<uint64_t> Tracee::signal_mask() const {
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, m_pid, reinterpret_cast<void*>(sizeof(mask)), &mask) != 0)
    return fail_errno("PTRACE_GETSIGMASK " + who(m_pid));
  return mask;
}

Result<void> Tracee::set_signal_mask(uint64_t mask) {
  if (::ptrace(PTRACE_SETSIGMASK, m_pid, reinterpret_cast<void*>(sizeof(mask)), &mask) != 0)
    return fail_errno("PTRACE_SETSIGMASK " + who(m_pid));
  return {};
}

Result<uint64_t> Tracee::find_syscall_insn() {
  std::ifstream maps("/proc/" + std::to_string(m_pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("[vdso]") == std::string::npos) continue;
    uint64_t start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    uint64_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    std::vector<std::byte> code(end - start);
    if (auto r = read_memory(start, code); !r) return tl::unexpected(r.error());
    for (size_t i = 0; i + 1 < code.size(); ++i)
      if (code[i] == std::byte{0x0f} && code[i + 1] == std::byte{0x05}) return start + i;
    return fail(ENOEXEC, "no syscall instruction in the vdso of " + who(m_pid));
  }
  return fail(ENOEXEC, who(m_pid) + " has no vdso");
}

Result<uint64_t> Tracee::syscall_insn() {
  if (m_syscall_insn == 0) {
    auto a = find_syscall_insn();
    if (!a) return tl::unexpected(a.error());
    m_syscall_insn = *a;
  }
  return m_syscall_insn;
}

Result<void> Tracee::resume_in_pause() {
  auto insn = syscall_insn();
  if (!insn) return tl::unexpected(insn.error());
  auto r = regs();
  if (!r) return tl::unexpected(r.error());
  r->rip = *insn;
  r->rax = SYS_pause;
  r->orig_rax = ~uint64_t{0};
  if (auto s = set_regs(*r); !s) return s;
  if (::ptrace(PTRACE_CONT, m_pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_CONT " + who(m_pid));
  return {};
}

Result<void> Tracee::unregister_rseq() {
  RseqConfig rs{};
  long rq = ::ptrace(static_cast<__ptrace_request>(k_ptrace_get_rseq), m_pid, reinterpret_cast<void*>(sizeof(rs)), &rs);
  if (rq <= 0 || !rs.rseq_abi_pointer) return {};  // returns the bytes it filled in; none registered
  auto r = syscall(SYS_rseq, {rs.rseq_abi_pointer, rs.rseq_abi_size, k_rseq_flag_unregister, rs.signature});
  if (!r) return tl::unexpected(r.error());
  if (*r < 0) return fail(static_cast<int>(-*r), "cannot unregister the rseq area of " + who(m_pid));
  return {};
}

Result<void> Tracee::stop(int timeout_ms) {
  if (::ptrace(PTRACE_INTERRUPT, m_pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_INTERRUPT " + who(m_pid));
  auto s = wait_stop(timeout_ms);
  return s ? Result<void>{} : tl::unexpected(s.error());
}

Result<int64_t> Tracee::syscall(long nr, std::array<uint64_t, 6> args) {
  if (auto a = syscall_insn(); !a) return tl::unexpected(a.error());
  auto saved = regs();
  if (!saved) return tl::unexpected(saved.error());
  user_regs_struct r = *saved;
  r.rip = m_syscall_insn;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = ~uint64_t{0};  // not in a syscall: nothing to restart on the way out
  r.rdi = args[0];
  r.rsi = args[1];
  r.rdx = args[2];
  r.r10 = args[3];
  r.r8 = args[4];
  r.r9 = args[5];
  if (auto s = set_regs(r); !s) return tl::unexpected(s.error());
  for (;;) {
    if (::ptrace(PTRACE_SINGLESTEP, m_pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_SINGLESTEP " + who(m_pid));
    int st = 0;
    pid_t w;
    const int64_t deadline = now_ms() + k_inject_timeout_ms;
    while ((w = ::waitpid(m_pid, &st, __WALL | WNOHANG)) == 0 && now_ms() < deadline) ::usleep(k_wait_poll_us / 4);
    if (w == 0) return fail(ETIMEDOUT, "injected syscall " + std::to_string(nr) + " did not return in " + who(m_pid));
    if (w < 0) return fail_errno("waitpid " + who(m_pid));
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      m_pid = -1;
      return fail(ESRCH, "the process exited during an injected syscall");
    }
    if (!WIFSTOPPED(st)) continue;
    int sig = WSTOPSIG(st);
    int event = st >> 16;
    if (event == 0 && sig == SIGTRAP) break;  // the step is done
    // A fault of the injection itself would come back at every retry.
    if (event == 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE)) {
      (void)set_regs(*saved);
      return fail(EFAULT, "injected syscall " + std::to_string(nr) + " faulted (" + sigabbrev_np(sig) + ") in " +
                              who(m_pid));
    }
    if (event == 0) m_signals.push_back(sig);  // held back; the step is retried
  }
  auto after = regs();
  if (!after) return tl::unexpected(after.error());
  if (after->rip != m_syscall_insn + 2)
    return fail(EFAULT, "injected syscall " + std::to_string(nr) + " did not complete in " + who(m_pid));
  if (auto s = set_regs(*saved); !s) return tl::unexpected(s.error());
  return static_cast<int64_t>(after->rax);
}

Result<void> Tracee::read_memory(uint64_t addr, std::span<std::byte> out) const {
  return copy_memory(m_pid, addr, out.data(), out.size(), Direction::from_process);
}

Result<void> Tracee::write_memory(uint64_t addr, std::span<const std::byte> data) {
  return copy_memory(m_pid, addr, const_cast<std::byte*>(data.data()), data.size(), Direction::to_process);
}

Result<uint64_t> Tracee::scratch() {
  if (m_scratch) return m_scratch;
  auto r = syscall(SYS_mmap, {0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              ~uint64_t{0}, 0});
  if (!r) return tl::unexpected(r.error());
  if (*r < 0 && *r > -4096)
    return fail(static_cast<int>(-*r), "cannot map a scratch page in " + who(m_pid) + ": " + std::strerror(static_cast<int>(-*r)));
  m_scratch = static_cast<uint64_t>(*r);
  return m_scratch;
}

Result<void> Tracee::detach() {
  if (m_pid <= 0) return {};
  if (m_scratch) {
    (void)syscall(SYS_munmap, {m_scratch, 4096});
    m_scratch = 0;
  }
  // Signals held back while we had it: pending again, delivered as it runs.
  for (int sig : m_signals) (void)::syscall(SYS_tgkill, m_pid, m_pid, sig);
  m_signals.clear();
  pid_t pid = std::exchange(m_pid, -1);
  if (::ptrace(PTRACE_DETACH, pid, nullptr, nullptr) != 0) return fail_errno("PTRACE_DETACH " + who(pid));
  return {};
}

}  // namespace mosix::migrate
