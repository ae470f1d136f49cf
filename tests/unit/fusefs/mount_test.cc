// The FUSE client through the real kernel: a fake file server answers over
// a socketpair for a tiny in-memory tree; stat, readdir and read go through
// a real mount. Needs root and /dev/fuse: skipped without them, except
// under CI=true where skipping would hide a broken client.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "fusefs/client.h"
#include "fusefs/kmount.h"
#include "tests/unit/fusefs/mount_env.h"

namespace mrc::fusefs {
namespace {

using namespace std::chrono_literals;
using proto::Op;

constexpr uint32_t k_head_uid = 4242, k_head_gid = 4343;
constexpr uint64_t k_dir = 10;  // "many": k_many children with long names
constexpr int k_many = 100;
constexpr uint64_t k_first_child = 100;  // nodeids k_first_child + i

struct Node {
  proto::Attr attr;
  std::string data;
};

/// Answers the file-service ops the kernel needs to stat, list and read a
/// small tree, and counts lookups and forgets per nodeid.
class FakeServer {
 public:
  explicit FakeServer(int fd) : m_conn(UniqueFd(fd), UniqueFd(::dup(fd)), 0) {
    add(1, 040755, k_head_uid, "");
    add(2, 0100644, k_head_uid, "hello from the head node\n");
    std::string big(3 * 1024 * 1024 + 123, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    add(3, 0100600, 4243, big);
    add(k_dir, 040700, k_head_uid, "");
    for (int i = 0; i < k_many; ++i) add(k_first_child + i, 0100644, k_head_uid, "");
    m_conn.start({[this](Op op, uint64_t id, Bytes p) { handle(op, id, p); },
                  [this](proto::Ctl op, Bytes p) {
                    if (op != proto::Ctl::Forget) return;
                    auto m = proto::decode<proto::ForgetMsg>(p);
                    std::lock_guard lk(m_mu);
                    for (auto& i : m->items) m_forgets[i.nodeid] += i.nlookup;
                  },
                  nullptr});
  }

  static std::string child_name(int i) { return "child-" + std::to_string(i) + "-" + std::string(190, 'x'); }
  int64_t held(uint64_t nodeid) {
    std::lock_guard lk(m_mu);
    return static_cast<int64_t>(m_lookups[nodeid]) - static_cast<int64_t>(m_forgets[nodeid]);
  }
  uint64_t forgets_total() {
    std::lock_guard lk(m_mu);
    uint64_t n = 0;
    for (auto& [k, v] : m_forgets) n += v;
    return n;
  }
  const std::string& data(uint64_t nodeid) { return m_nodes[nodeid].data; }

 private:
  void add(uint64_t id, uint32_t mode, uint32_t uid, std::string data) {
    Node n;
    n.attr.ino = 9000 + id;
    n.attr.mode = mode;
    n.attr.nlink = (mode & 040000) ? 2 : 1;
    n.attr.uid = uid;
    n.attr.gid = k_head_gid;
    n.attr.size = data.size();
    n.attr.blksize = 4096;
    n.attr.blocks = (data.size() + 511) / 512;
    n.attr.mtime_s = 1700000000;
    n.data = std::move(data);
    m_nodes[id] = std::move(n);
  }
  proto::Entry entry(uint64_t id) {
    std::lock_guard lk(m_mu);
    m_lookups[id]++;
    return proto::Entry{id, 1, m_nodes[id].attr};
  }
  std::vector<std::pair<std::string, uint64_t>> listing(uint64_t dir) {
    std::vector<std::pair<std::string, uint64_t>> l{{".", 0}, {"..", 0}};
    if (dir == 1) {
      l.insert(l.end(), {{"a.txt", 2}, {"big.bin", 3}, {"many", k_dir}});
    } else {
      for (int i = 0; i < k_many; ++i) l.emplace_back(child_name(i), k_first_child + i);
    }
    return l;
  }
  template <typename M>
  void ok(Op op, uint64_t id, const M& m) {
    m_conn.reply(op, id, 0, proto::encode(m));
  }

  void handle(Op op, uint64_t id, const Bytes& p) {
    switch (op) {
      case Op::Lookup: {
        auto q = proto::decode<proto::NameReq>(p);
        if (q->name == "slow") return;  // never answered: the client must time out
        for (auto& [name, nid] : listing(q->parent))
          if (name == q->name && nid != 0) return ok(op, id, entry(nid));
        return m_conn.reply(op, id, ENOENT, {});
      }
      case Op::Getattr: {
        auto q = proto::decode<proto::NodeReq>(p);
        if (!m_nodes.count(q->nodeid)) return m_conn.reply(op, id, ENOENT, {});
        return ok(op, id, m_nodes[q->nodeid].attr);
      }
      case Op::Opendir: {
        auto q = proto::decode<proto::NodeReq>(p);
        return ok(op, id, proto::FhRep{q->nodeid});  // fh = the dir's nodeid
      }
      case Op::Readdirplus: {
        auto q = proto::decode<proto::ReaddirReq>(p);
        uint64_t dir = q->fh ? q->fh : q->nodeid;  // fh 0: the kernel opened it itself (no_opendir)
        auto l = listing(dir);
        proto::ReaddirRep rep;
        for (size_t i = q->offset; i < l.size() && rep.entries.size() < q->max_entries; ++i) {
          proto::DirEntry d;
          d.name = l[i].first;
          d.next_offset = i + 1;
          if (l[i].second != 0)
            d.entry = entry(l[i].second);
          else
            d.entry.attr = m_nodes[dir].attr;
          rep.entries.push_back(std::move(d));
        }
        return ok(op, id, rep);
      }
      case Op::Open: {
        auto q = proto::decode<proto::OpenReq>(p);
        return ok(op, id, proto::FhRep{q->nodeid});  // fh = the file's nodeid
      }
      case Op::Read: {
        auto q = proto::decode<proto::ReadReq>(p);
        const std::string& d = m_nodes[q->fh ? q->fh : q->nodeid].data;  // fh 0: no_open
        size_t from = std::min<size_t>(q->offset, d.size());
        size_t n = std::min<size_t>(q->size, d.size() - from);
        auto b = reinterpret_cast<const std::byte*>(d.data()) + from;
        return ok(op, id, proto::DataRep{Bytes(b, b + n)});
      }
      case Op::Release:
      case Op::Releasedir:
      case Op::Flush:
        return ok(op, id, proto::Empty{});
      case Op::Statfs:
        return ok(op, id, proto::StatfsRep{4096, 4096, 1000, 500, 400, 100, 50, 50, 255});
      default:
        return m_conn.reply(op, id, ENOSYS, {});
    }
  }

  std::map<uint64_t, Node> m_nodes;  // read-only after the constructor
  std::mutex m_mu;                   // guards m_lookups, m_forgets
  std::map<uint64_t, uint64_t> m_lookups, m_forgets;
  proto::Connection m_conn;
};

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = mount_test_unavailable()) {
      if (ci_requires_all_tests()) FAIL() << "CI=true but " << *why;
      GTEST_SKIP() << *why;
    }
    char tmpl[] = "/tmp/mrc-fusefs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_dir = tmpl;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    m_server = std::make_unique<FakeServer>(sv[1]);
    m_conn = std::make_unique<proto::Connection>(UniqueFd(sv[0]), UniqueFd(::dup(sv[0])), 0);
    m_conn->start({});
    MountOptions mo;
    mo.mountpoint = m_dir;
    mo.head_uid = k_head_uid;
    mo.head_gid = k_head_gid;
    mo.timeout = 500ms;
    m_client = std::make_unique<Client>(*m_conn, mo);
    auto r = m_client->mount();
    ASSERT_TRUE(r) << r.error().message;
    m_client->start();
  }
  void TearDown() override {
    m_client.reset();  // unmounts
    m_conn.reset();
    m_server.reset();
    if (!m_dir.empty()) ::rmdir(m_dir.c_str());
  }
  std::string path(const std::string& rel) { return m_dir + "/" + rel; }

  std::string m_dir;
  std::unique_ptr<FakeServer> m_server;
  std::unique_ptr<proto::Connection> m_conn;
  std::unique_ptr<Client> m_client;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> list_dir(const std::string& p) {
  std::set<std::string> names;
  DIR* d = ::opendir(p.c_str());
  if (!d) return names;
  while (auto* e = ::readdir(d)) names.insert(e->d_name);
  ::closedir(d);
  return names;
}

bool in_proc_mounts(const std::string& mp) {
  return slurp("/proc/self/mounts").find(" " + mp + " fuse.mrc ") != std::string::npos;
}

TEST_F(MountTest, StatShowsServerAttrsWithHeadOwnerMappedToLocalUser) {
  struct stat st {};
  ASSERT_EQ(::stat(path("a.txt").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_size, 25);
  EXPECT_EQ(st.st_uid, ::getuid());
  EXPECT_EQ(st.st_gid, ::getgid());
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(st.st_ino, 2u);  // the nodeid
  ASSERT_EQ(::stat(path("big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4243u);  // not the head owner: shown as is
  ASSERT_EQ(::stat(m_dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(::stat(path("missing").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(MountTest, MountIsListedAsMrcWithRaisedReadAheadAndMaxBackground) {
  EXPECT_NE(slurp("/proc/self/mounts").find("mrc " + m_dir + " fuse.mrc "), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(m_dir.c_str(), &st), 0);  // INIT done
  auto m = current_mount_at(m_dir);
  ASSERT_TRUE(m);
  EXPECT_EQ(slurp("/sys/class/bdi/" + m->dev + "/read_ahead_kb"), "1024\n");
  std::string bg = fusectl_dir(m->dev) + "/max_background";
  if (::access(bg.c_str(), R_OK) == 0) {  // fusectl may not be mounted
    EXPECT_EQ(slurp(bg), "64\n");
  }
}

TEST_F(MountTest, ReaddirListsTheTree) {
  EXPECT_EQ(list_dir(m_dir), (std::set<std::string>{".", "..", "a.txt", "big.bin", "many"}));
}

TEST_F(MountTest, ReaddirOfABigDirectoryListsAllAndGivesBackUnsentLookups) {
  auto names = list_dir(path("many"));
  EXPECT_EQ(names.size(), static_cast<size_t>(k_many + 2));
  for (int i = 0; i < k_many; ++i) EXPECT_TRUE(names.count(FakeServer::child_name(i))) << i;
  // Long names: fewer entries fit than we asked for, so forgets flowed;
  // the kernel holds at most the one lookup per child it received.
  for (int i = 0; i < 100 && m_server->forgets_total() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GT(m_server->forgets_total(), 0u);
  std::this_thread::sleep_for(50ms);  // let in-flight forgets land
  for (int i = 0; i < k_many; ++i) {
    int64_t h = m_server->held(k_first_child + i);
    EXPECT_GE(h, 0) << i;
    EXPECT_LE(h, 1) << i;
  }
}

TEST_F(MountTest, ReadReturnsTheServersBytes) {
  EXPECT_EQ(slurp(path("a.txt")), "hello from the head node\n");
  std::string big = slurp(path("big.bin"));
  EXPECT_EQ(big.size(), m_server->data(3).size());
  EXPECT_TRUE(big == m_server->data(3));
}

TEST_F(MountTest, UnansweredRequestFailsWithEioAfterTheTimeout) {
  auto t0 = std::chrono::steady_clock::now();
  struct stat st {};
  EXPECT_EQ(::stat(path("slow").c_str(), &st), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(::stat(path("a.txt").c_str(), &st), 0);  // the mount still works
}

TEST_F(MountTest, UnmountRemovesTheMount) {
  ASSERT_TRUE(in_proc_mounts(m_dir));
  m_client->unmount();
  EXPECT_FALSE(in_proc_mounts(m_dir));
  m_client->unmount();  // idempotent
}

TEST_F(MountTest, UnmountWhileBusyDoesNotHangAndOpenFilesFailAfterwards) {
  int fd = ::open(path("a.txt").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  DIR* d = ::opendir(m_dir.c_str());
  ASSERT_NE(d, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  m_client->unmount();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_FALSE(in_proc_mounts(m_dir));
  char buf[8];
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), -1);  // connection aborted, not hung
  EXPECT_EQ(errno, ENOTCONN);
  ::close(fd);
  ::closedir(d);
}

TEST_F(MountTest, UnmountWithoutStartDoesNotHang) {
  char tmpl[] = "/tmp/mrc-fusefs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  MountOptions mo;
  mo.mountpoint = dir;
  Client c(*m_conn, mo);
  ASSERT_TRUE(c.mount());
  EXPECT_TRUE(in_proc_mounts(dir));
  c.unmount();
  EXPECT_FALSE(in_proc_mounts(dir));
  ::rmdir(dir.c_str());
}

TEST_F(MountTest, MountErrorsNameTheirCause) {
  MountOptions mo;
  mo.mountpoint = m_dir + "-does-not-exist";
  Client c(*m_conn, mo);
  auto r = c.mount();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find(mo.mountpoint), std::string::npos) << r.error().message;
  Client again(*m_conn, MountOptions{m_dir + "/a.txt"});  // a file, not a directory
  auto r2 = again.mount();
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ENOTDIR) << r2.error().message;
}

}  // namespace
}  // namespace mrc::fusefs
