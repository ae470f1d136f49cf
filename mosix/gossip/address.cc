// Strict parsing and printing of "a.b.c.d:port" gossip addresses.
#include "mosix/gossip/address.h"

#include <charconv>

namespace mosix::gossip {
namespace {

/// Parses a decimal number in [0, max] with no sign, no leading zeros
/// (except "0" itself) and nothing after it.
bool parse_decimal(std::string_view s, uint32_t max, uint32_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > max) return false;
  out = v;
  return true;
}

}  // namespace

std::string Address::str() const {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." + std::to_string((ip >> 8) & 0xff) +
         "." + std::to_string(ip & 0xff) + ":" + std::to_string(port);
}

mrc::Result<Address> parse_address(std::string_view text) {
  auto bad = [&](const char* why) { return mrc::fail(EINVAL, "gossip address \"" + std::string(text) + "\": " + why); };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("missing \":port\"");
  uint32_t port = 0;
  if (!parse_decimal(text.substr(colon + 1), 65535, port) || port == 0) return bad("port must be 1..65535");
  std::string_view host = text.substr(0, colon);
  Address a;
  for (int octet = 0; octet < 4; ++octet) {
    size_t dot = octet < 3 ? host.find('.') : host.size();
    if (dot == std::string_view::npos) return bad("not a numeric IPv4 address");
    uint32_t v = 0;
    if (!parse_decimal(host.substr(0, dot), 255, v)) return bad("not a numeric IPv4 address");
    a.ip = (a.ip << 8) | v;
    host = octet < 3 ? host.substr(dot + 1) : std::string_view();
  }
  a.port = static_cast<uint16_t>(port);
  return a;
}

}  // namespace mosix::gossip
