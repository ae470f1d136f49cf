// mosixd: the MOSIX node daemon (mosixd(8)); the flow is daemon.cc.
#include <cstdio>
#include <exception>

#include "common/result.h"
#include "mosix/mosixd/daemon.h"

int main(int argc, char** argv) {
  try {
    return mosix::mosixd::run_daemon(mosix::mosixd::parse_daemon_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mosixd: %s\n", e.what());
    return 255;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mosixd: internal error: %s\n", e.what());
    return 255;
  }
}
