// The FUSE client against the real head-node FileServer over a socketpair:
// file operations through a kernel mount must land in the exported tree.
// Needs root and /dev/fuse: skipped without them, except under CI=true.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "fusefs/client.h"
#include "headnode/fileserver.h"
#include "tests/unit/fusefs/mount_env.h"

namespace mrc::fusefs {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::set<std::string> list_dir(const std::string& p) {
  std::set<std::string> names;
  DIR* d = ::opendir(p.c_str());
  if (!d) return names;
  while (auto* e = ::readdir(d)) names.insert(e->d_name);
  ::closedir(d);
  return names;
}

class FileServerMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = mount_test_unavailable()) {
      if (ci_requires_all_tests()) FAIL() << "CI=true but " << *why;
      GTEST_SKIP() << *why;
    }
    char e[] = "/tmp/mrc-export-XXXXXX", m[] = "/tmp/mrc-mnt-XXXXXX";
    ASSERT_NE(::mkdtemp(e), nullptr);
    ASSERT_NE(::mkdtemp(m), nullptr);
    m_export = e;
    m_mnt = m;
    spit(m_export + "/seed.txt", "seed\n");

    auto server = headnode::FileServer::create({proto::ExportSpec{m_export, 0}});
    ASSERT_TRUE(server) << server.error().message;
    m_fs = std::move(*server);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    m_sconn = std::make_unique<proto::Connection>(UniqueFd(sv[1]), UniqueFd(::dup(sv[1])), 0);
    m_disp = std::make_unique<headnode::Dispatcher>(*m_fs, *m_sconn, 4);
    m_sconn->start({[this](proto::Op op, uint64_t id, Bytes p) { m_disp->on_request(op, id, std::move(p)); },
                    [this](proto::Ctl op, Bytes p) {
                      if (op == proto::Ctl::Forget) m_disp->on_forget(p);
                    },
                    [this](const std::string&) { m_server_reader_done = true; }});
    m_cconn = std::make_unique<proto::Connection>(UniqueFd(sv[0]), UniqueFd(::dup(sv[0])), 0);
    m_cconn->start({});

    MountOptions mo;
    mo.mountpoint = m_mnt;
    mo.head_uid = ::getuid();
    mo.head_gid = ::getgid();
    mo.timeout = 10s;
    m_client = std::make_unique<Client>(*m_cconn, mo);
    auto r = m_client->mount();
    ASSERT_TRUE(r) << r.error().message;
    m_client->start();
    m_root = m_mnt + "/0";  // export 0
  }

  void TearDown() override {
    m_client.reset();
    m_cconn.reset();  // the server's reader sees EOF and ends
    for (int i = 0; i < 500 && m_sconn && !m_server_reader_done; ++i) std::this_thread::sleep_for(10ms);
    m_disp.reset();
    m_sconn.reset();
    m_fs.reset();
    std::error_code ec;
    if (!m_export.empty()) fs::remove_all(m_export, ec);
    if (!m_mnt.empty()) ::rmdir(m_mnt.c_str());
  }

  std::string m_export, m_mnt, m_root;
  std::unique_ptr<headnode::FileServer> m_fs;
  std::unique_ptr<proto::Connection> m_sconn, m_cconn;
  std::unique_ptr<headnode::Dispatcher> m_disp;
  std::unique_ptr<Client> m_client;
  std::atomic<bool> m_server_reader_done{false};
};

TEST_F(FileServerMountTest, ExportedTreeIsVisible) {
  EXPECT_EQ(list_dir(m_mnt), (std::set<std::string>{".", "..", "0"}));
  EXPECT_EQ(slurp(m_root + "/seed.txt"), "seed\n");
}

TEST_F(FileServerMountTest, CreateWriteReadLandsOnTheHead) {
  std::string data(2 * 1024 * 1024 + 4097, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  spit(m_root + "/new.bin", data);
  EXPECT_TRUE(slurp(m_export + "/new.bin") == data);  // on the head, byte for byte
  EXPECT_TRUE(slurp(m_root + "/new.bin") == data);    // and back through the mount
  struct stat st {};
  ASSERT_EQ(::stat((m_root + "/new.bin").c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), data.size());
  EXPECT_EQ(st.st_uid, ::getuid());
}

TEST_F(FileServerMountTest, RenameHonoursNoreplaceAndUnlinkRemoves) {
  spit(m_root + "/a", "A");
  spit(m_root + "/b", "B");
  ASSERT_EQ(::rename((m_root + "/a").c_str(), (m_root + "/c").c_str()), 0) << std::strerror(errno);
  EXPECT_FALSE(fs::exists(m_export + "/a"));
  EXPECT_EQ(slurp(m_export + "/c"), "A");
  long rc = ::syscall(SYS_renameat2, AT_FDCWD, (m_root + "/c").c_str(), AT_FDCWD, (m_root + "/b").c_str(),
                      RENAME_NOREPLACE);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(slurp(m_export + "/b"), "B");
  ASSERT_EQ(::unlink((m_root + "/c").c_str()), 0);
  EXPECT_FALSE(fs::exists(m_export + "/c"));
  struct stat st {};
  EXPECT_EQ(::stat((m_root + "/c").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(FileServerMountTest, MkdirSymlinkLinkListAndRmdir) {
  ASSERT_EQ(::mkdir((m_root + "/sub").c_str(), 0750), 0) << std::strerror(errno);
  EXPECT_TRUE(fs::is_directory(m_export + "/sub"));
  spit(m_root + "/sub/f", "F");
  ASSERT_EQ(::symlink("sub/f", (m_root + "/ln").c_str()), 0) << std::strerror(errno);
  char buf[64] = {};
  ASSERT_EQ(::readlink((m_root + "/ln").c_str(), buf, sizeof buf - 1), 5);
  EXPECT_STREQ(buf, "sub/f");
  EXPECT_EQ(fs::read_symlink(m_export + "/ln").string(), "sub/f");
  EXPECT_EQ(slurp(m_root + "/ln"), "F");
  ASSERT_EQ(::link((m_root + "/sub/f").c_str(), (m_root + "/hard").c_str()), 0) << std::strerror(errno);
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((m_root + "/sub/f").c_str(), &a), 0);
  ASSERT_EQ(::stat((m_root + "/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // hard links share one nodeid
  EXPECT_EQ(b.st_nlink, 2u);
  EXPECT_EQ(list_dir(m_root), (std::set<std::string>{".", "..", "seed.txt", "sub", "ln", "hard"}));
  EXPECT_EQ(::rmdir((m_root + "/sub").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  ASSERT_EQ(::unlink((m_root + "/sub/f").c_str()), 0);
  ASSERT_EQ(::rmdir((m_root + "/sub").c_str()), 0) << std::strerror(errno);
  EXPECT_FALSE(fs::exists(m_export + "/sub"));
}

TEST_F(FileServerMountTest, SetattrTruncateChmodAndStatfs) {
  spit(m_root + "/t", "0123456789");
  ASSERT_EQ(::truncate((m_root + "/t").c_str(), 4), 0) << std::strerror(errno);
  EXPECT_EQ(slurp(m_export + "/t"), "0123");
  ASSERT_EQ(::chmod((m_root + "/t").c_str(), 0600), 0);
  struct stat st {};
  ASSERT_EQ(::stat((m_export + "/t").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  int fd = ::open((m_root + "/t").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "xy", 2), 2);
  EXPECT_EQ(::fsync(fd), 0);
  ::close(fd);
  EXPECT_EQ(slurp(m_export + "/t"), "0123xy");
  struct statvfs v {};
  ASSERT_EQ(::statvfs(m_root.c_str(), &v), 0);
  EXPECT_GT(v.f_blocks, 0u);
}

TEST_F(FileServerMountTest, HeadSideChangeIsSeenAtTheNextOpen) {
  spit(m_root + "/cto", "old!");
  EXPECT_EQ(slurp(m_root + "/cto"), "old!");
  spit(m_export + "/cto", "new!");  // same size: only dropping the page cache shows it
  EXPECT_EQ(slurp(m_root + "/cto"), "new!");
}

TEST_F(FileServerMountTest, ListingABigDirectoryIsCompleteAndForgetsBalance) {
  size_t base = m_fs->node_count();
  for (int i = 0; i < 300; ++i) spit(m_export + "/f" + std::to_string(i) + std::string(60, 'n'), "");
  EXPECT_EQ(list_dir(m_root).size(), 300u + 3);  // . .. seed.txt + 300
  // Ask the kernel to drop its dentries/inodes: every lookup it held comes
  // back as a forget, so the server returns to (about) where it started.
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || ::write(fd, "2", 1) != 1) {
    if (fd >= 0) ::close(fd);
    GTEST_SKIP() << "cannot drop caches here; listing checked";
  }
  ::close(fd);
  for (int i = 0; i < 200 && m_fs->node_count() > base + 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_LE(m_fs->node_count(), base + 2);
}

}  // namespace
}  // namespace mrc::fusefs
