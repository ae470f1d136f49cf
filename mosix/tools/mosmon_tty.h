// mosmon's live terminal monitor: the curses loop around render().
#pragma once

#include "mosix/tools/mosmon.h"

namespace mosix::tools {

/// Runs until 'q', SIGINT or SIGTERM; returns the exit status (0).
/// Throws mrc::Fatal if stdin/stdout is not a terminal.
int run_monitor(const MosmonOptions& o);

}  // namespace mosix::tools
