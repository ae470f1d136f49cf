// The node table: server nodeid → the O_PATH fd of one inode, plus the
// reverse (dev, ino, export) → nodeid map that makes hard links share a
// nodeid. Counts lookups and drops nodes when FORGET balances them.
// Not policy (read-only exports) and no I/O beyond closing fds.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <deque>
#include <string>
#include <tuple>
#include <vector>
#include <unordered_map>

#include "common/fd.h"
#include "common/result.h"

namespace mrc::headnode {

/// Export index of the synthetic root (it belongs to no export).
inline constexpr uint32_t k_no_export = UINT32_MAX;

class Coherence;

/// One known inode of one session. Immutable after creation but for
/// `cache`, so holders of the shared_ptr use `fd` without a lock; it
/// closes when the last holder (table or an in-flight request) lets go.
struct Node {
  uint64_t nodeid = 0;
  UniqueFd fd;  // O_PATH|O_NOFOLLOW on the inode itself
  dev_t dev = 0;
  ino_t ino = 0;
  uint32_t export_idx = k_no_export;
  uint32_t session = 0;  // Coherence session id (0: none)
  uint64_t parent = 0;   // nodeid of the directory it was first found in, and
  std::string name;      // the name there: what to drop to have it forgotten
  /// CacheBits the session's client may hold (coherence.h: hold()).
  mutable std::atomic<uint8_t> cache{0};
};

class NodeTable {
 public:
  /// A table of session `session`, indexing its nodes in `coh` (null: no
  /// coherence, e.g. a lone server in tests).
  explicit NodeTable(Coherence* coh = nullptr, uint32_t session = 0);
  /// Takes every node out of the coherence index.
  ~NodeTable();
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  /// Adds a pinned node (an export root: never dropped by FORGET) and
  /// returns its nodeid.
  uint64_t add_pinned(UniqueFd fd, const struct stat& st, uint32_t export_idx);

  /// Registers one lookup of the inode `fd`/`st` in export `export_idx`:
  /// returns the existing node for (dev, ino, export) (then `fd` is
  /// closed) or a fresh one, and counts one lookup on it.
  std::shared_ptr<const Node> intern(UniqueFd fd, const struct stat& st, uint32_t export_idx,
                                     uint64_t parent = 0, const std::string& name = {});

  /// Up to `n` (parent, name) pairs of the oldest non-directory nodes, for
  /// Forget hints when descriptors run short. Each is queued again at the
  /// back (its name may be in use: the kernel then keeps it).
  std::vector<std::pair<uint64_t, std::string>> victims(size_t n);

  /// The node of inode (dev, ino) in export `export_idx`, if known.
  std::shared_ptr<const Node> find(dev_t dev, ino_t ino, uint32_t export_idx) const;

  /// The node for `nodeid`. Errors: ESTALE if unknown or forgotten.
  [[nodiscard]] Result<std::shared_ptr<const Node>> get(uint64_t nodeid) const;

  /// Subtracts `nlookup` lookups; drops the node when none are left and
  /// returns it then (else null). Unknown nodeids and pinned nodes are ignored.
  std::shared_ptr<const Node> forget(uint64_t nodeid, uint64_t nlookup);

  /// Nodes held, pinned ones included.
  size_t size() const;

 private:
  struct Slot {
    std::shared_ptr<const Node> node;
    uint64_t nlookup = 0;
    bool pinned = false;
  };
  using Key = std::tuple<dev_t, ino_t, uint32_t>;

  Coherence* const m_coh;
  const uint32_t m_session;
  mutable std::shared_mutex m_mu;  // guards m_nodes, m_by_inode, m_next
  std::unordered_map<uint64_t, Slot> m_nodes;
  std::deque<uint64_t> m_fifo;  // evictable nodeids, oldest first (may hold forgotten ones)
  std::map<Key, uint64_t> m_by_inode;
  uint64_t m_next = 2;  // nodeid 1 is the synthetic root; never reused
};

}  // namespace mrc::headnode
