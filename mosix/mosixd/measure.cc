// Measurer: /proc/stat and /proc/meminfo parsing, run-queue smoothing and
// normalisation.
#include "mosix/mosixd/measure.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "mosix/mosixd/files.h"

namespace mosix::mosixd {
namespace {

int affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Parses a whole decimal string; nullopt if anything else is in it.
std::optional<uint64_t> whole_number(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

MeasureSources system_sources() {
  return MeasureSources{[](const std::string& p) { return read_text_file(p); }, affinity_cpus};
}

mrc::Result<MemInfo> parse_meminfo(std::string_view text) {
  std::optional<uint64_t> total, free, available, swap_total, swap_free;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::optional<uint64_t>* slot = key == "MemTotal"       ? &total
                                    : key == "MemFree"      ? &free
                                    : key == "MemAvailable" ? &available
                                    : key == "SwapTotal"    ? &swap_total
                                    : key == "SwapFree"     ? &swap_free
                                                            : nullptr;
    if (!slot) continue;
    std::string_view value = trim(line.substr(colon + 1));
    uint64_t scale = 1;
    if (value.ends_with("kB")) {
      value = trim(value.substr(0, value.size() - 2));
      scale = 1024;
    }
    auto v = whole_number(value);
    if (!v || *v > std::numeric_limits<uint64_t>::max() / scale)
      return mrc::fail(EINVAL, "/proc/meminfo: bad value for " + std::string(key) + ": \"" +
                                   std::string(trim(line.substr(colon + 1))) + "\"");
    *slot = *v * scale;
  }
  if (!total) return mrc::fail(EINVAL, "/proc/meminfo: no MemTotal line");
  if (!free) return mrc::fail(EINVAL, "/proc/meminfo: no MemFree line");
  return MemInfo{*total, available.value_or(*free), swap_total.value_or(0), swap_free.value_or(0)};
}

mrc::Result<uint32_t> parse_procs_running(std::string_view text) {
  constexpr std::string_view k_key = "procs_running ";
  size_t at = text.starts_with(k_key) ? 0 : text.find(std::string("\n") + std::string(k_key));
  if (at == std::string_view::npos) return mrc::fail(EINVAL, "/proc/stat: no procs_running line");
  if (at != 0) ++at;  // past the newline
  std::string_view rest = text.substr(at + k_key.size());
  auto v = whole_number(trim(rest.substr(0, rest.find('\n'))));
  if (!v || *v > std::numeric_limits<uint32_t>::max()) return mrc::fail(EINVAL, "/proc/stat: bad procs_running value");
  return static_cast<uint32_t>(*v);
}

double load_decay(std::chrono::milliseconds step) {
  return std::exp(-static_cast<double>(step.count()) / static_cast<double>(k_load_time_constant.count()));
}

uint32_t normalised_load(double runnable, uint16_t cpus, uint32_t speed) {
  if (cpus == 0 || speed == 0) return 0;
  double l = 100.0 * runnable / cpus * (static_cast<double>(gossip::k_standard_speed) / speed);
  return static_cast<uint32_t>(std::clamp(std::round(l), 0.0, static_cast<double>(UINT32_MAX)));
}

Measurer::Measurer(uint32_t speed, std::chrono::milliseconds step, MeasureSources sources)
    : m_speed(speed), m_decay(load_decay(step)), m_sources(std::move(sources)) {}

mrc::Result<gossip::Resources> Measurer::measure(uint16_t guests, Accepting accepting) {
  auto stat = m_sources.read_file("/proc/stat");
  if (!stat) return tl::unexpected(stat.error());
  auto running = parse_procs_running(*stat);
  if (!running) return tl::unexpected(running.error());
  auto meminfo_text = m_sources.read_file("/proc/meminfo");
  if (!meminfo_text) return tl::unexpected(meminfo_text.error());
  auto mem = parse_meminfo(*meminfo_text);
  if (!mem) return tl::unexpected(mem.error());

  // procs_running counts the thread reading it: that is us, not load.
  double sample = *running > 0 ? *running - 1.0 : 0.0;
  m_runnable = m_runnable ? *m_runnable * m_decay + sample * (1 - m_decay) : sample;

  gossip::Resources r;
  r.cpus = static_cast<uint16_t>(std::clamp(m_sources.online_cpus(), 1, 65535));
  r.speed = m_speed;
  r.load = normalised_load(*m_runnable, r.cpus, m_speed);
  r.mem_total = mem->mem_total;
  r.mem_free = mem->mem_available;
  r.swap_total = mem->swap_total;
  r.swap_free = mem->swap_free;
  r.guests = guests;
  r.accepting = accepting == Accepting::yes;
  return r;
}

}  // namespace mosix::mosixd
