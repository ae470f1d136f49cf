// mosmon: CLI11 options, --json output, and fetching one snapshot.
#include "mosix/tools/mosmon.h"

#include <CLI/CLI.hpp>
#include <cmath>

#include "common/result.h"
#include "mosix/mosixd/cli.h"
#include "mosix/mosixd/config.h"
#include "mosix/mosixd/local_socket.h"

namespace mosix::tools {
namespace {

// Longest wait for one answer, ms: a live daemon answers in well under a
// millisecond; waiting longer only freezes the screen.
constexpr std::chrono::milliseconds k_query_timeout{2000};

}  // namespace

MosmonOptions parse_mosmon_cli(int argc, char** argv) {
  MosmonOptions o;
  CLI::App app{
      "mosmon — live per-node load, speed, memory and guests of the MOSIX cluster, as bars.\n\n"
      "  mosmon [--socket PATH] [--interval SECONDS] [--view VIEW]\n"
      "  mosmon --json            (print one snapshot and exit)\n\n"
      "Keys: l s m g choose a view, space/tab the next, arrows/PgUp/PgDn scroll, h or ? help, q quit.",
      "mosmon"};
  mosixd::add_socket_option(app, o.socket);
  double interval_s = 1.0;
  app.add_option("-i,--interval", interval_s, "seconds between updates (default 1)")
      ->check(CLI::Range(0.1, 3600.0))
      ->type_name("SECONDS");
  app.add_flag("--json", o.json, "print one snapshot as JSON and exit");
  std::string view = "load";
  app.add_option("--view", view, "first view: load, speed, memory or guests (default load)")
      ->check(CLI::IsMember({"load", "speed", "memory", "guests"}))
      ->type_name("VIEW");
  mosixd::parse_command_line(app, argc, argv);
  o.interval = std::chrono::milliseconds(std::lround(interval_s * 1000));
  while (view_name(o.view) != view) o.view = next_view(o.view);
  return o;
}

Snapshot fetch_snapshot(const MosmonOptions& o, const Snapshot& previous) {
  Snapshot s;
  s.socket = o.socket;
  auto reply = mosixd::query(o.socket, mosixd::make_request("nodes"), std::min(k_query_timeout, o.interval * 2));
  mrc::Result<std::vector<mosixd::NodeReport>> nodes = tl::unexpected(mrc::Error{});
  if (reply)
    nodes = mosixd::decode_nodes(*reply);
  else
    nodes = tl::unexpected(reply.error());
  if (nodes) {
    s.nodes = std::move(*nodes);
  } else {
    s.nodes = previous.nodes;
    s.error = nodes.error().message;
  }
  return s;
}

int print_json_snapshot(const MosmonOptions& o, std::FILE* out) {
  auto reply = mosixd::query(o.socket, mosixd::make_request("nodes"), k_query_timeout);
  if (!reply) throw mrc::Fatal(reply.error().message);
  auto nodes = mosixd::decode_nodes(*reply);
  if (!nodes) throw mrc::Fatal("mosixd on " + o.socket + ": " + nodes.error().message);
  std::string line = mosixd::encode_nodes(*nodes).dump() + "\n";
  if (std::fputs(line.c_str(), out) < 0 || std::fflush(out) != 0) throw mrc::Fatal("cannot write the snapshot");
  return 0;
}

}  // namespace mosix::tools
