// mrc: run a command on a remote target with this machine's files.
#include <signal.h>

#include <cstdio>

#include "common/result.h"
#include "mrc/cli.h"
#include "mrc/launch.h"

int main(int argc, char** argv) {
  // A closed stdout must not kill us before the job's status is known.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return mrc::launcher::launch(mrc::launcher::parse_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mrc: %s\n", e.what());
    return 255;
  }
}
