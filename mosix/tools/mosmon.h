// mosmon's command line, its one-shot --json mode, and the snapshot fetch
// the live monitor calls every interval. The curses loop is mosmon_tty.h.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "mosix/tools/mosmon_render.h"

namespace mosix::tools {

struct MosmonOptions {
  std::string socket;                        ///< --socket PATH (default: mosixd's default)
  std::chrono::milliseconds interval{1000};  ///< --interval SECONDS between queries
  bool json = false;                         ///< --json: print one snapshot and exit
  View view = View::load;                    ///< --view: the first view shown
};

/// Parses argv (--help/--version exit 0; a bad line throws mrc::Fatal).
MosmonOptions parse_mosmon_cli(int argc, char** argv);

/// Asks the daemon for its nodes. On failure the returned snapshot keeps
/// `previous`'s nodes and carries the error, so the screen goes stale
/// rather than blank while the daemon is away.
Snapshot fetch_snapshot(const MosmonOptions& o, const Snapshot& previous);

/// --json: one {"nodes":[...]} line on `out` (sorted by id), exit status 0.
/// Throws mrc::Fatal when the daemon cannot be reached or answers badly.
int print_json_snapshot(const MosmonOptions& o, std::FILE* out);

}  // namespace mosix::tools
