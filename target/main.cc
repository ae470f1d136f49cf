// mrc-target: the target runtime binary. Started by mrc over SSH (or by
// `mrc local`); see target/runtime.h.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "target/runtime.h"

int main(int argc, char** argv) {
  // A job closing its stdin must not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // 1 MiB file-service buffers come and go at a high rate: keep them in the
  // heap instead of mmap/munmap + page faults per request (2.4x on cold
  // reads, docs/benchmarks.md).
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"mrc-target: the target side of mrc (started by mrc, not by hand)"};
  bool version = false;
  int verbose = 0;
  app.add_flag("--version", version, "print the build id and exit");
  auto* serve = app.add_subcommand("serve", "serve one job over stdin/stdout");
  serve->add_flag("-v,--verbose", verbose, "more log output on stderr (repeatable)");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::printf("mrc-target %s\n", mrc::target::build_id().c_str());
    return 0;
  }
  if (!*serve) {
    std::fprintf(stderr, "%s", app.help().c_str());
    return 2;
  }
  int rc = mrc::target::serve({.verbosity = verbose});
  std::fflush(stderr);
  // Skip destructors: FUSE worker threads may still sit in the kernel; the
  // mounts die with our private namespace.
  ::_exit(rc);
}
