// Build identity of an mrc binary: "<version>-<12 hex of FNV-1a-64 of the
// file>". mrc and mrc-target compare these to decide whether the target's
// cached copy is this very build (DESIGN §3).
#pragma once

#include <string>

namespace mrc {

/// The project version (CMake's PROJECT_VERSION).
const char* version();
/// Build id of the binary at `path` ("/proc/self/exe" for our own);
/// empty if it cannot be read.
std::string build_id_of(const std::string& path);

}  // namespace mrc
