// Dump of real child processes: a workload sets up state (a handler, a
// timer, umask, a shared open file, a half-touched array, a blocked
// signal) and waits in pause(); the test freezes it, checks what the dump
// saw, streams an image and reads it back, then lets the child go, and
// the child checks its own state was left as it was (zdtm style).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "mosix/migrate/dump.h"
#include "mosix/migrate/image.h"
#include "mosix/migrate/tracee.h"
#include "tests/unit/mosix/migrate/workload.h"

namespace mosix::migrate {
namespace {

using namespace testing_workload;

constexpr size_t k_array_pages = 1024;  // 4 MiB, every other page touched
constexpr size_t k_rax = 10, k_orig_rax = 15, k_rip = 16;  // user_regs_struct indices

struct Workload {
  std::string file;
  std::byte* array = nullptr;
  int fd = -1, fd2 = -1;
};

TEST(Dump, SeesTheStateAndLeavesTheProcessAsItWas) {
  Workload w;
  w.file = std::filesystem::weakly_canonical(testing::TempDir()) / "dump_test_file";
  w.array = static_cast<std::byte*>(
      ::mmap(nullptr, k_array_pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(w.array, MAP_FAILED);
  auto setup = [&] {
    struct sigaction sa {};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::signal(SIGPROF, SIG_IGN);
    itimerval it{{5, 0}, {100, 0}};
    ::setitimer(ITIMER_PROF, &it, nullptr);
    ::umask(027);
    w.fd = ::open(w.file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    std::string data(123, 'x');
    if (::write(w.fd, data.data(), data.size()) != 123) ::_exit(92);
    w.fd2 = ::dup(w.fd);
    for (size_t p = 0; p < k_array_pages; p += 2)
      for (size_t i = 0; i < 4096; ++i) w.array[p * 4096 + i] = pattern(p, i);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    ::sigprocmask(SIG_BLOCK, &block, nullptr);
    return std::array<int, 4>{w.fd, w.fd2};
  };
  auto verify = [&] {
    for (size_t p = 0; p < k_array_pages; ++p)
      for (size_t i = 0; i < 4096; i += 512)
        if (w.array[p * 4096 + i] != (p % 2 == 0 ? pattern(p, i) : std::byte{0})) return false;
    sigset_t cur;
    ::sigprocmask(SIG_BLOCK, nullptr, &cur);
    return g_usr1 == 1 && sigismember(&cur, SIGUSR2) && ::lseek(w.fd, 0, SEEK_CUR) == 123;
  };
  Child ch = Child::start(setup, verify);

  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t) << t.error().message;
  auto meta = describe(*t);
  ASSERT_TRUE(meta) << meta.error().message;
  const CoreState& c = meta->core;
  EXPECT_EQ(c.pid, ch.pid);
  // Blocked in pause(): saved to execute it again.
  EXPECT_EQ(c.regs[k_rax], static_cast<uint64_t>(SYS_pause));
  EXPECT_EQ(c.regs[k_orig_rax], static_cast<uint64_t>(SYS_pause));
  auto live = t->regs();
  ASSERT_TRUE(live);
  EXPECT_EQ(c.regs[k_rip], live->rip - 2);
  const SigAction& a = c.sigactions[SIGUSR1 - 1];
  EXPECT_EQ(a.handler, reinterpret_cast<uint64_t>(&on_usr1));
  EXPECT_TRUE(a.flags & SA_SIGINFO);
  EXPECT_TRUE(a.mask & (uint64_t{1} << (SIGUSR2 - 1)));
  EXPECT_EQ(c.sigactions[SIGPROF - 1].handler, reinterpret_cast<uint64_t>(SIG_IGN));
  EXPECT_TRUE(c.sigmask & (uint64_t{1} << (SIGUSR2 - 1)));
  EXPECT_EQ(c.itimers[ITIMER_PROF].interval_us, 5'000'000);
  EXPECT_GT(c.itimers[ITIMER_PROF].value_us, 90'000'000);
  EXPECT_EQ(c.umask, 027u);
  EXPECT_FALSE(c.xsave.empty());
  EXPECT_EQ(meta->header.xsave_size, c.xsave.size());
  EXPECT_NE(meta->header.xcr0 & 3, 0u);  // x87 and SSE at least
  EXPECT_NE(c.mm.brk, 0u);
  EXPECT_NE(c.rseq, 0u);  // glibc registers one for every thread
  EXPECT_NE(c.tid_address, 0u);
  EXPECT_FALSE(c.cwd.empty());
  const FileDesc *f1 = nullptr, *f2 = nullptr;
  for (const FileDesc& f : meta->files) {
    if (f.fd == ch.info[0]) f1 = &f;
    if (f.fd == ch.info[1]) f2 = &f;
  }
  ASSERT_TRUE(f1 && f2);
  EXPECT_EQ(f1->kind, FdKind::regular);
  EXPECT_EQ(f1->path, w.file);
  EXPECT_EQ(f1->offset, 123u);
  EXPECT_TRUE(f1->flags & O_APPEND);
  EXPECT_NE(f1->share_id, 0u);
  EXPECT_EQ(f1->share_id, f2->share_id);
  auto addr = reinterpret_cast<uint64_t>(w.array);
  int array_region = -1;
  for (size_t i = 0; i < meta->regions.size(); ++i)
    if (meta->regions[i].start <= addr && addr < meta->regions[i].end) array_region = static_cast<int>(i);
  ASSERT_GE(array_region, 0);
  EXPECT_EQ(meta->regions[array_region].kind, RegionKind::anonymous);

  // The image: exactly the touched pages of the array, with their bytes.
  std::vector<std::byte> image;
  ImageWriter wr([&](std::span<const std::byte> b) -> Result<void> {
    image.insert(image.end(), b.begin(), b.end());
    return {};
  });
  auto stats = dump(*t, wr);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->image_bytes, image.size());
  size_t at = 0;
  ImageReader rd([&](std::span<std::byte> out) -> Result<size_t> {
    size_t n = std::min(out.size(), image.size() - at);
    std::memcpy(out.data(), image.data() + at, n);
    at += n;
    return n;
  });
  auto back = rd.begin();
  ASSERT_TRUE(back) << back.error().message;
  PageRun run;
  std::vector<std::byte> data;
  std::vector<int> seen(k_array_pages, 0);
  const Region& ar = back->regions[array_region];
  for (;;) {
    auto more = rd.next_pages(run, data);
    ASSERT_TRUE(more) << more.error().message;
    if (!*more) break;
    if (run.region != static_cast<uint32_t>(array_region)) continue;
    for (uint64_t k = 0; k < run.count; ++k) {
      uint64_t page_addr = ar.start + (run.first + k) * 4096;
      if (page_addr < addr || page_addr >= addr + k_array_pages * 4096) continue;
      size_t p = (page_addr - addr) / 4096;
      seen[p]++;
      EXPECT_EQ(data[k * 4096 + 100], pattern(p, 100)) << "page " << p;
    }
  }
  for (size_t p = 0; p < k_array_pages; ++p) EXPECT_EQ(seen[p], p % 2 == 0 ? 1 : 0) << "page " << p;

  // Let go: the child resumes its pause(), handles SIGUSR1, checks itself.
  ASSERT_TRUE(t->detach());
  ::kill(ch.pid, SIGUSR1);
  ::usleep(20'000);
  EXPECT_EQ(ch.finish(), 0);
  ::munmap(w.array, k_array_pages * 4096);
  ::unlink(w.file.c_str());
}

TEST(Dump, InjectedSyscallRunsInTheProcess) {
  Child ch = Child::start([] { return std::array<int, 4>{}; }, [] { return true; });
  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t) << t.error().message;
  auto before = t->regs();
  auto r = t->syscall(SYS_getpid);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, ch.pid);
  auto after = t->regs();
  ASSERT_TRUE(before && after);
  EXPECT_EQ(std::memcmp(&*before, &*after, sizeof(*before)), 0);  // put back
  ASSERT_TRUE(t->detach());
  EXPECT_EQ(ch.finish(), 0);  // its pause() went on as if nothing happened
}

TEST(Dump, SignalsArrivingWhileFrozenAreDeliveredAfter) {
  auto verify = [] { return g_usr1 == 1; };
  auto setup = [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    ::sigaction(SIGUSR1, &sa, nullptr);
    return std::array<int, 4>{};
  };
  Child ch = Child::start(setup, verify);
  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t) << t.error().message;
  ::kill(ch.pid, SIGUSR1);
  ::usleep(10'000);
  auto r = t->syscall(SYS_getpid);  // the signal stop comes first; held back
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, ch.pid);
  ASSERT_TRUE(t->detach());
  ::usleep(20'000);
  EXPECT_EQ(ch.finish(), 0);
}

TEST(Dump, RefusesASecondThread) {
  Child ch = Child::start(
      [] {
        pthread_t th;
        pthread_create(&th, nullptr, [](void*) -> void* {
          for (;;) ::pause();
        }, nullptr);
        return std::array<int, 4>{};
      },
      [] { return true; });
  auto r = check_movable(ch.pid);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EOPNOTSUPP);
  EXPECT_NE(r.error().message.find("2 threads"), std::string::npos) << r.error().message;
  ch.kill();
}

TEST(Dump, RefusesASocket) {
  Child ch = Child::start(
      [] {
        int sv[2];
        ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        return std::array<int, 4>{sv[0], sv[1]};
      },
      [] { return true; });
  auto r = check_movable(ch.pid);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is a socket"), std::string::npos) << r.error().message;
  ch.kill();
}

TEST(Dump, RefusesSharedMemory) {
  Child ch = Child::start(
      [] {
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return std::array<int, 4>{};
      },
      [] { return true; });
  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t);
  auto meta = describe(*t);
  ASSERT_FALSE(meta);
  EXPECT_NE(meta.error().message.find("shared memory"), std::string::npos) << meta.error().message;
  ASSERT_TRUE(t->detach());
  EXPECT_EQ(ch.finish(), 0);  // refused, and untouched
}

TEST(Dump, SeizeOfAMissingProcessNamesIt) {
  auto t = Tracee::seize(999'999'999);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ESRCH);
}

}  // namespace
}  // namespace mosix::migrate
