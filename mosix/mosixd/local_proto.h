// The messages of mosixd's local socket (docs/mosixd-socket.md): the op
// table, request validation, and the one encoder/decoder pair per reply
// that the daemon, the tools and the tests share. JSON values only; the
// socket itself is local_socket.h.
#pragma once

#include <array>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "mosix/gossip/resources.h"

namespace mosix::mosixd {

/// Longest request line the daemon reads, bytes without the newline. The
/// largest real request is ~40 bytes; the cap bounds a bad client's memory.
inline constexpr size_t k_max_request_line = 64 * 1024;
/// Longest reply line a client reads, bytes: "nodes" for 10 000 nodes is
/// ~3 MB (~300 bytes per node), so 64 MiB leaves ample room.
inline constexpr size_t k_max_reply_line = 64u << 20;

/// Whether an op changes the daemon's state; such ops are allowed only to
/// root and to the daemon's own uid (checked once, in the server).
enum class Mutates { no, yes };
/// Whether an op takes a "cluster" argument.
enum class TakesCluster { no, yes };

/// Whether an op takes a "nonce" argument (64 hex digits).
enum class TakesNonce { no, yes };

/// One row of the op table.
struct OpSpec {
  std::string_view name;
  Mutates mutates;
  TakesCluster takes_cluster;
  TakesNonce takes_nonce = TakesNonce::no;
};

/// The op table: nodes, status, join, leave, block, unblock, sign.
std::span<const OpSpec> ops();

/// Checks a request: an object with a known "op", "cluster" (an integer
/// 1..2^32-1) exactly when the op takes one, and no other field. Returns
/// the op's row; errors (EINVAL) are the message to send back.
[[nodiscard]] mrc::Result<const OpSpec*> validate_request(const nlohmann::json& request);

/// {"op":OP} and {"op":OP,"cluster":N}.
nlohmann::json make_request(std::string_view op);
nlohmann::json make_request(std::string_view op, gossip::ClusterId cluster);

/// The "sign" op (docs/mosixd-socket.md): {"op":"sign","nonce":HEX} for
/// the 32-byte nonce of a migration hello, and its {"tag":HEX} reply.
using SignBytes = std::array<std::byte, 32>;
nlohmann::json make_sign_request(std::span<const std::byte, 32> nonce);
/// The nonce of a validated "sign" request.
SignBytes decode_sign_nonce(const nlohmann::json& request);
nlohmann::json encode_sign_reply(const SignBytes& tag);
/// The tag of a "sign" reply ({"ok":false} becomes its error). Errors
/// (EPROTO): no tag of 64 hex digits.
[[nodiscard]] mrc::Result<SignBytes> decode_sign_reply(const nlohmann::json& reply);

/// {"ok":true} and {"ok":false,"error":MESSAGE}.
nlohmann::json ok_reply();
nlohmann::json error_reply(std::string_view message);
/// A reply carrying "ok":false becomes an error with its message (EPROTO
/// with the daemon's words); any other reply is fine.
[[nodiscard]] mrc::Result<void> check_reply(const nlohmann::json& reply);

/// One entry of the "nodes" reply: a node's resources as this daemon holds them.
struct NodeReport {
  gossip::NodeId id = 0;
  std::string address;  ///< "ip:port" of its gossip endpoint
  gossip::ClusterId cluster = 0;
  gossip::Resources res;
  double age_s = 0;   ///< seconds since the node produced the entry
  bool self = false;  ///< the entry is the answering daemon's own
  bool operator==(const NodeReport&) const = default;
};

/// The "nodes" element: id, address, cluster, cpus, speed, load (float,
/// Resources.load / 100), mem_total, mem_free, swap_total, swap_free (bytes),
/// guests, accepting, age_s, self.
nlohmann::json encode_node(const NodeReport& n);
/// {"nodes":[encode_node...]} in the given order.
nlohmann::json encode_nodes(std::span<const NodeReport> nodes);
/// Decodes one element. Fields the issue-4 format requires must be present
/// with the right type; swap_*, accepting and self default; extra fields
/// are ignored (a newer daemon may add some). Errors (EPROTO) name the field.
[[nodiscard]] mrc::Result<NodeReport> decode_node(const nlohmann::json& j);
/// Decodes a "nodes" reply ({"ok":false} becomes its error), sorted by id.
[[nodiscard]] mrc::Result<std::vector<NodeReport>> decode_nodes(const nlohmann::json& reply);

/// The "status" reply.
struct StatusReport {
  gossip::NodeId id = 0;
  gossip::ClusterId cluster = 0;
  std::string address;                     ///< "ip:port"
  bool active = true;                      ///< joined (gossiping) rather than left
  std::vector<gossip::ClusterId> blocked;  ///< clusters blocked by mosctl block
  uint32_t step_ms = 0;
  uint32_t window = 0;
  uint32_t known = 0;                               ///< entries in this node's table, itself included
  nlohmann::json stats = nlohmann::json::object();  ///< gossip counters, name → number
  bool operator==(const StatusReport&) const = default;
};

nlohmann::json encode_status(const StatusReport& s);
/// Decodes a "status" reply ({"ok":false} becomes its error); errors name the field.
[[nodiscard]] mrc::Result<StatusReport> decode_status(const nlohmann::json& reply);

}  // namespace mosix::mosixd
