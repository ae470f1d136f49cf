// Changes made on the head node by its own programs (a user editing a file
// while jobs run) invalidate the targets' caches too (DESIGN §4). fanotify
// reports them with file handles; we keep a handle → inode map of exactly
// the inodes in the holder index, so an event costs a hash lookup, and the
// changes go to Coherence::changed() like any other. Our own writes are
// recognised by the event's pid and skipped (the file service already
// invalidated for them).
//
// Privileged (CAP_SYS_ADMIN): one filesystem mark per exported filesystem.
// Otherwise (Linux ≥ 5.13): one inode mark per indexed inode. Filesystems
// without file handles (FUSE, as on a target that re-exports) cannot be
// watched this way; they are skipped with a notice.
// Not the coherence protocol itself (coherence.h).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/fd.h"
#include "headnode/coherence.h"

namespace mrc::headnode {

/// How to mark: Auto tries a filesystem mark and falls back to inode marks
/// when that is not permitted; InodeMarks always uses them (as an
/// unprivileged user must; tests use it to check that path as root).
enum class WatchMode { Auto, InodeMarks };

class Watcher : public KeyObserver {
 public:
  /// Starts watching for `coh` (and installs itself as its observer).
  /// Null if fanotify is not available here; the reason is logged.
  static std::unique_ptr<Watcher> create(Coherence& coh, WatchMode mode = WatchMode::Auto);
  ~Watcher() override;
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void key_added(dev_t dev, ino_t ino, int fd) override;
  void key_removed(dev_t dev, ino_t ino, int fd) override;

  /// Whether every filesystem seen so far is watched with one mark.
  bool filesystem_marks() const { return m_fs_marks.load(); }
  /// Events that led to invalidations, so far (for tests and -v).
  uint64_t events() const { return m_events.load(); }

 private:
  Watcher(Coherence& coh, UniqueFd fan, UniqueFd wake);
  void loop();
  /// Turns one buffer of events into changes and hands them on.
  void handle(const char* buf, size_t len);

  struct Key {
    dev_t dev;
    ino_t ino;
  };

  Coherence& m_coh;
  UniqueFd m_fan;   // the fanotify group
  UniqueFd m_wake;  // eventfd: wakes loop() to stop
  const pid_t m_self;
  std::atomic<bool> m_fs_marks{true};  // false once a filesystem mark was refused
  std::atomic<uint64_t> m_events{0};

  std::mutex m_mu;  // guards the maps and sets below
  std::unordered_map<std::string, Key> m_by_handle;  // fsid + handle type + handle bytes
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, std::string>> m_handle_of;  // dev → ino → handle
  std::set<dev_t> m_marked;      // filesystems with a filesystem mark
  std::set<dev_t> m_unwatchable;  // filesystems without file handles (noticed once)

  std::thread m_thread;  // started last
};

}  // namespace mrc::headnode
