// Coherence: two sessions' FileServers on one tree, joined to one
// Coherence with fake sinks that record what each client is told to drop.
// Checks which ops invalidate whom (never the origin), the holder flags,
// the bounded wait for a silent client and its revocation, and Renew.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "headnode/coherence.h"
#include "headnode/fileserver.h"
#include "headnode/watcher.h"
#include "proto/codec.h"

namespace mrc::headnode {
namespace {

using namespace std::chrono_literals;
using proto::Op;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Records invalidations; acknowledges at once unless told to stay silent
/// (then until release()).
class FakeSink : public Sink {
 public:
  std::function<bool(Clock::time_point)> send(const proto::InvalidateReq& req) override {
    std::lock_guard lk(m_mu);
    for (const auto& i : req.items) m_items.push_back(i);
    ++m_sent;
    return [this](Clock::time_point deadline) {
      std::unique_lock wait_lk(m_mu);
      return m_cv.wait_until(wait_lk, deadline, [&] { return !m_silent; });
    };
  }
  void revoke(const std::string& why) override {
    std::lock_guard lk(m_mu);
    m_revoked = why;
  }
  void set_silent(bool s) {
    {
      std::lock_guard lk(m_mu);
      m_silent = s;
    }
    m_cv.notify_all();
  }
  std::vector<proto::InvalItem> take() {
    std::lock_guard lk(m_mu);
    return std::exchange(m_items, {});
  }
  std::string revoked() {
    std::lock_guard lk(m_mu);
    return m_revoked;
  }
  int sent() {
    std::lock_guard lk(m_mu);
    return m_sent;
  }

 private:
  std::mutex m_mu;
  std::condition_variable m_cv;
  std::vector<proto::InvalItem> m_items;
  bool m_silent = false;
  std::string m_revoked;
  int m_sent = 0;
};

constexpr auto k_lease = 300ms;

/// One client session: its sink and its FileServer.
struct Client {
  FakeSink sink;
  uint32_t id = 0;
  std::unique_ptr<FileServer> fs;

  template <typename Rep, typename Req>
  Rep call(Op op, const Req& req) {
    auto [err, body] = fs->handle(op, proto::encode(req));
    EXPECT_EQ(err, 0) << "op " << static_cast<int>(op) << ": " << std::strerror(err);
    auto r = proto::decode<Rep>(body);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : Rep{};
  }
  int err(Op op, const Bytes& payload) { return fs->handle(op, payload).first; }
  template <typename Req>
  int err(Op op, const Req& req) {
    return err(op, proto::encode(req));
  }
  /// nodeid of export 0's root.
  uint64_t root() { return call<proto::Entry>(Op::Lookup, proto::NameReq{proto::k_root_nodeid, "0"}).nodeid; }
  uint64_t lookup(uint64_t parent, const std::string& name) {
    return call<proto::Entry>(Op::Lookup, proto::NameReq{parent, name}).nodeid;
  }
  void write(uint64_t nodeid, const std::string& data) {
    auto fh = call<proto::FhRep>(Op::Open, proto::OpenReq{nodeid, O_WRONLY}).fh;
    auto p = reinterpret_cast<const std::byte*>(data.data());
    call<proto::WriteRep>(Op::Write, proto::WriteReq{fh, 0, Bytes(p, p + data.size())});
    call<proto::Empty>(Op::Release, proto::FhReq{fh});
  }
};

class CoherenceTest : public ::testing::Test {
 protected:
  /// Fixtures that watch head-local changes install the watcher first.
  virtual void before_sessions() {}

  void SetUp() override {
    char tmpl[] = "/tmp/mrc-coh-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_dir = tmpl;
    std::ofstream(m_dir + "/f") << "one";
    before_sessions();
    for (auto* c : {&a, &b}) {
      c->id = m_coh.join(c->sink, c == &a ? "a" : "b", k_lease);
      auto s = FileServer::create({proto::ExportSpec{m_dir, 0}}, Membership{&m_coh, c->id, k_lease});
      ASSERT_TRUE(s) << s.error().message;
      c->fs = std::move(*s);
    }
  }
  void TearDown() override {
    for (auto* c : {&a, &b}) {
      c->fs.reset();
      m_coh.leave(c->id);
    }
    m_watcher.reset();
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }

  static bool has(const std::vector<proto::InvalItem>& items, proto::InvalKind kind, uint64_t nodeid,
                  const std::string& name = "") {
    for (const auto& i : items)
      if (i.kind == static_cast<uint8_t>(kind) && i.nodeid == nodeid && i.name == name) return true;
    return false;
  }

  Coherence m_coh;
  std::unique_ptr<Watcher> m_watcher;
  std::string m_dir;
  Client a, b;
};

TEST_F(CoherenceTest, WriteInvalidatesTheOtherHolderNeverTheWriter) {
  uint64_t bf = b.lookup(b.root(), "f");
  uint64_t af = a.lookup(a.root(), "f");
  a.write(af, "two");
  auto got = b.sink.take();
  EXPECT_TRUE(has(got, proto::InvalKind::Inode, bf)) << "b cached f's attributes";
  EXPECT_TRUE(a.sink.take().empty()) << "the writer's own kernel is up to date";
}

TEST_F(CoherenceTest, AnInvalidatedClientIsNotAskedAgainUntilItReadsAgain) {
  uint64_t bf = b.lookup(b.root(), "f");
  uint64_t af = a.lookup(a.root(), "f");
  a.write(af, "two");
  EXPECT_EQ(b.sink.take().size(), 1u);
  a.write(af, "three");
  EXPECT_TRUE(b.sink.take().empty()) << "b holds nothing of f any more";
  b.call<proto::Attr>(Op::Getattr, proto::NodeReq{bf});
  a.write(af, "four");
  EXPECT_TRUE(has(b.sink.take(), proto::InvalKind::Inode, bf));
}

TEST_F(CoherenceTest, CreateDropsTheNegativeEntryAndEntryHoldersStayHolders) {
  uint64_t broot = b.root();
  EXPECT_EQ(b.err(Op::Lookup, proto::NameReq{broot, "x"}), ENOENT);  // b caches "no x"
  uint64_t aroot = a.root();
  auto c = a.call<proto::CreateRep>(Op::Create, proto::CreateReq{aroot, "x", 0644, O_WRONLY});
  a.call<proto::Empty>(Op::Release, proto::FhReq{c.fh});
  auto got = b.sink.take();
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "x"));
  EXPECT_TRUE(has(got, proto::InvalKind::Inode, broot)) << "the directory's mtime and listing";
  // b's other names in the directory are still cached: an unlink of
  // another name reaches it although b did not look anything up since.
  a.call<proto::Empty>(Op::Unlink, proto::NameReq{aroot, "f"});
  EXPECT_TRUE(has(b.sink.take(), proto::InvalKind::Entry, broot, "f"));
  EXPECT_TRUE(a.sink.take().empty());
}

TEST_F(CoherenceTest, RenameDropsBothNamesAndTheMovedInode) {
  uint64_t broot = b.root();
  uint64_t bf = b.lookup(broot, "f");
  EXPECT_EQ(b.err(Op::Lookup, proto::NameReq{broot, "g"}), ENOENT);
  uint64_t aroot = a.root();
  a.call<proto::Empty>(Op::Rename, proto::RenameReq{aroot, aroot, "f", "g", 0});
  auto got = b.sink.take();
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "f"));
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "g"));
  EXPECT_TRUE(has(got, proto::InvalKind::Inode, bf)) << "its ctime changed";
}

TEST_F(CoherenceTest, SetattrAndTruncatingOpenInvalidate) {
  uint64_t bf = b.lookup(b.root(), "f");
  uint64_t af = a.lookup(a.root(), "f");
  a.call<proto::Attr>(Op::Setattr, proto::SetattrReq{.nodeid = af, .valid = proto::k_set_mode, .mode = 0600});
  EXPECT_TRUE(has(b.sink.take(), proto::InvalKind::Inode, bf));
  b.call<proto::Attr>(Op::Getattr, proto::NodeReq{bf});
  auto fh = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_WRONLY | O_TRUNC}).fh;
  a.call<proto::Empty>(Op::Release, proto::FhReq{fh});
  EXPECT_TRUE(has(b.sink.take(), proto::InvalKind::Inode, bf));
}

TEST_F(CoherenceTest, ForgottenNodesLeaveTheIndex) {
  uint64_t bf = b.lookup(b.root(), "f");
  uint64_t af = a.lookup(a.root(), "f");
  size_t before = m_coh.indexed();
  b.fs->forget(proto::ForgetMsg{{{bf, 1}}});
  EXPECT_EQ(m_coh.indexed(), before - 1);
  a.write(af, "two");
  EXPECT_TRUE(b.sink.take().empty()) << "b's kernel no longer knows f";
}

TEST_F(CoherenceTest, ReadOnlyOpsInvalidateNobody) {
  uint64_t broot = b.root();
  b.lookup(broot, "f");
  uint64_t aroot = a.root();
  uint64_t af = a.lookup(aroot, "f");
  a.call<proto::Attr>(Op::Getattr, proto::NodeReq{af});
  auto fh = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_RDONLY}).fh;
  a.call<proto::DataRep>(Op::Read, proto::ReadReq{fh, 0, 10});
  a.call<proto::Empty>(Op::Release, proto::FhReq{fh});
  auto dh = a.call<proto::FhRep>(Op::Opendir, proto::NodeReq{aroot}).fh;
  a.call<proto::ReaddirRep>(Op::Readdirplus, proto::ReaddirReq{dh, 0, 100});
  EXPECT_EQ(b.sink.sent(), 0);
}

TEST_F(CoherenceTest, SilentHolderDelaysTheWriterAtMostOneLeaseAndIsRevoked) {
  uint64_t af = a.lookup(a.root(), "f");
  b.lookup(b.root(), "f");
  b.sink.set_silent(true);
  auto t0 = Clock::now();
  a.write(af, "two");
  auto waited = Clock::now() - t0;
  EXPECT_GE(waited, k_lease - 10ms);
  EXPECT_LT(waited, k_lease + 200ms);
  EXPECT_NE(b.sink.revoked().find("did not acknowledge"), std::string::npos) << b.sink.revoked();
  // A revoked session is not renewed and no longer waited for.
  EXPECT_EQ(b.err(Op::Renew, proto::Empty{}), ESTALE);
  b.lookup(b.root(), "f");
  t0 = Clock::now();
  a.write(af, "three");
  EXPECT_LT(Clock::now() - t0, 100ms);
}

TEST_F(CoherenceTest, RenewWaitsForOutstandingInvalidations) {
  uint64_t af = a.lookup(a.root(), "f");
  b.lookup(b.root(), "f");
  EXPECT_EQ(b.err(Op::Renew, proto::Empty{}), 0) << "nothing outstanding";
  b.sink.set_silent(true);
  std::thread writer([&] { a.write(af, "two"); });
  while (b.sink.sent() == 0) std::this_thread::sleep_for(1ms);
  auto t0 = Clock::now();
  std::thread release([&] {
    std::this_thread::sleep_for(100ms);
    b.sink.set_silent(false);
  });
  EXPECT_EQ(b.err(Op::Renew, proto::Empty{}), 0);
  EXPECT_GE(Clock::now() - t0, 90ms) << "renewed while an invalidation was unacknowledged";
  writer.join();
  release.join();
  EXPECT_TRUE(b.sink.revoked().empty());
}

TEST_F(CoherenceTest, ChangesFromOutsideReachEveryHolder) {
  uint64_t af = a.lookup(a.root(), "f");
  uint64_t bf = b.lookup(b.root(), "f");
  struct stat st {};
  ASSERT_EQ(::stat((m_dir + "/f").c_str(), &st), 0);
  Change c{proto::InvalKind::Inode, st.st_dev, st.st_ino, {}};
  m_coh.changed({}, std::span(&c, 1));
  EXPECT_TRUE(has(a.sink.take(), proto::InvalKind::Inode, af));
  EXPECT_TRUE(has(b.sink.take(), proto::InvalKind::Inode, bf));
}

TEST_F(CoherenceTest, AWriterAloneGetsTheWriteLease) {
  uint64_t af = a.lookup(a.root(), "f");
  auto w = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_WRONLY});
  EXPECT_EQ(w.flags & proto::k_fh_write_lease, proto::k_fh_write_lease);
  auto r = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_RDONLY});
  EXPECT_EQ(r.flags, 0u) << "reading needs no lease";
  EXPECT_EQ(m_coh.leases(), 1u);
  a.call<proto::Empty>(Op::Release, proto::FhReq{w.fh});
  EXPECT_EQ(m_coh.leases(), 0u) << "the lease ends with its last open file";
}

TEST_F(CoherenceTest, NoWriteLeaseWhileAnotherClientCaches) {
  b.lookup(b.root(), "f");
  uint64_t af = a.lookup(a.root(), "f");
  auto w = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_WRONLY});
  EXPECT_EQ(w.flags, 0u);
  EXPECT_EQ(m_coh.leases(), 0u);
}

TEST_F(CoherenceTest, AnotherClientsAccessRecallsTheLeaseFirst) {
  uint64_t af = a.lookup(a.root(), "f");
  auto w = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_WRONLY});
  ASSERT_TRUE(w.flags & proto::k_fh_write_lease);
  b.lookup(b.root(), "f");  // looking at it is touching it
  auto got = a.sink.take();
  EXPECT_TRUE(has(got, proto::InvalKind::Recall, af)) << got.size();
  EXPECT_EQ(m_coh.leases(), 0u);
  // The old open file writes straight through now, and b is told.
  auto p = reinterpret_cast<const std::byte*>("x");
  a.call<proto::WriteRep>(Op::Write, proto::WriteReq{w.fh, 0, Bytes(p, p + 1)});
  EXPECT_FALSE(b.sink.take().empty());
}

TEST_F(CoherenceTest, ASilentLeaseHolderIsRevokedAfterOneLease) {
  uint64_t af = a.lookup(a.root(), "f");
  auto w = a.call<proto::FhRep>(Op::Open, proto::OpenReq{af, O_WRONLY});
  ASSERT_TRUE(w.flags & proto::k_fh_write_lease);
  a.sink.set_silent(true);
  auto t0 = Clock::now();
  uint64_t bf = b.lookup(b.root(), "f");
  EXPECT_GE(Clock::now() - t0, k_lease - 10ms);
  EXPECT_NE(a.sink.revoked().find("did not acknowledge"), std::string::npos);
  EXPECT_NE(bf, 0u);
  EXPECT_EQ(a.err(Op::Renew, proto::Empty{}), ESTALE);
}

TEST_F(CoherenceTest, WithoutCoherenceRenewIsRefused) {
  auto s = FileServer::create({proto::ExportSpec{m_dir, 0}});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->handle(Op::Renew, {}).first, ENOSYS);
}

class WatcherTest : public CoherenceTest, public ::testing::WithParamInterface<WatchMode> {
 protected:
  void before_sessions() override {
    m_watcher = Watcher::create(m_coh, GetParam());
    ASSERT_TRUE(m_watcher) << "fanotify unavailable";
  }
  /// Waits up to 100 ms (the bound) for `sink` to be told about `nodeid`.
  static std::vector<proto::InvalItem> wait_for(FakeSink& sink, size_t n = 1) {
    std::vector<proto::InvalItem> got;
    auto deadline = Clock::now() + 100ms;
    while (got.size() < n && Clock::now() < deadline) {
      auto more = sink.take();
      got.insert(got.end(), more.begin(), more.end());
      std::this_thread::sleep_for(1ms);
    }
    return got;
  }
  /// Runs a shell command in another process: its changes are head-local.
  static void local(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
};

TEST_P(WatcherTest, HeadLocalWriteInvalidatesEveryHolderWithin100ms) {
  uint64_t af = a.lookup(a.root(), "f");
  uint64_t bf = b.lookup(b.root(), "f");
  local("echo edited >> " + m_dir + "/f");
  EXPECT_TRUE(has(wait_for(a.sink), proto::InvalKind::Inode, af));
  EXPECT_TRUE(has(wait_for(b.sink), proto::InvalKind::Inode, bf));
}

TEST_P(WatcherTest, HeadLocalCreateAndRenameDropNames) {
  uint64_t broot = b.root();
  EXPECT_EQ(b.err(Op::Lookup, proto::NameReq{broot, "new"}), ENOENT);
  local("echo x > " + m_dir + "/new");
  auto got = wait_for(b.sink, 2);
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "new"));
  b.lookup(broot, "f");
  local("mv " + m_dir + "/f " + m_dir + "/g");
  got = wait_for(b.sink, 3);
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "f"));
  EXPECT_TRUE(has(got, proto::InvalKind::Entry, broot, "g"));
}

TEST_P(WatcherTest, OwnWritesAreNotReportedAgain) {
  b.lookup(b.root(), "f");
  std::ofstream(m_dir + "/f", std::ios::app) << "by us";  // this process: the file service itself
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(b.sink.take().empty());
}

TEST_P(WatcherTest, UncachedInodesCostNothing) {
  local("echo x > " + m_dir + "/other");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(a.sink.sent() + b.sink.sent(), 0);
}

INSTANTIATE_TEST_SUITE_P(Marks, WatcherTest, ::testing::Values(WatchMode::Auto, WatchMode::InodeMarks),
                         [](const auto& p) {
                           return p.param == WatchMode::Auto ? std::string("Auto") : std::string("InodeMarks");
                         });

}  // namespace
}  // namespace mrc::headnode
