// Node table: a shared_mutex over two maps; fds close outside the lock.
#include "headnode/nodes.h"

#include <mutex>

#include "headnode/coherence.h"

namespace mrc::headnode {

NodeTable::NodeTable(Coherence* coh, uint32_t session) : m_coh(coh), m_session(session) {}

NodeTable::~NodeTable() {
  if (!m_coh) return;
  std::unique_lock lk(m_mu);
  for (auto& [id, slot] : m_nodes) m_coh->remove_node(*slot.node);
}

uint64_t NodeTable::add_pinned(UniqueFd fd, const struct stat& st, uint32_t export_idx) {
  auto n = std::make_shared<Node>();
  n->fd = std::move(fd);
  n->dev = st.st_dev;
  n->ino = st.st_ino;
  n->export_idx = export_idx;
  n->session = m_session;
  std::unique_lock lk(m_mu);
  n->nodeid = m_next++;
  m_by_inode[{n->dev, n->ino, export_idx}] = n->nodeid;
  if (m_coh) m_coh->add_node(*n);
  uint64_t id = n->nodeid;
  m_nodes[id] = Slot{std::move(n), 0, true};
  return id;
}

std::shared_ptr<const Node> NodeTable::intern(UniqueFd fd, const struct stat& st, uint32_t export_idx,
                                              uint64_t parent, const std::string& name) {
  auto n = std::make_shared<Node>();
  n->parent = parent;
  n->name = name;
  n->fd = std::move(fd);
  n->dev = st.st_dev;
  n->ino = st.st_ino;
  n->export_idx = export_idx;
  n->session = m_session;
  std::shared_ptr<const Node> duplicate;  // declared before the lock: closes after the unlock
  std::unique_lock lk(m_mu);
  if (auto it = m_by_inode.find({n->dev, n->ino, export_idx}); it != m_by_inode.end()) {
    Slot& s = m_nodes.at(it->second);
    s.nlookup++;
    duplicate = std::move(n);
    return s.node;
  }
  n->nodeid = m_next++;
  m_by_inode.emplace(Key{n->dev, n->ino, export_idx}, n->nodeid);
  m_nodes.emplace(n->nodeid, Slot{n, 1, false});
  if (parent != 0 && !S_ISDIR(st.st_mode)) m_fifo.push_back(n->nodeid);
  if (m_coh) m_coh->add_node(*n);
  return n;
}

std::shared_ptr<const Node> NodeTable::find(dev_t dev, ino_t ino, uint32_t export_idx) const {
  std::shared_lock lk(m_mu);
  auto it = m_by_inode.find({dev, ino, export_idx});
  if (it == m_by_inode.end()) return nullptr;
  return m_nodes.at(it->second).node;
}

Result<std::shared_ptr<const Node>> NodeTable::get(uint64_t nodeid) const {
  std::shared_lock lk(m_mu);
  auto it = m_nodes.find(nodeid);
  if (it == m_nodes.end()) return fail(ESTALE, "unknown nodeid " + std::to_string(nodeid));
  return it->second.node;
}

std::shared_ptr<const Node> NodeTable::forget(uint64_t nodeid, uint64_t nlookup) {
  std::shared_ptr<const Node> dropped;  // the caller releases it, after our unlock
  std::unique_lock lk(m_mu);
  auto it = m_nodes.find(nodeid);
  if (it == m_nodes.end() || it->second.pinned) return nullptr;
  Slot& s = it->second;
  s.nlookup = nlookup >= s.nlookup ? 0 : s.nlookup - nlookup;
  if (s.nlookup > 0) return nullptr;
  dropped = std::move(s.node);
  if (m_coh) m_coh->remove_node(*dropped);
  m_by_inode.erase({dropped->dev, dropped->ino, dropped->export_idx});
  m_nodes.erase(it);
  // victims() skips forgotten ids; keep the queue from growing without end.
  if (m_fifo.size() > 2 * m_nodes.size() + 1024)
    std::erase_if(m_fifo, [&](uint64_t id) { return !m_nodes.count(id); });
  return dropped;
}

std::vector<std::pair<uint64_t, std::string>> NodeTable::victims(size_t n) {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::unique_lock lk(m_mu);
  for (size_t tries = m_fifo.size(); out.size() < n && tries > 0; --tries) {
    uint64_t id = m_fifo.front();
    m_fifo.pop_front();
    auto it = m_nodes.find(id);
    if (it == m_nodes.end()) continue;  // forgotten already
    out.emplace_back(it->second.node->parent, it->second.node->name);
    m_fifo.push_back(id);
  }
  return out;
}

size_t NodeTable::size() const {
  std::shared_lock lk(m_mu);
  return m_nodes.size();
}

}  // namespace mrc::headnode
