// CLI11 definition of mrc's options.
#include "mrc/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "common/build_id.h"
#include "common/result.h"

namespace mrc::launcher {

Options parse_cli(int argc, char** argv) {
  Options o;
  CLI::App app{
      "mrc — run a command on a remote target with this machine's files.\n\n"
      "  mrc [options] [user@]host[:port] [--] command [args...]\n"
      "  mrc [options] local command [args...]     (this machine, private namespace, no SSH)\n\n"
      "The command runs on the target with the exported directories (default: the current\n"
      "directory) visible at the same paths, the current directory and environment as here,\n"
      "stdin/stdout/stderr on this terminal, and its exit status returned (128+N if it died\n"
      "of signal N; 255 if mrc itself failed).",
      "mrc"};
  app.prefix_command();  // everything after the destination is the command
  app.set_version_flag("-V,--version", std::string("mrc ") + version());
  app.add_option("-e,--export", o.exports, "export PATH read-write (repeatable; default: the current directory)")
      ->type_name("PATH");
  app.add_option("-r,--read-only", o.read_only, "export PATH read-only (repeatable)")->type_name("PATH");
  app.add_option("--keep-local", o.keep_local,
                 "leave PATH (inside an export) to the target's own file system (repeatable)")
      ->type_name("PATH");
  app.add_option("-p,--port", o.port, "SSH port (default: from ssh config, or 22)");
  app.add_option("-i,--identity", o.identities, "SSH identity (private key) file (repeatable)")
      ->type_name("FILE");
  app.add_option("-J,--jump", o.jump, "connect through this jump host (like ssh -J)")
      ->type_name("[user@]host[:port]");
  app.add_option("-o,--ssh-option", o.ssh_options, "ssh_config option, e.g. -o ConnectTimeout=5 (repeatable)")
      ->type_name("KEY=VALUE");
  app.add_option("-F,--ssh-config", o.ssh_config, "ssh client config file (default: ~/.ssh/config)")
      ->type_name("FILE");
  app.add_flag("--accept-new", o.accept_new, "add an unknown host key to known_hosts instead of refusing");
  bool force_pty = false, no_pty = false;
  app.add_flag("-t", force_pty, "force a pseudo-terminal for the job");
  app.add_flag("-T", no_pty, "never allocate a pseudo-terminal");
  app.add_option("-z,--compress", o.compress, "zstd on the wire: auto (level 1 when it pays), off, or a level 1-19")
      ->type_name("auto|off|LEVEL");
  app.add_option("--env", o.env,
                 "NAME=VALUE sets a variable for the job; NAME passes this machine's value even if "
                 "host-bound (repeatable)")
      ->type_name("NAME[=VALUE]");
  app.add_flag("--no-env", o.no_env, "do not pass this machine's environment; the job gets the target's");
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "more diagnostics on stderr (repeatable)");
  app.add_flag("-q,--quiet", quiet, "only errors on stderr");
  app.add_option("--target-binary", o.target_binary, "the mrc-target to run or upload (default: beside mrc)")
      ->type_name("FILE");
  app.add_option("--lease", o.lease_s,
                 "lease term, s: how long the target trusts its cache without hearing from here; "
                 "also the longest a change waits for a silent target (default 30)")
      ->check(CLI::Range(0.1, 3600.0))
      ->type_name("SECONDS");
  app.add_option("--grace", o.grace_s,
                 "a file request unanswered this long fails with EIO on the target, s (default 60)")
      ->check(CLI::Range(0.5, 86400.0))
      ->type_name("SECONDS");
  app.add_option("destination", o.destination, "local, or [user@]host[:port]")->required();
  app.footer("Everything after the destination is the command and its arguments.");
  // Repeatable options take one value per occurrence (ssh-like), so that
  // "-e DIR host cmd" never swallows the destination.
  for (auto* opt : app.get_options())
    if (opt->get_expected_max() > 1) opt->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    throw Fatal("bad command line (see mrc --help)");
  }
  // prefix_command(): every word after the destination, options included,
  // is the job's, in order.
  o.command = app.remaining();
  if (!o.command.empty() && o.command.front() == "--") o.command.erase(o.command.begin());
  if (o.command.empty()) throw Fatal("no command given (usage: mrc [options] HOST command [args...])");
  if (force_pty && no_pty) throw Fatal("-t and -T contradict each other");
  o.pty = force_pty ? PtyMode::Force : no_pty ? PtyMode::Never : PtyMode::Auto;
  o.verbosity = quiet ? -1 : verbose;
  if (o.compress != "auto" && o.compress != "off") {
    char* end = nullptr;
    long lvl = std::strtol(o.compress.c_str(), &end, 10);
    if (*end || lvl < 1 || lvl > 19) throw Fatal("--compress must be auto, off or a level 1-19");
  }
  return o;
}

}  // namespace mrc::launcher
