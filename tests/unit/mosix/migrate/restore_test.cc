// Checkpoint and recovery of a real process: a workload sets up state and
// waits; the test dumps it to an image in memory, kills it, restores a new
// process from the image and lets it go; the restored process checks its
// own state (memory, handler, mask, umask, shared file offset, a working
// heap) and its exit status is the verdict (zdtm style).
#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "mosix/migrate/dump.h"
#include "mosix/migrate/image.h"
#include "mosix/migrate/procfs.h"
#include "mosix/migrate/restore.h"
#include "mosix/migrate/tracee.h"
#include "tests/unit/mosix/migrate/workload.h"

namespace mosix::migrate {
namespace {

using namespace testing_workload;

constexpr size_t k_pages = 512;  // 2 MiB, every third page touched

struct State {
  std::string file;
  std::byte* array = nullptr;
  int fd = -1, fd2 = -1;
};

/// Dumps `pid` (held by `t`) into memory.
std::vector<std::byte> image_of(Tracee& t) {
  std::vector<std::byte> image;
  ImageWriter w([&](std::span<const std::byte> b) -> Result<void> {
    image.insert(image.end(), b.begin(), b.end());
    return {};
  });
  auto s = dump(t, w);
  EXPECT_TRUE(s) << (s ? "" : s.error().message);
  return image;
}

ImageReader reader_of(const std::vector<std::byte>& image, size_t& at) {
  return ImageReader([&image, &at](std::span<std::byte> out) -> Result<size_t> {
    size_t n = std::min(out.size(), image.size() - at);
    std::memcpy(out.data(), image.data() + at, n);
    at += n;
    return n;
  });
}

TEST(Restore, AKilledProcessComesBackFromItsImageAndCarriesOn) {
  State st;
  st.file = std::filesystem::weakly_canonical(testing::TempDir()) / "restore_test_file";
  st.array = static_cast<std::byte*>(
      ::mmap(nullptr, k_pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(st.array, MAP_FAILED);
  auto setup = [&] {
    struct sigaction sa {};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::umask(027);
    st.fd = ::open(st.file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    std::string data(123, 'x');
    if (::write(st.fd, data.data(), data.size()) != 123) ::_exit(92);
    st.fd2 = ::dup(st.fd);
    for (size_t p = 0; p < k_pages; p += 3)
      for (size_t i = 0; i < 4096; ++i) st.array[p * 4096 + i] = pattern(p, i);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    ::sigprocmask(SIG_BLOCK, &block, nullptr);
    return std::array<int, 4>{st.fd, st.fd2};
  };
  auto verify = [&] {
    for (size_t p = 0; p < k_pages; ++p)
      for (size_t i = 0; i < 4096; i += 256)
        if (st.array[p * 4096 + i] != (p % 3 == 0 ? pattern(p, i) : std::byte{0})) return false;
    sigset_t cur;
    ::sigprocmask(SIG_BLOCK, nullptr, &cur);
    if (g_usr1 != 1 || !sigismember(&cur, SIGUSR2)) return false;
    if (::umask(0) != 027) return false;
    // one open file description behind both fds: one offset
    if (::lseek(st.fd, 0, SEEK_CUR) != 123 || ::write(st.fd2, "y", 1) != 1 || ::lseek(st.fd, 0, SEEK_CUR) != 124)
      return false;
    // the heap works (brk and mmap where the image had them)
    auto* heap = static_cast<char*>(std::malloc(8 << 20));
    if (!heap) return false;
    std::memset(heap, 1, 8 << 20);
    std::free(heap);
    return true;
  };
  Child ch = Child::start(setup, verify);

  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t) << t.error().message;
  std::vector<std::byte> image = image_of(*t);
  ASSERT_FALSE(image.empty());
  ::kill(ch.pid, SIGKILL);
  ::waitpid(ch.pid, nullptr, __WALL);
  t->abandon();

  size_t at = 0;
  ImageReader rd = reader_of(image, at);
  auto back = restore(rd);
  ASSERT_TRUE(back) << back.error().message;
  pid_t pid = back->tracee.pid();
  EXPECT_NE(pid, ch.pid);
  EXPECT_GT(back->stats.pages, k_pages / 3);
  ASSERT_TRUE(back->release());
  ::usleep(20'000);
  ::kill(pid, SIGUSR1);
  ::usleep(20'000);
  ::kill(pid, SIGHUP);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
  std::string content;
  {
    int fd = ::open(st.file.c_str(), O_RDONLY);
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    content.assign(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
  }
  std::string want(123, 'x');
  want.push_back('y');
  EXPECT_EQ(content, want);  // the restored process wrote where it was
  ::munmap(st.array, k_pages * 4096);
  ::unlink(st.file.c_str());
}

TEST(Restore, ARestoredProcessCanBeCheckpointedAndRestoredAgainAndAgain) {
  // A soak: 100 rounds of dump, kill, restore of the same process
  // (each round restores a process that was itself restored: the vdso,
  // rseq, tid and trampoline of the last round must not get in the way).
  constexpr size_t k_words = 1 << 20;  // 8 MiB of checksummed data
  static uint64_t* data = nullptr;
  static uint64_t sum = 0;
  data = static_cast<uint64_t*>(std::malloc(k_words * 8));
  ASSERT_NE(data, nullptr);
  auto setup = [] {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < k_words; ++i) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      data[i] = s;
      sum += s * (i | 1);
    }
    return std::array<int, 4>{};
  };
  auto verify = [] {
    uint64_t again = 0;
    for (size_t i = 0; i < k_words; ++i) again += data[i] * (i | 1);
    return again == sum;
  };
  Child ch = Child::start(setup, verify);
  pid_t pid = ch.pid;
  for (int round = 0; round < 100; ++round) {
    auto t = Tracee::seize(pid);
    ASSERT_TRUE(t) << "round " << round << ": " << t.error().message;
    std::vector<std::byte> image = image_of(*t);
    ASSERT_FALSE(image.empty()) << "round " << round;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, __WALL);
    t->abandon();
    size_t at = 0;
    ImageReader rd = reader_of(image, at);
    auto back = restore(rd);
    ASSERT_TRUE(back) << "round " << round << ": " << back.error().message;
    pid = back->tracee.pid();
    ASSERT_TRUE(back->release());
    ::usleep(5'000);  // it runs (into its pause() again) between rounds
  }
  ::kill(pid, SIGHUP);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  std::free(data);
}

TEST(Restore, TheProcessComesBackAsTheUserItWasNotAsTheRestorer) {
  // A root restorer (a guest end, mosrun -R) of a process that dropped to
  // nobody: the image's uids, gids and groups, and dumpable again.
  ASSERT_EQ(::geteuid(), 0u) << "the restore needs root (PR_SET_MM_MAP, setresuid)";
  auto setup = [] {
    gid_t groups[] = {65533, 65532};
    ::prctl(PR_SET_NAME, "zdtm-worker");
    if (::setgroups(2, groups) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(93);
    return std::array<int, 4>{};
  };
  auto verify = [] {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    gid_t groups[8];
    int n = ::getgroups(8, groups);
    return ::getresuid(&r, &e, &s) == 0 && r == 65534 && e == 65534 && s == 65534 &&
           ::getresgid(&gr, &ge, &gs) == 0 && gr == 65534 && ge == 65534 && gs == 65534 && n == 2 &&
           groups[0] == 65532 && groups[1] == 65533 && ::prctl(PR_GET_DUMPABLE) == 1;  // the kernel sorts them
  };
  Child ch = Child::start(setup, verify);
  auto t = Tracee::seize(ch.pid);
  ASSERT_TRUE(t) << t.error().message;
  std::vector<std::byte> image = image_of(*t);
  ::kill(ch.pid, SIGKILL);
  ::waitpid(ch.pid, nullptr, __WALL);
  t->abandon();
  size_t at = 0;
  ImageReader rd = reader_of(image, at);
  auto back = restore(rd);
  ASSERT_TRUE(back) << back.error().message;
  pid_t pid = back->tracee.pid();
  ASSERT_TRUE(back->release());
  std::string status = read_proc_file(pid, "status").value_or("");
  EXPECT_NE(status.find("Uid:\t65534\t65534\t65534"), std::string::npos) << status;
  EXPECT_EQ(status.substr(0, status.find('\n')), "Name:\tzdtm-worker");  // its name, not the restorer's
  // Its limits are what they were, though prlimit64 may not read another
  // user's (a container without CAP_SYS_RESOURCE): not zeros.
  rlimit ours{};
  ASSERT_EQ(::getrlimit(RLIMIT_STACK, &ours), 0);
  {
    auto limits = parse_limits(read_proc_file(pid, "limits").value_or(""));
    ASSERT_TRUE(limits) << limits.error().message;
    EXPECT_EQ((*limits)[RLIMIT_STACK].first, ours.rlim_cur);
    EXPECT_EQ((*limits)[RLIMIT_NOFILE].first, [] {
      rlimit l{};
      ::getrlimit(RLIMIT_NOFILE, &l);
      return l.rlim_cur;
    }());
  }
  ::usleep(20'000);
  {  // and it can be taken again (the way home, a next checkpoint)
    auto again = Tracee::seize(pid);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_FALSE(image_of(*again).empty());
  }
  ::kill(pid, SIGHUP);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
}

TEST(Restore, RefusesAnImageThisCpuCannotRun) {
  ImageMeta m;
  m.header.cpu_features = uint64_t{1} << 63;  // no CPU has it
  auto r = check_restorable(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOEXEC);
  EXPECT_NE(r.error().message.find("lacks features"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace mosix::migrate
