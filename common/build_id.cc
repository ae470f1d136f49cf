// Build id: version plus a hash of the binary's bytes.
#include "common/build_id.h"

#include <cstdint>
#include <cstdio>
#include <fstream>

#ifndef MRC_VERSION
#define MRC_VERSION "0.0.0"
#endif

namespace mrc {

const char* version() { return MRC_VERSION; }

std::string build_id_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  // FNV-1a 64: no dependency, ~1 GB/s, good enough to tell builds apart.
  uint64_t h = 1469598103934665603ULL;
  static char buf[1 << 16];
  while (f.read(buf, sizeof(buf)) || f.gcount() > 0) {
    for (std::streamsize i = 0; i < f.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  // Built in place: GCC 12's -Warray-bounds misfires on `string + string`.
  std::string id = MRC_VERSION;
  id += '-';
  id.append(hex, 12);
  return id;
}

}  // namespace mrc
