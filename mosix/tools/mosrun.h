// mosrun (run a command as a migratable process: checkpoints, periodic or
// requested, recovery; live migration, its deputy; freezing), migrate
// (PID NODE|home|checkpoint|freeze|continue) and mosps (this node's MOSIX
// processes). MOSIX's names and options (DESIGN §7, Tools). Parsing and
// the run loops; the mains are thin.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mosix::tools {

struct MosrunOptions {
  std::string checkpoint;               ///< -C FILE: checkpoints go to FILE.1, FILE.2, ...
  int every_minutes = 0;                ///< -A MINUTES: a checkpoint that often (needs -C)
  std::string recover;                  ///< -R FILE: recover this checkpoint instead of starting a command
  std::string socket;                   ///< --socket PATH: the local mosixd (node numbers, the migration link's auth)
  int link_timeout_s = 60;              ///< --link-timeout: silence allowed on the migration link, seconds
  std::string freeze_dir = "/var/tmp";  ///< --freeze-dir: where a frozen process's image goes
  /// --mrc PATH: the mrc whose file service gives a migrated process its
  /// home files (default: the mrc beside mosrun).
  std::string mrc;
  /// --local-files: a migrated process uses the destination's own files
  /// at the same paths instead of its home node's.
  bool local_files = false;
  std::vector<std::string> command;
};

/// Parses mosrun's command line (the command: every word from the first
/// that is not one of ours). --help/--version print and exit 0; a bad
/// line throws mrc::Fatal naming the problem.
MosrunOptions parse_mosrun_cli(int argc, char** argv);

/// Starts (or recovers) the process and stays its parent: checkpoints it
/// every -A minutes and on `migrate PID checkpoint` (or SIGUSR1 to
/// mosrun), moves it on `migrate PID NODE|home` (its deputy then relays),
/// forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it, and returns its exit
/// status (128+N if signal N killed it; 255 if mosrun itself failed).
/// migrate's requests come on the abstract unix socket
/// "\0mosix-mosrun-PID": a line (NODE, home, checkpoint), answered "ok"
/// or "error: WHY".
int run_mosrun(const MosrunOptions& o);

struct MigrateOptions {
  pid_t pid = 0;
  bool verbose = false;  ///< -v: say what moved and for how long the process was frozen
  std::string where;     ///< a node number, a.b.c.d:port, home, freeze, continue, checkpoint
};

/// Parses migrate's command line; as parse_mosrun_cli.
MigrateOptions parse_migrate_cli(int argc, char** argv);

/// Asks the mosrun that runs `pid` to act and waits for it to be done;
/// returns 0, or prints why not and returns 1.
int run_migrate(const MigrateOptions& o);

struct MospsOptions {
  bool json = false;  ///< --json: {"processes":[{pid, where, frozen, moves, checkpoints, command, cannot_move?}]}
};

/// Parses mosps' command line; as parse_mosrun_cli.
MospsOptions parse_mosps_cli(int argc, char** argv);

/// Lists the MOSIX processes of this node (network namespace): every
/// mosrun that answers on its control socket, with where its process
/// runs, whether it is frozen, how often it moved, and why it cannot move
/// if it cannot. Returns 0 (1 if /proc/net/unix cannot be read).
int run_mosps(const MospsOptions& o);

}  // namespace mosix::tools
