// mosrun (run a command as a migratable process, with periodic or
// requested checkpoints, or recover one from its checkpoint) and migrate
// (today: PID checkpoint). MOSIX's names and options (DESIGN §7, Tools).
// Parsing and the run loops; the mains are thin.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mosix::tools {

struct MosrunOptions {
  std::string checkpoint;  ///< -C FILE: checkpoints go to FILE.1, FILE.2, ...
  int every_minutes = 0;   ///< -A MINUTES: a checkpoint that often (needs -C)
  std::string recover;     ///< -R FILE: recover this checkpoint instead of starting a command
  std::vector<std::string> command;
};

/// Parses mosrun's command line (the command: every word from the first
/// that is not one of ours). --help/--version print and exit 0; a bad
/// line throws mrc::Fatal naming the problem.
MosrunOptions parse_mosrun_cli(int argc, char** argv);

/// Starts (or recovers) the process and stays its parent: checkpoints it
/// every -A minutes and on `migrate PID checkpoint` (SIGUSR1 to mosrun),
/// forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it, and returns its exit
/// status (128+N if signal N killed it; 255 if mosrun itself failed).
int run_mosrun(const MosrunOptions& o);

struct MigrateOptions {
  pid_t pid = 0;
  std::string where;  ///< "checkpoint" (others: a node, home, freeze, continue - not yet)
};

/// Parses migrate's command line; as parse_mosrun_cli.
MigrateOptions parse_migrate_cli(int argc, char** argv);

/// Asks the mosrun that runs `pid` to act; returns the exit status.
int run_migrate(const MigrateOptions& o);

}  // namespace mosix::tools
