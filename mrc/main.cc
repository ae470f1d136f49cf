// mrc: run a command on a remote target with this machine's files.
#include <malloc.h>
#include <signal.h>

#include <cstdio>

#include "common/result.h"
#include "mrc/cli.h"
#include "mrc/launch.h"
#include "mrc/service_client.h"

int main(int argc, char** argv) {
  // A closed stdout must not kill us before the job's status is known.
  ::signal(SIGPIPE, SIG_IGN);
  // 1 MiB file-service buffers come and go at a high rate: keep them in the
  // heap instead of mmap/munmap + page faults per request (2.4x on cold
  // reads, docs/benchmarks.md).
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // The head node's file service is this same binary, started by mrc.
  if (int rc = mrc::launcher::maybe_run_service(argc, argv); rc >= 0) return rc;
  try {
    return mrc::launcher::launch(mrc::launcher::parse_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mrc: %s\n", e.what());
    return 255;
  }
}
