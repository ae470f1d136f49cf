// Handshake line formatting and strict parsing.
#include "proto/handshake.h"

#include <cctype>

#include "proto/frame.h"

namespace mrc::proto {

std::string handshake_line() {
  return "MRC " + std::to_string(k_protocol_version) + " zstd,pty\n";
}

namespace {
std::string quoted(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 80)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return "'" + out + (s.size() > 80 ? "...'" : "'");
}
}  // namespace

Result<std::vector<std::string>> parse_handshake(const std::string& line) {
  auto bad = [&](const std::string& why) {
    return fail(EPROTO, why + ": the target printed " + quoted(line) +
                            " where the mrc handshake was expected (a login script that prints "
                            "text, or not an mrc-target?)");
  };
  if (line.rfind("MRC ", 0) != 0) return bad("no handshake");
  size_t sp = line.find(' ', 4);
  if (sp == std::string::npos) return bad("malformed handshake");
  std::string ver = line.substr(4, sp - 4);
  if (ver.empty() || ver.size() > 6) return bad("malformed handshake version");
  for (char c : ver)
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad("malformed handshake version");
  if (std::stoi(ver) != k_protocol_version)
    return fail(EPROTO, "protocol version mismatch: target speaks " + ver + ", this mrc speaks " +
                            std::to_string(k_protocol_version));
  std::vector<std::string> caps;
  std::string cur;
  for (char c : line.substr(sp + 1)) {
    if (c == ',') {
      if (cur.empty()) return bad("malformed capability list");
      caps.push_back(cur);
      cur.clear();
    } else if (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      cur += c;
    } else {
      return bad("malformed capability list");
    }
  }
  if (cur.empty() && !caps.empty()) return bad("malformed capability list");
  if (!cur.empty()) caps.push_back(cur);
  return caps;
}

}  // namespace mrc::proto
