// Replaces the global operator new/delete of the proto test binary so
// AllocProbe can see every heap request (std::vector, std::string, ...).
#include "tests/unit/proto/alloc_probe.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_active{false};
std::atomic<size_t> g_largest{0};
std::atomic<size_t> g_cap{0};

void* allocate(size_t n) {
  if (g_active.load(std::memory_order_relaxed)) {
    size_t seen = g_largest.load(std::memory_order_relaxed);
    while (n > seen && !g_largest.compare_exchange_weak(seen, n)) {
    }
    if (n > g_cap.load(std::memory_order_relaxed)) throw std::bad_alloc();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) { return allocate(n); }
void* operator new[](size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace mrc::test {

AllocProbe::AllocProbe(size_t cap) {
  g_largest = 0;
  g_cap = cap;
  g_active = true;
}
AllocProbe::~AllocProbe() { g_active = false; }
size_t AllocProbe::largest() const { return g_largest.load(); }

}  // namespace mrc::test
