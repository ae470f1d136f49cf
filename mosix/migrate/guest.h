// The guest end of a migration (DESIGN §7): on the node a process moves
// to, one connection is served from start to end - the handshake, the
// restore while image frames arrive, "ready", the commit, then the guest's
// life: stdin in, stdout and stderr out, signals from its deputy, its exit
// status home; or its way back (the image home, the reverse commit).
// Runs in a process of its own (mosixd forks one per guest): the restore
// forks, and the guest is this process's child.
#pragma once

#include <string>

namespace mosix::migrate {

struct GuestOptions {
  std::string key;            ///< the cluster key: the home end must sign with it
  int handshake_ms = 10'000;  ///< the home end's auth within this
  int transfer_ms = 60'000;   ///< silence allowed while an image moves
  int commit_ms = 30'000;     ///< the commit (or an abort) within this after "ready"
};

/// Serves the migration arriving on the connected TCP socket `conn`
/// (owned: closed on return). Returns 0 when the guest exited (its status
/// went home) or went home; 1 when the migration failed before commit
/// (nothing ran here) or the home end vanished (the guest is killed: its
/// deputy, and so its files and terminal, are gone). Logs each outcome.
int serve_guest(int conn, const GuestOptions& o);

}  // namespace mosix::migrate
