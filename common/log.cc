// spdlog setup: stderr sink shared by every component logger.
#include "common/log.h"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace mrc {
namespace {

std::mutex g_mu;  // guards g_level, g_program
spdlog::level::level_enum g_level = spdlog::level::warn;
std::string g_program = "mrc";

spdlog::level::level_enum level_for(int v) {
  if (v < 0) return spdlog::level::err;
  if (v == 0) return spdlog::level::warn;
  if (v == 1) return spdlog::level::info;
  if (v == 2) return spdlog::level::debug;
  return spdlog::level::trace;
}

}  // namespace

void setup_logging(const std::string& program, int verbosity) {
  std::lock_guard lk(g_mu);
  g_level = level_for(verbosity);
  g_program = program;
  spdlog::set_level(g_level);
  spdlog::set_pattern("%^" + program + "[%P] %n %l:%$ %v");
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  if (auto l = spdlog::get(component)) return l;
  std::lock_guard lk(g_mu);
  if (auto l = spdlog::get(component)) return l;
  auto l = spdlog::stderr_logger_mt(component);
  l->set_level(g_level);
  l->set_pattern("%^" + g_program + "[%P] %n %l:%$ %v");
  return l;
}

}  // namespace mrc
