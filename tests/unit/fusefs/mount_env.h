// When the mount tests can run (root and /dev/fuse), and whether CI forbids
// skipping them.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace mrc::fusefs {

/// Why mount tests cannot run here, or nothing if they can.
inline std::optional<std::string> mount_test_unavailable() {
  if (::geteuid() != 0) return "needs root to mount FUSE";
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return "needs /dev/fuse";
  return std::nullopt;
}

/// CI=true: a skipped mount test would hide a broken client, so fail.
inline bool ci_requires_all_tests() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

}  // namespace mrc::fusefs
