// mrc's top-down launch flow (DESIGN §1, §3).
#pragma once

#include "mrc/cli.h"

namespace mrc::launcher {

/// Runs the job described by `o` and returns mrc's exit status: the job's
/// own, 128+N if it died of signal N. Throws Fatal when mrc itself fails.
int launch(const Options& o);

}  // namespace mrc::launcher
