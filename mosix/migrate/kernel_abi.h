// Kernel interfaces the dump and restore use that glibc's headers lack
// (linux/ptrace.h cannot be included beside sys/ptrace.h), and the
// address format of their messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace mosix::migrate {

/// PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13, linux/ptrace.h): fills a
/// RseqConfig and returns the bytes it filled in (not 0) on success.
inline constexpr int k_ptrace_get_rseq = 0x420f;
struct RseqConfig {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size, signature, flags, pad;
};
/// rseq(2) flag that unregisters the thread's area.
inline constexpr int k_rseq_flag_unregister = 1;

/// "0x7f12..." for messages naming an address.
inline std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof(b), "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace mosix::migrate
