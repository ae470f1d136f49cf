// Logging setup: spdlog to stderr (never stdout: it belongs to the job or
// the protocol). One named logger per component, made by logger().
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mrc {

/// Verbosity chosen by -v/-q: 0 = warnings and errors (default),
/// 1 = info, 2 = debug, 3+ = trace, -1 = errors only.
void setup_logging(const std::string& program, int verbosity);

/// The named logger of a component ("fileserver", "fusefs", ...), created
/// on first use with the level set by setup_logging.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

}  // namespace mrc
