// mosixd's command line (CLI11) and the step from it to a checked Config,
// so the daemon's main() is three lines; and the command-line habits the
// mosix tools share with it. Not the daemon itself.
#pragma once

#include <optional>
#include <string>

#include "mosix/mosixd/config.h"

namespace CLI {
class App;
}

namespace mosix::mosixd {

/// What the mosixd command line asks for.
struct DaemonOptions {
  std::string config_path = k_default_config_path;  ///< --config FILE
  bool foreground = false;                          ///< -f: stay in the foreground (systemd)
  bool test_only = false;                           ///< -t: handled inside parse_daemon_cli
  std::optional<std::string> socket;                ///< --socket PATH overrides node.socket
  int verbosity = 0;                                ///< -v count, -1 for -q (mrc::setup_logging)
};

/// Parses argv. --help, --version and -t (check the config, print
/// summarize() on stdout) are answered here and exit(0); a bad command line
/// or, with -t, a bad config throws mrc::Fatal.
DaemonOptions parse_daemon_cli(int argc, char** argv);

/// Adds -V/--version ("NAME VERSION") and parses: --help and --version print
/// and exit(0); a parse error is printed by CLI11, then thrown as
/// mrc::Fatal("bad command line (see NAME --help)"). NAME is app's name.
void parse_command_line(CLI::App& app, int argc, char** argv);

/// A tool's --socket PATH, preset to k_default_socket_path.
void add_socket_option(CLI::App& app, std::string& socket);

/// Loads opts.config_path and applies the command-line overrides.
/// Throws mrc::Fatal with parse_config's message on any config error.
Config load_config(const DaemonOptions& opts);

}  // namespace mosix::mosixd
