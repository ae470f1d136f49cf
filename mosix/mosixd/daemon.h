// The node daemon's top-down flow (DESIGN §7): config → speed → gossip node
// on its UDP socket → local socket → one loop that measures and gossips
// every step and answers local tools in between. Not the gossip rules
// (mosix/gossip/), the measurement (measure.h) or the socket protocol
// (local_socket.h, local_proto.h): this file wires them together.
#pragma once

#include "mosix/mosixd/cli.h"
#include "mosix/mosixd/config.h"
#include "mosix/gossip/config.h"

namespace mosix::mosixd {

/// The gossip engine's settings for `c`: its members and seeds, the peer
/// clusters (a priority p becomes the weight 1/(1+p): lower = preferred,
/// as in MOSIX), W, step, age limit and key; `boot_epoch` tells receivers
/// a restart from a replay (wall-clock ms at start).
gossip::Config gossip_config(const Config& c, uint64_t boot_epoch);

/// Runs mosixd until SIGTERM or SIGINT: detaches first unless
/// opts.foreground (then logs go to mosixd.log beside the socket). Returns
/// the exit status; throws mrc::Fatal naming the cause when it cannot start
/// (bad config, address in use, another daemon on the socket).
int run_daemon(const DaemonOptions& opts);

}  // namespace mosix::mosixd
