// mosctl: the administrator's commands to the local mosixd (status, join,
// leave, block/unblock a cluster) over its unix socket. What the ops do is
// the daemon's business; this is the command line and the output.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "mosix/mosixd/local_proto.h"

namespace mosix::tools {

struct MosctlOptions {
  std::string socket;                       ///< --socket PATH
  bool json = false;                        ///< --json: print the daemon's reply as is
  std::chrono::milliseconds timeout{5000};  ///< --timeout SECONDS for the daemon's answer
  std::string command;                      ///< status, join, leave, block, unblock
  gossip::ClusterId cluster = 0;            ///< block/unblock's CLUSTER
};

/// Exit statuses (mosctl.1).
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_refused = 1;  ///< the daemon answered {"ok":false}
inline constexpr int k_exit_fatal = 255;  ///< bad command line, daemon unreachable or reply malformed

/// Parses argv (--help/--version exit 0; a bad line throws mrc::Fatal).
MosctlOptions parse_mosctl_cli(int argc, char** argv);

/// The request the command sends.
nlohmann::json request_for(const MosctlOptions& o);

/// The status as a human reads it: one "label  value" line per field,
/// then the stats, one per line.
std::string format_status(const mosixd::StatusReport& s);

/// Sends the command, prints the outcome on `out` (errors on stderr as
/// "mosctl: ..."), returns the exit status. Throws mrc::Fatal if the daemon
/// cannot be reached or its reply is malformed.
int run_mosctl(const MosctlOptions& o, std::FILE* out);

}  // namespace mosix::tools
