// CLI11 definition of mosixd's options, and the parsing habits the tools share.
#include "mosix/mosixd/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "common/build_id.h"

namespace mosix::mosixd {

void parse_command_line(CLI::App& app, int argc, char** argv) {
  app.set_version_flag("-V,--version", app.get_name() + " " + mrc::version());
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    throw mrc::Fatal("bad command line (see " + app.get_name() + " --help)");
  }
}

void add_socket_option(CLI::App& app, std::string& socket) {
  socket = k_default_socket_path;
  app.add_option("--socket", socket, "mosixd's local socket (default: " + socket + ")")->type_name("PATH");
}

DaemonOptions parse_daemon_cli(int argc, char** argv) {
  DaemonOptions o;
  CLI::App app{
      "mosixd — the MOSIX node daemon: measures this node, gossips with the cluster, serves local tools.\n\n"
      "  mosixd [-f] [--config FILE] [--socket PATH] [-v|-q]\n"
      "  mosixd -t [--config FILE]      (check the config and exit)",
      "mosixd"};
  app.add_option("-c,--config", o.config_path, std::string("config file (default: ") + k_default_config_path + ")")
      ->type_name("FILE");
  app.add_flag("-f,--foreground", o.foreground, "stay in the foreground, log to stderr (for systemd)");
  app.add_flag("-t,--test-config", o.test_only, "check the config file, print a summary and exit");
  app.add_option("--socket", o.socket, "unix socket for local tools (overrides node.socket)")->type_name("PATH");
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "more diagnostics on stderr (repeatable)");
  app.add_flag("-q,--quiet", quiet, "only errors on stderr");
  parse_command_line(app, argc, argv);
  if (o.socket && (o.socket->empty() || !o.socket->starts_with('/')))
    throw mrc::Fatal("--socket must be an absolute path");
  o.verbosity = quiet ? -1 : verbose;
  if (o.test_only) {  // like --help, answered here: main() never sees -t
    std::fputs(summarize(load_config(o)).c_str(), stdout);
    std::exit(0);
  }
  return o;
}

Config load_config(const DaemonOptions& opts) {
  auto cfg = load_config_file(opts.config_path);
  if (!cfg) throw mrc::Fatal(cfg.error().message);
  if (opts.socket) cfg->socket = *opts.socket;
  return std::move(*cfg);
}

}  // namespace mosix::mosixd
