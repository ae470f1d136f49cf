// The mrc command line (DESIGN §3): ssh-like, options before the
// destination, everything after it is the command.
#pragma once

#include <string>
#include <vector>

namespace mrc::launcher {

enum class PtyMode { Auto, Force, Never };

/// Everything the user asked for; parsed by parse_cli.
struct Options {
  std::string destination;           // "local" or [user@]host[:port]
  std::vector<std::string> command;  // argv of the job, at least one word
  std::vector<std::string> exports, read_only, keep_local;  // as typed
  int port = 0;
  std::vector<std::string> identities;
  std::string jump;
  std::vector<std::string> ssh_options;  // "-o K=V" entries
  std::string ssh_config;                // -F
  bool accept_new = false;
  PtyMode pty = PtyMode::Auto;
  std::string compress = "auto";  // auto | off | 1..19
  std::vector<std::string> env;   // --env NAME[=VALUE]
  bool no_env = false;
  int verbosity = 0;  // -v count, -q gives -1
  std::string target_binary;  // --target-binary: the mrc-target to run/upload
  double lease_s = 30;        // --lease: the target's lease term, s (DESIGN §4)
  double grace_s = 60;        // --grace: a file request unanswered this long fails, s (DESIGN §6)
};

/// Parses argv. Prints help/version and exits 0 for --help/--version;
/// throws Fatal (exit 255) with a usage message on bad input.
Options parse_cli(int argc, char** argv);

}  // namespace mrc::launcher
