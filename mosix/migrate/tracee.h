// Tracee: one single-threaded x86_64 process held with ptrace for a dump or
// a restore (DESIGN §7): seized without a signal (PTRACE_SEIZE, invisible
// to its parent's wait()), stopped with PTRACE_INTERRUPT, its registers,
// xstate and signal mask read and written, syscalls injected into it.
// Not a debugger: no breakpoints, no threads. Every call must come from
// the thread that seized (ptrace's rule).
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/result.h"

namespace mosix::migrate {

using mrc::Result;

class Tracee {
 public:
  /// Seizes `pid` and stops it, waiting up to `timeout_ms` for the stop.
  /// Errors: ESRCH (no such process, or it exited), EPERM (not ours,
  /// another tracer, yama ptrace_scope), ETIMEDOUT (it did not stop).
  [[nodiscard]] static Result<Tracee> seize(pid_t pid, int timeout_ms = 5000);
  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&& o) noexcept;
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  /// Detaches if still attached: the process carries on where it was.
  ~Tracee();

  pid_t pid() const { return m_pid; }

  [[nodiscard]] Result<user_regs_struct> regs() const;
  [[nodiscard]] Result<void> set_regs(const user_regs_struct& r);
  /// The XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE), as many bytes as the
  /// kernel gives (the CPU's XSAVE size for the enabled features).
  [[nodiscard]] Result<std::vector<std::byte>> xstate() const;
  [[nodiscard]] Result<void> set_xstate(std::span<const std::byte> area);
  /// Blocked signals (PTRACE_GETSIGMASK: /proc shows a ptrace-stopped
  /// thread's mask wrongly during some stops).
  [[nodiscard]] Result<uint64_t> signal_mask() const;
  [[nodiscard]] Result<void> set_signal_mask(uint64_t mask);

  /// Runs syscall `nr` inside the process with `args` and returns the
  /// kernel's raw result (a negative errno on failure). The registers are
  /// put back afterwards, so a syscall the process was in is restarted as
  /// before when it resumes. ~0.1 ms. Errors: the process died (ESRCH).
  [[nodiscard]] Result<int64_t> syscall(long nr, std::array<uint64_t, 6> args = {});

  /// Reads the process' memory (process_vm_readv; all of `out` or EFAULT).
  [[nodiscard]] Result<void> read_memory(uint64_t addr, std::span<std::byte> out) const;
  /// Writes it (process_vm_writev; pages the process cannot write, such as
  /// code, through /proc/PID/mem).
  [[nodiscard]] Result<void> write_memory(uint64_t addr, std::span<const std::byte> data);

  /// A page of scratch memory inside the process for syscalls that take
  /// pointers (mapped on first use, unmapped by detach()).
  [[nodiscard]] Result<uint64_t> scratch();
  /// From now on, injected syscalls use the `syscall` instruction at
  /// `addr` and pointers go to the page at `page` (0: none; detach() then
  /// unmaps nothing): a restore's trampoline, which outlives the mappings
  /// the instruction was first found in.
  void use_trampoline(uint64_t addr, uint64_t page) {
    m_syscall_insn = addr;
    m_scratch = page;
  }

  /// For a deputy: the process runs on, still traced, asleep in pause()
  /// (at the vdso's `syscall`; it needs no other memory). A signal sent to
  /// it stops it (a signal-delivery-stop its tracer's waitpid reports);
  /// resumed without the signal, pause() restarts. Errors: ESRCH.
  [[nodiscard]] Result<void> resume_in_pause();
  /// Turns off the process' rseq area (rseq(2) RSEQ_FLAG_UNREGISTER, the
  /// area found with PTRACE_GET_RSEQ_CONFIGURATION), if it has one: the
  /// kernel writes that area on every return to user space, and kills the
  /// process with SIGSEGV if it is gone. Before its memory is unmapped.
  [[nodiscard]] Result<void> unregister_rseq();
  /// Stops a process let run by resume_in_pause() again (PTRACE_INTERRUPT),
  /// within `timeout_ms`. Signals on their way meanwhile are held, as in
  /// seize(). Errors: ESRCH, ETIMEDOUT.
  [[nodiscard]] Result<void> stop(int timeout_ms = 5000);
  /// The address of the `syscall` instruction injections use (found in
  /// the vdso on first use).
  [[nodiscard]] Result<uint64_t> syscall_insn();

  /// Lets the process go: signals that arrived while it was held are
  /// delivered. Errors only if it vanished (ESRCH).
  [[nodiscard]] Result<void> detach();
  /// The signals that arrived while it was held, handed over instead of
  /// being delivered at detach (a deputy passes them on to its process).
  std::vector<int> take_held_signals() { return std::exchange(m_signals, {}); }
  /// Forgets the process without detaching (it was killed).
  void abandon() { m_pid = -1; }

 private:
  explicit Tracee(pid_t pid) : m_pid(pid) {}
  /// Waits for the next ptrace-stop; a signal-delivery stop of another
  /// signal is noted for detach() and the wait goes on, unless `any`.
  Result<int> wait_stop(int timeout_ms);
  Result<uint64_t> find_syscall_insn();

  pid_t m_pid = -1;
  uint64_t m_syscall_insn = 0;    ///< address of a `syscall` instruction in the process
  uint64_t m_scratch = 0;         ///< our scratch page, 0: none
  std::vector<int> m_signals;     ///< arrived while held, to deliver at detach
};

}  // namespace mosix::migrate
