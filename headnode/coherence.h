// Leases and invalidation callbacks (DESIGN §4, docs/design.md "Leases"):
// which client sessions may cache which inodes, and the fan-out that makes
// every other holder drop its cache before a change completes. One
// Coherence per file-server process, shared by all of its sessions.
// Not the file operations (ops.cc) and not the wire (a Sink sends).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/messages.h"

namespace mrc::headnode {

struct Node;

/// What a client may cache of one node; bits of Node::cache.
enum CacheBits : uint8_t {
  /// Attributes and data (pages, readdir cache). Cleared when an Inode
  /// invalidation is sent: the client then holds nothing until it asks again.
  k_cache_attr = 1,
  /// Names looked up in this directory (positive and negative dentries).
  /// Sticky: an Entry invalidation drops one name, the others stay cached,
  /// so the client stays a holder until it forgets the directory.
  k_cache_entries = 2,
};

/// Registers that a client may cache `bits` of `n` from now on. Call it
/// *before* reading what is cached (stat, readdir, pread): a change that
/// completes after this call invalidates the client; one that completed
/// before it is seen by the read.
void hold(const Node& n, uint8_t bits);

/// One session's path to its client. Implementations must be thread-safe.
class Sink {
 public:
  virtual ~Sink() = default;
  /// Starts sending `req` and returns a waiter: it blocks until the client
  /// acknowledged (true; also when the client is gone for good) or until
  /// the deadline (false).
  virtual std::function<bool(std::chrono::steady_clock::time_point)> send(
      const proto::InvalidateReq& req) = 0;
  /// The client did not acknowledge within its lease term: end the
  /// session (its cache can no longer be trusted). Called once.
  virtual void revoke(const std::string& why) = 0;
};

/// A change that other holders must see; dev/ino name the inode changed
/// (for Entry: the directory whose entry `name` changed).
struct Change {
  proto::InvalKind kind = proto::InvalKind::Inode;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;  // Entry only
};

/// Told when an inode enters or leaves the holder index (its first node
/// of any session appears, its last one is forgotten): the watcher of
/// head-local changes follows exactly the inodes some client may cache.
class KeyObserver {
 public:
  virtual ~KeyObserver() = default;
  /// `fd`: an O_PATH descriptor of the inode, valid during the call.
  virtual void key_added(dev_t dev, ino_t ino, int fd) = 0;
  virtual void key_removed(dev_t dev, ino_t ino, int fd) = 0;
};

class Coherence {
 public:
  using Clock = std::chrono::steady_clock;

  /// Installs the observer of index keys (before any session joins).
  void set_observer(KeyObserver* o) { m_observer = o; }

  /// A session joins with its sink (which must stay valid until leave())
  /// and its lease term: how long its client trusts a renewal, hence the
  /// longest we wait for its acknowledgement. Returns its id (never 0).
  uint32_t join(Sink& sink, std::string name, std::chrono::milliseconds lease);
  /// The session ends: waits until no changed() call still uses its sink
  /// (its connection must be closed already, so that is quick), then
  /// forgets it. Its nodes must already be gone (remove_node).
  void leave(uint32_t session);

  /// Index upkeep, called by the session's NodeTable: node `n` (of
  /// n.session) exists / is forgotten. `n` must outlive its entry.
  void add_node(const Node& n);
  void remove_node(const Node& n);

  /// Makes every holder other than `origins` see `changes`: sends each
  /// affected session one Invalidate with its own nodeids and waits for
  /// the acknowledgements, at most each session's lease term; a session
  /// that stays silent is revoked. `origins` are the nodes the change went
  /// through (the file, the parent directories, the victim of an unlink):
  /// their kernel updated itself and holds locks an invalidation would
  /// wait for (fuse_reverse_inval_entry takes the directory's i_rwsem,
  /// inval_inode the pages a write holds). Empty for a change made outside
  /// the file service.
  void changed(std::span<const Node* const> origins, std::span<const Change> changes);

  /// Renew support: waits until every invalidation sent to `session` so
  /// far is acknowledged. false if that took past `deadline` or the
  /// session was revoked: the lease must not be renewed.
  bool settle(uint32_t session, Clock::time_point deadline);
  /// Time since `session` last asked to renew its lease (since it joined
  /// if it never did): how long its client has been silent.
  std::chrono::milliseconds silent_for(uint32_t session) const;

  /// Nodes indexed, every session together (for tests and -v).
  size_t indexed() const;

  // ---- descriptor budget: one O_PATH fd per indexed node -------------------

  /// From `cap` indexed nodes on, lookups wait (wait_for_room) and above
  /// 90 % of it `on_pressure` is called (it should send Forget hints until
  /// 75 % remain). 0: no limit. Set before sessions join.
  void set_budget(size_t cap, std::function<void(size_t excess)> on_pressure);
  /// Waits (at most 1 s) while the budget is spent.
  void wait_for_room();

  // ---- write leases (docs/design.md, "Write leases") ----------------------

  /// Grants `n`'s session the exclusive write lease of n's inode for one
  /// more open file, if no other session may cache the inode now. While
  /// it holds, that client may buffer writes.
  bool try_lease(const Node& n);
  /// One leased open file of `n` closed; the lease ends with the last.
  void unlease(const Node& n);
  /// The same for a client that opens without telling us (FUSE no_open):
  /// one lease per node, held until it is recalled or the node forgotten.
  /// True if `n`'s session holds (or got) it.
  bool lease_implicit(const Node& n);
  void unlease_implicit(const Node& n);
  /// hold(n, bits), and before `n`'s session reads or (bits 0) changes
  /// n's inode: if another session holds its write lease, recall it —
  /// that client sends its buffered writes and acknowledges — waiting at
  /// most that session's lease term, then revoking it.
  void access(const Node& n, uint8_t bits);
  /// The same for a change from outside the file service (recursion: our
  /// mount's head recalls its own lease): every write lease of the inode
  /// is recalled.
  void recall(dev_t dev, ino_t ino);
  /// Write leases held now.
  size_t leases() const { return m_lease_count.load(); }

 private:
  struct Member {
    Sink* sink = nullptr;
    std::string name;
    std::chrono::milliseconds lease{0};
    bool revoked = false;
    bool leaving = false;            // leave() waits: no new invalidations
    int users = 0;                   // changed() calls using `sink` right now
    Clock::time_point last_renew = Clock::now();  // or when it joined
    std::set<uint64_t> outstanding;  // invalidations sent, not yet acknowledged
  };
  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>()(static_cast<uint64_t>(k.ino) * 0x9e3779b97f4a7c15ULL ^ k.dev);
    }
  };

  KeyObserver* m_observer = nullptr;  // set before use; called under m_mu
  size_t m_cap = 0;                   // set before use
  std::function<void(size_t)> m_on_pressure;  // set before use; called under m_mu: must not block
  struct WriteLease {
    uint32_t session = 0;
    uint64_t nodeid = 0;    // the holder's nodeid for the inode
    int files = 0;           // open files of the holder under the lease
    bool implicit = false;   // held for files opened without an fh (lease_implicit)
    bool recalling = false;  // an access() is recalling it
  };
  bool grant(const Node& n, bool implicit);
  void drop(const Node& n, bool implicit);
  /// Recalls the write lease of `k` unless `session` holds it (0: any).
  void recall_other(dev_t dev, ino_t ino, uint32_t session);
  /// Marks `session` revoked (once) and returns the sink to revoke and the
  /// message, or null. Under m_mu.
  Sink* revoke_locked(uint32_t session, std::string* why);

  std::atomic<size_t> m_lease_count{0};  // m_leases.size(), plus try_lease()s in progress
  mutable std::mutex m_mu;  // guards everything below
  std::condition_variable m_settled;  // an outstanding invalidation ended, or a user let go
  std::condition_variable m_room;     // indexed nodes went below the cap
  std::unordered_map<uint32_t, Member> m_members;
  std::unordered_map<Key, std::vector<const Node*>, KeyHash> m_index;
  std::unordered_map<Key, WriteLease, KeyHash> m_leases;
  uint32_t m_next_session = 1;
  uint64_t m_next_seq = 1;
  size_t m_indexed = 0;
};

}  // namespace mrc::headnode
