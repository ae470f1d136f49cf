// parse_config: mosixd.toml (toml++) → Config, with every error naming the
// file, the line and the key. The only user of toml++ in the tree.
#include "mosix/mosixd/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <map>

#include "common/fd.h"
#include "mosix/mosixd/files.h"

namespace mosix::mosixd {
namespace {

// Thrown only inside this file: a config error unwinds the nested checks
// to parse_config, which returns it as a Result. Never escapes.
struct Bad {
  std::string message;
};

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date/time";
  }
}

// Validates one parsed document. Keys are reported as dotted paths
// ("cluster.nodes[1].id"); arrays are indexed from 0.
class Checker {
 public:
  explicit Checker(std::string file) : m_file(std::move(file)) {}

  [[noreturn]] void fail(const toml::node* at, const std::string& key, const std::string& what) const {
    std::string where = m_file.empty() ? "<config>" : m_file;
    if (at && at->source().begin.line > 0) where += ":" + std::to_string(at->source().begin.line);
    throw Bad{where + ": " + key + ": " + what};
  }
  static int line(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

  // Refuses keys of `t` not in `known`: a typo must not be silently ignored.
  void only_keys(const toml::table& t, const std::string& prefix, std::initializer_list<std::string_view> known) const {
    for (auto&& [k, v] : t) {
      if (std::find(known.begin(), known.end(), k.str()) != known.end()) continue;
      std::string list;
      for (auto name : known) list += (list.empty() ? "" : ", ") + std::string(name);
      fail(&v, prefix + std::string(k.str()), "unknown key (known here: " + list + ")");
    }
  }

  const toml::node* get(const toml::table& t, const std::string& prefix, std::string_view key, bool required,
                        std::string_view meaning) const {
    const toml::node* n = t.get(key);
    if (!n && required) fail(&t, prefix + std::string(key), "missing (" + std::string(meaning) + ")");
    return n;
  }

  int64_t integer(const toml::table& t, const std::string& prefix, std::string_view key, int64_t lo, int64_t hi,
                  std::optional<int64_t> dflt, std::string_view meaning) const {
    const toml::node* n = get(t, prefix, key, !dflt, meaning);
    if (!n) return *dflt;
    std::string path = prefix + std::string(key);
    if (!n->is_integer()) fail(n, path, "expected an integer, got " + type_name(*n));
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      fail(n, path, "must be " + std::to_string(lo) + ".." + std::to_string(hi) + " (got " + std::to_string(v) + ")");
    return v;
  }

  const std::string* string(const toml::table& t, const std::string& prefix, std::string_view key, bool required,
                            std::string_view meaning) const {
    const toml::node* n = get(t, prefix, key, required, meaning);
    if (!n) return nullptr;
    if (!n->is_string()) fail(n, prefix + std::string(key), "expected a string, got " + type_name(*n));
    return &n->as_string()->get();
  }

  gossip::Address endpoint(const toml::node& n, const std::string& path) const {
    if (!n.is_string()) fail(&n, path, "expected an \"ip:port\" string, got " + type_name(n));
    auto a = gossip::parse_address(n.as_string()->get());
    if (!a) fail(&n, path, a.error().message);
    if (!a->valid()) fail(&n, path, "0.0.0.0 is not an address a peer can send to");
    return *a;
  }

  const toml::array* array(const toml::table& t, const std::string& prefix, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (n && !n->is_array()) fail(n, prefix + std::string(key), "expected an array, got " + type_name(*n));
    return n ? n->as_array() : nullptr;
  }

  const toml::table* table(const toml::table& t, std::string_view key, bool required, std::string_view meaning) const {
    const toml::node* n = t.get(key);
    if (!n && required)
      throw Bad{(m_file.empty() ? "<config>" : m_file) + ": missing table [" + std::string(key) + "] (" +
                std::string(meaning) + ")"};
    if (n && !n->is_table()) fail(n, std::string(key), "expected a table, got " + type_name(*n));
    return n ? n->as_table() : nullptr;
  }

  const std::string& file() const { return m_file; }

 private:
  std::string m_file;
};

// Node ids and addresses seen so far, with the line that introduced them:
// both must be unique across every cluster of the system.
struct Seen {
  std::map<gossip::NodeId, int> ids;
  std::map<std::string, std::pair<gossip::NodeId, int>> addresses;  // address → (id, line)
  int self_listed = 0;  // line where this node appears in cluster.nodes; 0 = not yet
};

// Whether a node list may name this node (its own cluster's list may).
enum class SelfAllowed { no, yes };

std::vector<ClusterNode> parse_nodes(const Checker& c, const toml::array& arr, const std::string& prefix,
                                     const Config& self, Seen& seen, SelfAllowed self_allowed) {
  std::vector<ClusterNode> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string at = prefix + "[" + std::to_string(i) + "]";
    const toml::node& el = arr[i];
    if (!el.is_table()) c.fail(&el, at, "expected a table {id = N, address = \"ip:port\"}, got " + type_name(el));
    const toml::table& t = *el.as_table();
    c.only_keys(t, at + ".", {"id", "address"});
    ClusterNode n;
    n.id = static_cast<gossip::NodeId>(c.integer(t, at + ".", "id", 1, UINT32_MAX, {}, "the node's id, >= 1"));
    n.address = c.endpoint(*c.get(t, at + ".", "address", true, "the node's \"ip:port\""), at + ".address");
    int line = Checker::line(t);
    // This node may appear in its own cluster's list (one file for all
    // nodes), but only as itself.
    bool is_self =
        self_allowed == SelfAllowed::yes && !seen.self_listed && n.id == self.id && n.address == self.address;
    if (is_self) seen.self_listed = line;
    if (self_allowed == SelfAllowed::yes && n.id == self.id && n.address != self.address)
      c.fail(t.get("address"), at + ".address",
             "node " + std::to_string(n.id) + " is this node, but its address " + n.address.str() +
                 " differs from node.address " + self.address.str());
    if (auto it = seen.ids.find(n.id); it != seen.ids.end() && !is_self)
      c.fail(t.get("id"), at + ".id",
             "duplicate node id " + std::to_string(n.id) + " (also at line " + std::to_string(it->second) + ")");
    if (auto it = seen.addresses.find(n.address.str()); it != seen.addresses.end() && !is_self)
      c.fail(t.get("address"), at + ".address",
             "duplicate address " + n.address.str() + " (node " + std::to_string(it->second.first) + " at line " +
                 std::to_string(it->second.second) + ")");
    seen.ids.emplace(n.id, line);
    seen.addresses.emplace(n.address.str(), std::pair{n.id, line});
    out.push_back(n);
  }
  return out;
}

std::vector<gossip::Address> parse_seeds(const Checker& c, const toml::array& arr, const std::string& prefix) {
  std::vector<gossip::Address> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string at = prefix + "[" + std::to_string(i) + "]";
    gossip::Address ep = c.endpoint(arr[i], at);
    if (std::find(out.begin(), out.end(), ep) != out.end()) c.fail(&arr[i], at, "duplicate seed " + ep.str());
    out.push_back(ep);
  }
  return out;
}

std::string key_file_path(const std::string& config_path, const std::string& key_file) {
  if (key_file.starts_with('/') || config_path.find('/') == std::string::npos) return key_file;
  return config_path.substr(0, config_path.rfind('/') + 1) + key_file;
}

void parse_node(const Checker& c, const toml::table& t, Config& cfg, Seen& seen) {
  c.only_keys(t, "node.", {"id", "address", "cluster", "speed", "socket"});
  cfg.id = static_cast<gossip::NodeId>(c.integer(t, "node.", "id", 1, UINT32_MAX, {}, "this node's id, >= 1"));
  cfg.address = c.endpoint(*c.get(t, "node.", "address", true, "this node's UDP gossip \"ip:port\""), "node.address");
  cfg.cluster =
      static_cast<gossip::ClusterId>(c.integer(t, "node.", "cluster", 1, UINT32_MAX, {}, "this node's cluster, >= 1"));
  if (t.get("speed"))
    cfg.speed = static_cast<uint32_t>(c.integer(t, "node.", "speed", 1, UINT32_MAX, {}, "per-CPU speed"));
  if (auto* s = c.string(t, "node.", "socket", false, "")) {
    if (s->empty() || !s->starts_with('/')) c.fail(t.get("socket"), "node.socket", "must be an absolute path");
    cfg.socket = *s;
  }
  int line = Checker::line(t);
  seen.ids.emplace(cfg.id, line);
  seen.addresses.emplace(cfg.address.str(), std::pair{cfg.id, line});
}

void parse_cluster(const Checker& c, const toml::table& t, Config& cfg, Seen& seen) {
  c.only_keys(t, "cluster.", {"nodes", "seeds", "key", "key_file"});
  if (auto* a = c.array(t, "cluster.", "nodes"))
    cfg.nodes = parse_nodes(c, *a, "cluster.nodes", cfg, seen, SelfAllowed::yes);
  if (auto* a = c.array(t, "cluster.", "seeds")) cfg.seeds = parse_seeds(c, *a, "cluster.seeds");
  const std::string* key = c.string(t, "cluster.", "key", false, "");
  const std::string* key_file = c.string(t, "cluster.", "key_file", false, "");
  if (key && key_file) c.fail(t.get("key_file"), "cluster.key_file", "give key or key_file, not both");
  if (!key && !key_file)
    c.fail(&t, "cluster.key", "missing (set key or key_file: the shared secret that authenticates peers)");
  if (key) {
    cfg.key = *key;
  } else {
    auto k = read_key_file(key_file_path(c.file(), *key_file));
    if (!k) c.fail(t.get("key_file"), "cluster.key_file", k.error().message);
    cfg.key = std::move(*k);
  }
  if (cfg.key.size() < k_min_key_bytes)
    c.fail(t.get(key ? "key" : "key_file"), key ? "cluster.key" : "cluster.key_file",
           "the key must be at least " + std::to_string(k_min_key_bytes) + " bytes (got " +
               std::to_string(cfg.key.size()) + ")");
}

void parse_gossip(const Checker& c, const toml::table& t, Config& cfg) {
  c.only_keys(t, "gossip.", {"step_ms", "window", "age_limit_s"});
  cfg.step = std::chrono::milliseconds(
      c.integer(t, "gossip.", "step_ms", gossip::k_min_step_ms, gossip::k_max_step_ms, k_default_step.count(), ""));
  cfg.window = static_cast<uint32_t>(c.integer(t, "gossip.", "window", 2, k_max_window, k_default_window, ""));
  if (const toml::node* n = t.get("age_limit_s")) {
    if (!n->is_number()) c.fail(n, "gossip.age_limit_s", "expected a number of seconds, got " + type_name(*n));
    double s = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
    auto ms = std::chrono::milliseconds(std::isfinite(s) ? std::llround(std::min(s, 1e9) * 1000) : -1);
    if (ms <= cfg.step)
      c.fail(n, "gossip.age_limit_s",
             "must be longer than one step (" + std::to_string(cfg.step.count()) + " ms), got " + std::to_string(s));
    cfg.age_limit = ms;
  }
}

void parse_peers(const Checker& c, const toml::node& n, Config& cfg, Seen& seen) {
  if (!n.is_array_of_tables())
    c.fail(&n, "peer_cluster", "expected an array of tables ([[peer_cluster]]), got " + type_name(n));
  const toml::array& arr = *n.as_array();
  std::map<gossip::ClusterId, int> ids;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string at = "peer_cluster[" + std::to_string(i) + "]";
    const toml::table& t = *arr[i].as_table();
    c.only_keys(t, at + ".", {"id", "priority", "nodes", "seeds"});
    PeerCluster p;
    p.id = static_cast<gossip::ClusterId>(c.integer(t, at + ".", "id", 1, UINT32_MAX, {}, "the cluster's id, >= 1"));
    if (p.id == cfg.cluster)
      c.fail(t.get("id"), at + ".id", "cluster " + std::to_string(p.id) + " is this node's own cluster");
    if (auto it = ids.find(p.id); it != ids.end())
      c.fail(t.get("id"), at + ".id",
             "duplicate peer cluster " + std::to_string(p.id) + " (also at line " + std::to_string(it->second) + ")");
    ids.emplace(p.id, Checker::line(t));
    p.priority = static_cast<uint16_t>(c.integer(t, at + ".", "priority", 0, 65535, k_default_priority, ""));
    if (auto* a = c.array(t, at + ".", "nodes"))
      p.nodes = parse_nodes(c, *a, at + ".nodes", cfg, seen, SelfAllowed::no);
    if (auto* a = c.array(t, at + ".", "seeds")) p.seeds = parse_seeds(c, *a, at + ".seeds");
    if (p.nodes.empty() && p.seeds.empty())
      c.fail(&t, at, "needs nodes or seeds (otherwise cluster " + std::to_string(p.id) + " cannot be reached)");
    cfg.peer_clusters.push_back(std::move(p));
  }
}

}  // namespace

mrc::Result<Config> parse_config(std::string_view text, const std::string& path) {
  Checker c(path);
  Config cfg;
  cfg.path = path;
  try {
    toml::table root;
    try {
      root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
      const auto& at = e.source().begin;
      return mrc::fail(EINVAL, (path.empty() ? "<config>" : path) + ":" + std::to_string(at.line) + ":" +
                                   std::to_string(at.column) + ": " + std::string(e.description()));
    }
    c.only_keys(root, "", {"node", "cluster", "gossip", "peer_cluster"});
    Seen seen;
    parse_node(c, *c.table(root, "node", true, "id, address, cluster of this node"), cfg, seen);
    parse_cluster(c, *c.table(root, "cluster", true, "the cluster's nodes or seeds and its key"), cfg, seen);
    if (auto* g = c.table(root, "gossip", false, "")) parse_gossip(c, *g, cfg);
    if (const toml::node* p = root.get("peer_cluster")) parse_peers(c, *p, cfg, seen);
  } catch (const Bad& b) {
    return mrc::fail(EINVAL, b.message);
  }
  return cfg;
}

mrc::Result<Config> load_config_file(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return mrc::fail(text.error().code, "cannot read config " + text.error().message);
  return parse_config(*text, path);
}

mrc::Result<std::string> read_key_file(const std::string& path) {
  mrc::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return mrc::fail_errno("cannot read key file " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return mrc::fail_errno("cannot stat key file " + path);
  if (!S_ISREG(st.st_mode)) return mrc::fail(EINVAL, "key file " + path + " is not a regular file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return mrc::fail(EPERM,
                     "key file " + path + " is owned by uid " + std::to_string(st.st_uid) + ", not by root or by us");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return mrc::fail(EPERM, "key file " + path + " is accessible by group or others (mode " + mode + "); chmod 600 it");
  }
  auto text = read_text_fd(fd.get(), path, 64 * 1024);
  if (!text) return mrc::fail(text.error().code, "cannot read key file " + text.error().message);
  while (!text->empty() && std::strchr(" \t\r\n", text->back())) text->pop_back();
  return text;
}

std::string summarize(const Config& c) {
  std::string out = "node " + std::to_string(c.id) + " at " + c.address.str() + ", cluster " +
                    std::to_string(c.cluster) + ", speed " +
                    (c.speed ? std::to_string(*c.speed) : std::string("calibrated at start")) + "\n";
  out += "local socket " + c.socket + "\n";
  out += "cluster " + std::to_string(c.cluster) + ": " + std::to_string(c.nodes.size()) + " nodes, " +
         std::to_string(c.seeds.size()) + " seeds, key of " + std::to_string(c.key.size()) + " bytes\n";
  out += "gossip: step " + std::to_string(c.step.count()) + " ms, window " + std::to_string(c.window) + ", age limit " +
         (c.age_limit ? std::to_string(c.age_limit->count()) + " ms" : std::string("default")) + "\n";
  for (const auto& p : c.peer_clusters)
    out += "peer cluster " + std::to_string(p.id) + " (priority " + std::to_string(p.priority) +
           "): " + std::to_string(p.nodes.size()) + " nodes, " + std::to_string(p.seeds.size()) + " seeds\n";
  return out;
}

}  // namespace mosix::mosixd
