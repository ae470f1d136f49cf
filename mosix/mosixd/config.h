// mosixd's configuration: the TOML file (schema in docs/man/mosixd.8 and
// examples/mosix/mosixd.toml) parsed and checked into one Config struct.
// Every tunable of the node daemon is here with its unit; no defaults live
// elsewhere. Parsing only: nothing here opens sockets or starts threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "mosix/gossip/address.h"
#include "mosix/gossip/config.h"
#include "mosix/gossip/resources.h"

namespace mosix::mosixd {

/// Where mosixd looks for its config without --config.
inline constexpr const char* k_default_config_path = "/etc/mosix/mosixd.toml";
/// The unix socket local tools talk to (docs/mosixd-socket.md); systemd's
/// RuntimeDirectory=mosix creates /run/mosix.
inline constexpr const char* k_default_socket_path = "/run/mosix/mosixd.sock";
// The gossip tunables' defaults and bounds are the engine's
// (gossip/config.h, where their reasons are); the file only sets them.
inline constexpr std::chrono::milliseconds k_default_step{gossip::k_default_step_ms};
inline constexpr uint32_t k_default_window = gossip::k_default_window;
inline constexpr size_t k_min_key_bytes = gossip::k_min_key_bytes;
/// Largest window the file accepts: a sanity bound; the engine refuses a
/// window whose message would not fit its largest datagram.
inline constexpr uint32_t k_max_window = 1024;
/// A peer cluster's priority when the file gives none. As in MOSIX, lower
/// numbers are preferred (0 = highest, 65535 = lowest).
inline constexpr uint16_t k_default_priority = 50;

/// A node of a cluster as listed in the config.
struct ClusterNode {
  gossip::NodeId id = 0;
  gossip::Address address;  ///< its UDP gossip endpoint
  bool operator==(const ClusterNode&) const = default;
};

/// Another cluster this node gossips with ([[peer_cluster]]).
struct PeerCluster {
  gossip::ClusterId id = 0;
  uint16_t priority = k_default_priority;  ///< lower = preferred (MOSIX convention)
  std::vector<ClusterNode> nodes;          ///< known members (may be empty if seeds given)
  std::vector<gossip::Address> seeds;      ///< endpoints to contact first
  bool operator==(const PeerCluster&) const = default;
};

/// Everything in mosixd.toml, checked: ids >= 1 and unique across all
/// clusters, addresses numeric IPv4 "a.b.c.d:port" (the gossip wire
/// carries IPv4, gossip/address.h) and unique, ranges as documented per
/// field. The daemon maps it onto gossip::Config, whose validate() has the
/// last word (e.g. on a window too large for one datagram).
struct Config {
  std::string path;  ///< the file it came from (for messages); "" if parsed from a string

  // [node]
  gossip::NodeId id = 0;                       ///< this node, >= 1, unique in the whole system
  gossip::Address address;                     ///< this node's UDP gossip endpoint (bind address)
  gossip::ClusterId cluster = 0;               ///< this node's cluster, >= 1
  std::optional<uint32_t> speed;               ///< per-CPU speed to advertise instead of calibrating
  std::string socket = k_default_socket_path;  ///< local tools' unix socket

  // [cluster]
  std::vector<ClusterNode> nodes;      ///< this cluster's members (may include this node)
  std::vector<gossip::Address> seeds;  ///< endpoints to contact first (members learnt by gossip)
  std::string key;                     ///< shared cluster key, bytes (>= k_min_key_bytes)

  // [gossip]
  std::chrono::milliseconds step = k_default_step;  ///< gossip::k_min_step_ms .. k_max_step_ms
  uint32_t window = k_default_window;               ///< W, 2 .. k_max_window
  /// Entries older than this are dropped; unset = the gossip engine's
  /// default (derived from the expected maximum age for N and W).
  std::optional<std::chrono::milliseconds> age_limit;

  std::vector<PeerCluster> peer_clusters;  ///< [[peer_cluster]], in file order
};

/// Parses TOML text. `path` names the source in messages and anchors a
/// relative key_file. Errors (EINVAL) read "PATH:LINE: KEY: what is wrong",
/// e.g. "mosixd.toml:7: cluster.nodes[1].id: duplicate node id 3 (also at line 6)".
[[nodiscard]] mrc::Result<Config> parse_config(std::string_view text, const std::string& path);

/// Reads and parses a config file. Errors: cannot read it (errno), or parse_config's.
[[nodiscard]] mrc::Result<Config> load_config_file(const std::string& path);

/// Reads a cluster key file: it must be a regular file owned by root or by
/// us, with no group or other permissions (like ssh private keys); trailing
/// whitespace is dropped. Errors: EPERM for bad permissions, else errno.
[[nodiscard]] mrc::Result<std::string> read_key_file(const std::string& path);

/// A few lines describing `c` for `mosixd -t` (the key itself is not shown).
std::string summarize(const Config& c);

}  // namespace mosix::mosixd
