// The /proc parsers of mosix/migrate/procfs.h on fixed texts: status id
// lists, /proc/PID/limits (as the kernel prints them, and broken), and
// the same parsers on this process's own files.
#include "mosix/migrate/procfs.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

namespace mosix::migrate {
namespace {

TEST(Procfs, ParsesIdListsOfStatus) {
  EXPECT_EQ(parse_ids("0\t0\t0\t0", "Uid").value(), (std::vector<uint32_t>{0, 0, 0, 0}));
  EXPECT_EQ(parse_ids("4 24 27 65534 ", "Groups").value(), (std::vector<uint32_t>{4, 24, 27, 65534}));
  EXPECT_TRUE(parse_ids("", "Groups").value().empty());
  EXPECT_EQ(parse_ids("4294967295", "Uid").value(), (std::vector<uint32_t>{4294967295u}));
  for (const char* bad : {"4294967296", "12a", "-1", "1,2"}) {
    auto r = parse_ids(bad, "Groups");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find("Groups"), std::string::npos) << r.error().message;
  }
}

constexpr const char* k_limits = "Limit                     Soft Limit           Hard Limit           Units     \n"
                                 "Max cpu time              unlimited            unlimited            seconds   \n"
                                 "Max file size             unlimited            unlimited            bytes     \n"
                                 "Max data size             unlimited            unlimited            bytes     \n"
                                 "Max stack size            8388608              unlimited            bytes     \n"
                                 "Max core file size        0                    unlimited            bytes     \n"
                                 "Max resident set          unlimited            unlimited            bytes     \n"
                                 "Max processes             96363                96363                processes \n"
                                 "Max open files            20000                1048576              files     \n"
                                 "Max locked memory         8388608              8388608              bytes     \n"
                                 "Max address space         unlimited            unlimited            bytes     \n"
                                 "Max file locks            unlimited            unlimited            locks     \n"
                                 "Max pending signals       96363                96363                signals   \n"
                                 "Max msgqueue size         819200               819200               bytes     \n"
                                 "Max nice priority         0                    0                    \n"
                                 "Max realtime priority     0                    0                    \n"
                                 "Max realtime timeout      unlimited            unlimited            us        \n";

TEST(Procfs, ParsesLimitsInTheKernelsOrder) {
  auto l = parse_limits(k_limits);
  ASSERT_TRUE(l) << l.error().message;
  ASSERT_EQ(l->size(), 16u);
  const uint64_t inf = ~uint64_t{0};
  EXPECT_EQ((*l)[RLIMIT_CPU], std::pair(inf, inf));
  EXPECT_EQ((*l)[RLIMIT_STACK], std::pair(uint64_t{8388608}, inf));
  EXPECT_EQ((*l)[RLIMIT_CORE], std::pair(uint64_t{0}, inf));
  EXPECT_EQ((*l)[RLIMIT_NOFILE], std::pair(uint64_t{20000}, uint64_t{1048576}));
  EXPECT_EQ((*l)[RLIMIT_MSGQUEUE], std::pair(uint64_t{819200}, uint64_t{819200}));
  EXPECT_EQ((*l)[RLIMIT_NICE], std::pair(uint64_t{0}, uint64_t{0}));
  EXPECT_EQ((*l)[RLIMIT_RTTIME], std::pair(inf, inf));
}

TEST(Procfs, RefusesBrokenOrShortLimits) {
  std::string text = k_limits;
  auto cut = parse_limits(text.substr(0, text.find("Max nice")));
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("13 lines, not 16"), std::string::npos) << cut.error().message;
  std::string bad = text;
  bad.replace(bad.find("8388608 "), 7, "8x88608");
  auto b = parse_limits(bad);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("Max stack size"), std::string::npos) << b.error().message;
}

TEST(Procfs, OwnCredentialsMatchGetresuid) {
  auto c = read_credentials(::getpid());
  ASSERT_TRUE(c) << c.error().message;
  uid_t r, e, s;
  gid_t gr, ge, gs;
  ASSERT_EQ(::getresuid(&r, &e, &s), 0);
  ASSERT_EQ(::getresgid(&gr, &ge, &gs), 0);
  EXPECT_EQ(c->uids, (std::array<uint32_t, 3>{r, e, s}));
  EXPECT_EQ(c->gids, (std::array<uint32_t, 3>{gr, ge, gs}));
  std::vector<gid_t> g(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(g.size()), g.data()), static_cast<int>(g.size()));
  EXPECT_EQ(c->groups, std::vector<uint32_t>(g.begin(), g.end()));
  auto gone = read_credentials(999'999'999);
  EXPECT_FALSE(gone);
}

TEST(Procfs, OwnLimitsMatchGetrlimit) {
  auto text = read_proc_file(::getpid(), "limits");
  ASSERT_TRUE(text) << text.error().message;
  auto l = parse_limits(*text);
  ASSERT_TRUE(l) << l.error().message;
  for (int res : {RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CORE}) {
    rlimit r{};
    ASSERT_EQ(::getrlimit(res, &r), 0);
    EXPECT_EQ((*l)[static_cast<size_t>(res)], std::pair(uint64_t{r.rlim_cur}, uint64_t{r.rlim_max})) << res;
  }
}

}  // namespace
}  // namespace mosix::migrate
