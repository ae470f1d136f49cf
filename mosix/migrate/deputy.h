// The home end of a migration (DESIGN §7, "The deputy"): the process is
// streamed to a guest end (guest.h) over the migration link, and after the
// two-phase commit the original stays here as its deputy - same PID, same
// parent, its memory released, ptrace-held and asleep. Signals sent to it
// go to the process; its stdin, stdout and stderr are relayed; when the
// process ends there the deputy ends the same way, so the parent's wait()
// sees the status. go_home() brings the process back into the deputy.
// Driven by mosrun's loop (poll on link(), stdin_fd(); waitpid for the
// deputy), from the thread that started it (ptrace's rule).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "mosix/migrate/dump.h"
#include "mosix/migrate/link.h"
#include "mosix/migrate/tracee.h"

namespace mosix::migrate {

struct DeputyOptions {
  int zstd_level = 1;        ///< for the image's pages (0: stored)
  int connect_ms = 10'000;   ///< the destination answers within this
  int transfer_ms = 60'000;  ///< silence allowed while an image moves
  /// The home node's files for the process while it is away (DESIGN §7;
  /// home_files.h): given the file link (a TCP connection to the guest
  /// end, its token sent), hands it to the home node's file service with
  /// the exports and returns the service's socket, held open while the
  /// process is away. Unset: the guest uses the destination's own files.
  std::function<mrc::Result<mrc::UniqueFd>(mrc::UniqueFd file_link)> attach_files;
};

/// Empties `t` (held stopped, its image taken): its interval timers off,
/// its rseq area unregistered, every mapping but the vdso and the scratch
/// page unmapped; then it sleeps in pause(), still traced (resume_in_pause).
/// What a deputy and a frozen process are. Errors: the injection's.
[[nodiscard]] mrc::Result<void> release_memory(Tracee& t);

/// Input for a process that came home with stdin bytes it had not read
/// there: its fd 0 is now the read end of a FIFO whose write end this
/// holds; `pending` goes in first, then whatever `source` (its stdin
/// before, the deputy's copy) brings, until that ends - then the FIFO is
/// closed and the process sees EOF. Driven by mosrun's loop (poll `fifo`
/// for POLLOUT while pending, `source` for POLLIN when not).
struct StdinFeed {
  mrc::UniqueFd fifo;    ///< write end, O_NONBLOCK
  mrc::UniqueFd source;  ///< the old stdin; empty once it ended
  std::vector<std::byte> pending;
  /// `fifo` is writable: write what is pending. `source` is readable:
  /// take a piece. Returns false once the feed is done (everything
  /// written and the source ended, or the process closed its stdin).
  bool on_fifo();
  bool on_source();
};

class Deputy {
 public:
  /// Migrates `pid` (our child, running, not traced) to the guest end at
  /// `address` ("a.b.c.d:port": a mosixd), signing the handshake with
  /// `sign`. The two-phase commit: until the destination has the process
  /// built and says ready, and we have its word that it runs, the original
  /// is untouched, and any failure lets it run on here. Errors: the
  /// process cannot move (EOPNOTSUPP, the reason), the destination refused
  /// or failed (its words), the link (ECONNRESET, ETIMEDOUT, ...).
  [[nodiscard]] static mrc::Result<Deputy> migrate(pid_t pid, const std::string& address, const Signer& sign,
                                                   const DeputyOptions& o = {});

  pid_t pid() const { return m_tracee.pid(); }
  const std::string& where() const { return m_where; }
  const DumpStats& stats() const { return m_stats; }
  /// How long the process was frozen: from the seize to the destination's
  /// word that it runs, ms.
  double frozen_ms() const { return m_frozen_ms; }
  /// The link, to poll for input.
  int link() const { return m_link.get(); }
  /// The deputy's stdin (relayed), to poll; -1 if it is not relayed or ended.
  int stdin_fd() const { return m_in.get(); }

  /// The link is readable: one frame handled (output written, ...).
  /// Returns the wait status once the process ended there: the deputy has
  /// then been made to end the same way (reap it). Errors: the link broke
  /// - the process is lost with its node; the deputy was killed (reap it).
  [[nodiscard]] mrc::Result<std::optional<int>> on_link();
  /// Our stdin copy is readable: what it has goes to the process.
  [[nodiscard]] mrc::Result<void> on_stdin();
  /// waitpid reported `status` for the deputy: a signal sent to it goes to
  /// the process. Returns true if the deputy is gone (SIGKILL: the process
  /// there is killed too).
  [[nodiscard]] mrc::Result<bool> on_wait(int status);
  /// Brings the process home into the deputy (same PID): it runs here
  /// again and this Deputy is spent. Returns the wait status instead if it
  /// ended there meanwhile (as on_link). Errors: it could not come (the
  /// words of the end that failed) - it runs on there, the deputy stays.
  [[nodiscard]] mrc::Result<std::optional<int>> go_home();
  /// After a go_home() that brought the process here with stdin bytes it
  /// had not read there: their feed (the process must get them before the
  /// rest of its input). Empty if there were none, or if its stdin is a
  /// terminal, whose input cannot be given back (mosrun says how much was
  /// lost).
  std::optional<StdinFeed> take_stdin_feed() { return std::exchange(m_feed, std::nullopt); }

 private:
  Deputy(Tracee t, mrc::UniqueFd link, std::string where)
      : m_tracee(std::move(t)), m_link(std::move(link)), m_where(std::move(where)) {}
  mrc::Result<void> become_deputy();
  /// A commit without the destination's word that it runs: shuts the link
  /// and keeps the original frozen until a copy released there must have
  /// been killed by its guest end (two link timeouts after
  /// `committed_at`, plus a margin).
  void outlive_a_released_copy(std::chrono::steady_clock::time_point committed_at, int link_timeout_ms);
  mrc::Result<void> end_like(int status);
  mrc::Result<void> write_out(const Frame& f);
  mrc::Result<void> feed_unread(std::vector<std::byte> unread);

  Tracee m_tracee;
  mrc::UniqueFd m_link;
  std::string m_where;
  DumpStats m_stats;
  double m_frozen_ms = 0;
  int m_transfer_ms = 60'000;
  mrc::UniqueFd m_in, m_out,
      m_err;             // the deputy's relayed stdio (pidfd_getfd copies)
  mrc::UniqueFd m_files;  // the file service's socket for the home files, while away
  std::optional<StdinFeed> m_feed;
};

}  // namespace mosix::migrate
