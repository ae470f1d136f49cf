// mosrun's home exports: which directories at the top of a tree a
// migrated process sees from its home node.
#include "mosix/tools/home_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "tests/unit/mosix/mosixd/temp_dir.h"

namespace mosix::tools {
namespace {

std::vector<std::string> paths(const std::vector<mrc::proto::ExportSpec>& e) {
  std::vector<std::string> out;
  for (const auto& x : e) {
    EXPECT_EQ(x.read_only, 0) << x.path;
    out.push_back(x.path);
  }
  return out;
}

TEST(HomeExports, EveryTopDirectoryButTheKernelsInterfacesSorted) {
  test::TempDir d;
  for (const char* name : {"usr", "etc", "home", "tmp", "proc", "sys", "dev", "run", "work", "dev/shm", "dev/pts"})
    ASSERT_EQ(::mkdir((d.path() + "/" + name).c_str(), 0755), 0) << name;
  ASSERT_EQ(::symlink("usr/bin", (d.path() + "/bin").c_str()), 0);   // a symlink stays the host's
  ASSERT_EQ(::symlink("/nowhere", (d.path() + "/lib").c_str()), 0);  // dangling
  d.write("container_info.json", "{}");                              // a plain file
  auto e = home_exports(d.path());
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(paths(*e), (std::vector<std::string>{"/dev/shm", "/etc", "/home", "/run", "/tmp", "/usr", "/work"}));
}

TEST(HomeExports, ATrailingSlashIsTheSameTree) {
  test::TempDir d;
  ASSERT_EQ(::mkdir((d.path() + "/var").c_str(), 0755), 0);
  auto e = home_exports(d.path() + "/");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(paths(*e), (std::vector<std::string>{"/var"}));
}

TEST(HomeExports, AMissingTreeIsAnErrorNamingIt) {
  auto e = home_exports("/nonexistent-mosix-tree");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ENOENT);
  EXPECT_NE(e.error().message.find("/nonexistent-mosix-tree"), std::string::npos) << e.error().message;
}

TEST(HomeExports, TheRealRootHasTheSystemTreesAndNotTheKernels) {
  auto e = home_exports();
  ASSERT_TRUE(e) << e.error().message;
  auto p = paths(*e);
  EXPECT_NE(std::find(p.begin(), p.end(), "/usr"), p.end());
  EXPECT_NE(std::find(p.begin(), p.end(), "/etc"), p.end());
  for (const char* local : {"/proc", "/sys", "/dev", "/bin"})
    EXPECT_EQ(std::find(p.begin(), p.end(), local), p.end()) << local;
}

}  // namespace
}  // namespace mosix::tools
