// The local socket's op table, request validation and reply codecs
// (docs/mosixd-socket.md is the reference; keep the two in step).
#include "mosix/mosixd/local_proto.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace mosix::mosixd {
namespace {

using nlohmann::json;

constexpr OpSpec k_ops[] = {
    {"nodes", Mutates::no, TakesCluster::no},
    {"status", Mutates::no, TakesCluster::no},
    {"join", Mutates::yes, TakesCluster::no},
    {"leave", Mutates::yes, TakesCluster::no},
    {"block", Mutates::yes, TakesCluster::yes},
    {"unblock", Mutates::yes, TakesCluster::yes},
    // The migration link's auth (docs/migration-link.md): signing with the
    // cluster key is root's (it lets a process into another node).
    {"sign", Mutates::yes, TakesCluster::no, TakesNonce::yes},
};

// Reads typed fields of one JSON object, keeping the first error: decoders
// read every field, then check error() once.
class Fields {
 public:
  Fields(const json& j, std::string_view what) : m_j(j), m_what(what) {}

  uint64_t uint(const char* field, uint64_t max, std::optional<uint64_t> dflt = {}) {
    const json* v = find(field, dflt.has_value());
    if (!v) return dflt.value_or(0);
    // A parsed "5" is unsigned, a 5 built in C++ signed: accept both when >= 0.
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0)) {
      bad(field, "is not a non-negative integer");
      return 0;
    }
    if (v->get<uint64_t>() > max) {
      bad(field, "is out of range");
      return 0;
    }
    return v->get<uint64_t>();
  }
  double number(const char* field) {
    const json* v = find(field, false);
    if (v && (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < 0)) {
      bad(field, "is not a non-negative number");
      return 0;
    }
    return v ? v->get<double>() : 0;
  }
  std::string string(const char* field) {
    const json* v = find(field, false);
    if (v && !v->is_string()) {
      bad(field, "is not a string");
      return "";
    }
    return v ? v->get<std::string>() : "";
  }
  bool boolean(const char* field, std::optional<bool> dflt = {}) {
    const json* v = find(field, dflt.has_value());
    if (v && !v->is_boolean()) {
      bad(field, "is not a boolean");
      return false;
    }
    return v ? v->get<bool>() : dflt.value_or(false);
  }
  const json* array(const char* field) {
    const json* v = find(field, false);
    if (v && !v->is_array()) {
      bad(field, "is not an array");
      return nullptr;
    }
    return v;
  }
  void bad(std::string_view field, std::string_view why) {
    if (!m_error)
      m_error = mrc::Error{EPROTO, std::string(m_what) + ": field \"" + std::string(field) + "\" " + std::string(why)};
  }
  const std::optional<mrc::Error>& error() const { return m_error; }

 private:
  const json* find(const char* field, bool optional) {
    auto it = m_j.find(field);
    if (it != m_j.end()) return &*it;
    if (!optional) bad(field, "is missing");
    return nullptr;
  }
  const json& m_j;
  std::string_view m_what;
  std::optional<mrc::Error> m_error;
};

}  // namespace

std::span<const OpSpec> ops() { return k_ops; }

mrc::Result<const OpSpec*> validate_request(const json& request) {
  if (!request.is_object()) return mrc::fail(EINVAL, "a request must be a JSON object");
  auto op = request.find("op");
  if (op == request.end() || !op->is_string()) return mrc::fail(EINVAL, "a request needs a string field \"op\"");
  auto name = op->get<std::string>();
  auto spec = std::find_if(std::begin(k_ops), std::end(k_ops), [&](const OpSpec& s) { return s.name == name; });
  if (spec == std::end(k_ops)) return mrc::fail(EINVAL, "unknown op \"" + name + "\"");
  for (auto& [key, value] : request.items()) {
    if (key == "op" || (key == "cluster" && spec->takes_cluster == TakesCluster::yes) ||
        (key == "nonce" && spec->takes_nonce == TakesNonce::yes))
      continue;
    return mrc::fail(EINVAL, "op \"" + name + "\" takes no field \"" + key + "\"");
  }
  if (spec->takes_cluster == TakesCluster::yes) {
    auto c = request.find("cluster");
    if (c == request.end()) return mrc::fail(EINVAL, "op \"" + name + "\" needs a field \"cluster\"");
    if (!c->is_number_integer() || c->get<int64_t>() < 1 ||
        c->get<uint64_t>() > std::numeric_limits<gossip::ClusterId>::max())
      return mrc::fail(EINVAL, "\"cluster\" must be a cluster id 1..4294967295");
  }
  if (spec->takes_nonce == TakesNonce::yes) {
    auto n = request.find("nonce");
    if (n == request.end() || !n->is_string() || n->get<std::string>().size() != 64 ||
        n->get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos)
      return mrc::fail(EINVAL, "op \"" + name + "\" needs a field \"nonce\" of 64 lowercase hex digits");
  }
  return &*spec;
}

json make_request(std::string_view op) { return json{{"op", op}}; }
json make_request(std::string_view op, gossip::ClusterId cluster) { return json{{"op", op}, {"cluster", cluster}}; }

namespace {

std::string to_hex(std::span<const std::byte> b) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    s += k_digits[static_cast<unsigned>(x) >> 4];
    s += k_digits[static_cast<unsigned>(x) & 15];
  }
  return s;
}

/// 64 lowercase hex digits into 32 bytes, or nothing.
std::optional<SignBytes> from_hex(const std::string& h) {
  if (h.size() != 64 || h.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  SignBytes out;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return out;
}

}  // namespace

json make_sign_request(std::span<const std::byte, 32> nonce) { return json{{"op", "sign"}, {"nonce", to_hex(nonce)}}; }

SignBytes decode_sign_nonce(const json& request) {
  return from_hex(request.at("nonce").get<std::string>()).value();  // validate_request checked it
}

json encode_sign_reply(const SignBytes& tag) { return json{{"tag", to_hex(tag)}}; }

mrc::Result<SignBytes> decode_sign_reply(const json& reply) {
  if (auto c = check_reply(reply); !c) return tl::unexpected(c.error());
  auto t = reply.find("tag");
  std::optional<SignBytes> tag = t != reply.end() && t->is_string() ? from_hex(t->get<std::string>()) : std::nullopt;
  if (!tag) return mrc::fail(EPROTO, "sign reply: no tag of 64 hex digits");
  return *tag;
}

json ok_reply() { return json{{"ok", true}}; }
json error_reply(std::string_view message) { return json{{"ok", false}, {"error", message}}; }

mrc::Result<void> check_reply(const json& reply) {
  if (!reply.is_object()) return mrc::fail(EPROTO, "reply is not a JSON object");
  auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean() || ok->get<bool>()) return {};
  auto err = reply.find("error");
  return mrc::fail(EPROTO, err != reply.end() && err->is_string() ? err->get<std::string>() : "request refused");
}

json encode_node(const NodeReport& n) {
  return json{{"id", n.id},
              {"address", n.address},
              {"cluster", n.cluster},
              {"cpus", n.res.cpus},
              {"speed", n.res.speed},
              {"load", n.res.load / 100.0},
              {"mem_total", n.res.mem_total},
              {"mem_free", n.res.mem_free},
              {"swap_total", n.res.swap_total},
              {"swap_free", n.res.swap_free},
              {"guests", n.res.guests},
              {"accepting", n.res.accepting},
              {"age_s", n.age_s},
              {"self", n.self}};
}

json encode_nodes(std::span<const NodeReport> nodes) {
  json arr = json::array();
  for (const auto& n : nodes) arr.push_back(encode_node(n));
  return json{{"nodes", std::move(arr)}};
}

mrc::Result<NodeReport> decode_node(const json& j) {
  if (!j.is_object()) return mrc::fail(EPROTO, "node entry is not a JSON object");
  constexpr uint64_t u16 = std::numeric_limits<uint16_t>::max(), u32 = std::numeric_limits<uint32_t>::max(),
                     u64 = std::numeric_limits<uint64_t>::max();
  Fields f(j, "node entry");
  NodeReport n;
  n.id = static_cast<gossip::NodeId>(f.uint("id", u32));
  n.address = f.string("address");
  n.cluster = static_cast<gossip::ClusterId>(f.uint("cluster", u32));
  n.res.cpus = static_cast<uint16_t>(f.uint("cpus", u16));
  n.res.speed = static_cast<uint32_t>(f.uint("speed", u32));
  n.res.load = static_cast<uint32_t>(std::min(std::round(f.number("load") * 100.0), static_cast<double>(u32)));
  n.res.mem_total = f.uint("mem_total", u64);
  n.res.mem_free = f.uint("mem_free", u64);
  n.res.swap_total = f.uint("swap_total", u64, 0);
  n.res.swap_free = f.uint("swap_free", u64, 0);
  n.res.guests = static_cast<uint16_t>(f.uint("guests", u16));
  n.res.accepting = f.boolean("accepting", true);
  n.age_s = f.number("age_s");
  n.self = f.boolean("self", false);
  if (f.error()) return tl::unexpected(*f.error());
  return n;
}

mrc::Result<std::vector<NodeReport>> decode_nodes(const json& reply) {
  if (auto ok = check_reply(reply); !ok) return tl::unexpected(ok.error());
  auto arr = reply.find("nodes");
  if (arr == reply.end() || !arr->is_array()) return mrc::fail(EPROTO, "reply has no \"nodes\" array");
  std::vector<NodeReport> out;
  out.reserve(arr->size());
  for (const auto& el : *arr) {
    auto n = decode_node(el);
    if (!n) return tl::unexpected(n.error());
    out.push_back(std::move(*n));
  }
  std::stable_sort(out.begin(), out.end(), [](const NodeReport& a, const NodeReport& b) { return a.id < b.id; });
  return out;
}

json encode_status(const StatusReport& s) {
  return json{{"id", s.id},         {"cluster", s.cluster}, {"address", s.address},
              {"active", s.active}, {"blocked", s.blocked}, {"step_ms", s.step_ms},
              {"window", s.window}, {"known", s.known},     {"stats", s.stats}};
}

mrc::Result<StatusReport> decode_status(const json& reply) {
  if (auto ok = check_reply(reply); !ok) return tl::unexpected(ok.error());
  constexpr uint64_t u32 = std::numeric_limits<uint32_t>::max();
  Fields f(reply, "status reply");
  StatusReport s;
  s.id = static_cast<gossip::NodeId>(f.uint("id", u32));
  s.cluster = static_cast<gossip::ClusterId>(f.uint("cluster", u32));
  s.address = f.string("address");
  s.active = f.boolean("active");
  if (const json* blocked = f.array("blocked"))
    for (const auto& b : *blocked) {
      if (!b.is_number_integer() || b.get<int64_t>() < 0 || b.get<uint64_t>() > u32)
        f.bad("blocked", "holds something not a cluster id");
      else
        s.blocked.push_back(b.get<gossip::ClusterId>());
    }
  s.step_ms = static_cast<uint32_t>(f.uint("step_ms", u32));
  s.window = static_cast<uint32_t>(f.uint("window", u32));
  s.known = static_cast<uint32_t>(f.uint("known", u32));
  if (auto st = reply.find("stats"); st != reply.end()) {
    if (!st->is_object())
      f.bad("stats", "is not an object");
    else
      s.stats = *st;
  }
  if (f.error()) return tl::unexpected(*f.error());
  return s;
}

}  // namespace mosix::mosixd
