// mosctl: CLI11 subcommands, the request each sends, and the output.
#include "mosix/tools/mosctl.h"

#include <CLI/CLI.hpp>
#include <cmath>

#include "common/result.h"
#include "mosix/mosixd/cli.h"
#include "mosix/mosixd/config.h"
#include "mosix/mosixd/local_socket.h"

namespace mosix::tools {
namespace {

// A counter's value as text; a group of counters ({"bad_mac":0,...}) on
// one line as "bad_mac 0, ...".
std::string stat_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_object()) return v.dump();
  std::string out;
  for (auto& [k, sub] : v.items()) out += (out.empty() ? "" : ", ") + k + " " + stat_text(sub);
  return out.empty() ? "-" : out;
}

}  // namespace

MosctlOptions parse_mosctl_cli(int argc, char** argv) {
  MosctlOptions o;
  CLI::App app{
      "mosctl — control the local MOSIX daemon.\n\n"
      "  mosctl [--socket PATH] [--json] status\n"
      "  mosctl [--socket PATH] join | leave\n"
      "  mosctl [--socket PATH] block CLUSTER | unblock CLUSTER",
      "mosctl"};
  mosixd::add_socket_option(app, o.socket);
  app.add_flag("--json", o.json, "print the daemon's JSON reply instead of text");
  double timeout_s = 5.0;
  app.add_option("--timeout", timeout_s, "seconds to wait for the daemon (default 5)")
      ->check(CLI::Range(0.1, 600.0))
      ->type_name("SECONDS");
  app.require_subcommand(1, 1);
  app.add_subcommand("status", "show this node's daemon: id, cluster, state, blocked clusters, gossip counters");
  app.add_subcommand("join", "(re)join the cluster: gossip this node and accept guests again");
  app.add_subcommand("leave", "leave the cluster: stop gossiping this node so the others phase it out");
  for (const char* name : {"block", "unblock"}) {
    auto* sub = app.add_subcommand(name, std::string(name) == "block"
                                             ? "stop gossiping with and accepting guests from cluster CLUSTER"
                                             : "undo block CLUSTER");
    sub->add_option("CLUSTER", o.cluster, "cluster id")->required()->check(CLI::Range(1u, 4294967295u));
  }
  mosixd::parse_command_line(app, argc, argv);
  o.command = app.get_subcommands().front()->get_name();
  o.timeout = std::chrono::milliseconds(std::lround(timeout_s * 1000));
  return o;
}

nlohmann::json request_for(const MosctlOptions& o) {
  if (o.command == "block" || o.command == "unblock") return mosixd::make_request(o.command, o.cluster);
  return mosixd::make_request(o.command);
}

std::string format_status(const mosixd::StatusReport& s) {
  std::string blocked;
  for (auto c : s.blocked) blocked += (blocked.empty() ? "" : ", ") + std::to_string(c);
  std::string out;
  out += "node      " + std::to_string(s.id) + " (" + s.address + ")\n";
  out += "cluster   " + std::to_string(s.cluster) + "\n";
  out += std::string("state     ") + (s.active ? "active (joined)" : "inactive (left)") + "\n";
  out += "blocked   " + (blocked.empty() ? std::string("none") : blocked) + "\n";
  out += "gossip    step " + std::to_string(s.step_ms) + " ms, window " + std::to_string(s.window) + ", " +
         std::to_string(s.known) + " nodes known\n";
  if (!s.stats.empty()) out += "counters\n";
  for (auto& [name, value] : s.stats.items())
    out += "  " + name + std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') + stat_text(value) + "\n";
  return out;
}

int run_mosctl(const MosctlOptions& o, std::FILE* out) {
  auto reply = mosixd::query(o.socket, request_for(o), o.timeout);
  if (!reply) throw mrc::Fatal(reply.error().message);
  if (auto ok = mosixd::check_reply(*reply); !ok) {
    if (o.json) std::fprintf(out, "%s\n", reply->dump().c_str());
    std::fprintf(stderr, "mosctl: %s: %s\n", o.command.c_str(), ok.error().message.c_str());
    return k_exit_refused;
  }
  if (o.json) {
    std::fprintf(out, "%s\n", reply->dump().c_str());
    return k_exit_ok;
  }
  if (o.command == "status") {
    auto s = mosixd::decode_status(*reply);
    if (!s) throw mrc::Fatal("mosixd on " + o.socket + ": " + s.error().message);
    std::fputs(format_status(*s).c_str(), out);
  } else if (o.command == "join" || o.command == "leave") {
    std::fprintf(out, "%s\n", o.command == "join" ? "joined" : "left");
  } else {
    std::fprintf(out, "%s cluster %u\n", o.command == "block" ? "blocked" : "unblocked", o.cluster);
  }
  return k_exit_ok;
}

}  // namespace mosix::tools
