// Policy and hostile input: names that would leave a directory, symlinks
// planted to point outside the export, read-only exports, and a catalogue
// of malformed payloads (plus random ones). Nothing outside may be served.
#include "tests/unit/headnode/fileserver_fixture.h"

namespace mrc::headnode {
namespace {

TEST_F(FileServerTest, RefusesDotDotSlashAndOversizedNames) {
  const std::string names[] = {"..", ".", "a/b", "/", "", "../secret", std::string("a\0b", 3)};
  for (const auto& n : names) {
    SCOPED_TRACE("name \"" + n + "\"");
    EXPECT_EQ(err(Op::Lookup, proto::NameReq{m_e0, n}), EINVAL);
    EXPECT_EQ(err(Op::Create, proto::CreateReq{m_e0, n, 0644, O_RDWR | O_CREAT}), EINVAL);
    EXPECT_EQ(err(Op::Mkdir, proto::MknodReq{m_e0, n, 0755, 0}), EINVAL);
    EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e0, n}), EINVAL);
    EXPECT_EQ(err(Op::Rmdir, proto::NameReq{m_e0, n}), EINVAL);
    EXPECT_EQ(err(Op::Symlink, proto::SymlinkReq{m_e0, n, "x"}), EINVAL);
    EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e0, "a.txt", n, 0}), EINVAL);
    EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e0, n, "z", 0}), EINVAL);
    EXPECT_EQ(err(Op::Link, proto::LinkReq{lookup(m_e0, "a.txt").nodeid, m_e0, n}), EINVAL);
  }
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{m_e0, std::string(256, 'n')}), ENAMETOOLONG);
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{m_e0, std::string(255, 'n')}), ENOENT);
  EXPECT_EQ(read_file(m_top + "/secret"), k_secret);
  EXPECT_TRUE(fs::exists(m_rw + "/a.txt"));
}

TEST_F(FileServerTest, SymlinksPointingOutsideAreNeverFollowed) {
  const std::string secret = m_top + "/secret";
  ASSERT_EQ(::symlink(secret.c_str(), (m_rw + "/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../secret", (m_rw + "/sub/rel").c_str()), 0);
  ASSERT_EQ(::symlink(m_top.c_str(), (m_rw + "/outdir").c_str()), 0);
  ASSERT_EQ(::symlink("..", (m_rw + "/up").c_str()), 0);
  auto sub = lookup(m_e0, "sub").nodeid;
  struct stat secret_st;
  ASSERT_EQ(::stat(secret.c_str(), &secret_st), 0);

  for (auto [parent, name, target] :
       {std::tuple{m_e0, "abs", secret}, std::tuple{sub, "rel", std::string("../../secret")}}) {
    SCOPED_TRACE(name);
    auto l = lookup(parent, name);
    EXPECT_TRUE(S_ISLNK(l.attr.mode));  // the link itself, not what it names
    EXPECT_NE(l.attr.ino, secret_st.st_ino);
    EXPECT_EQ(l.attr.size, target.size());
    auto t = call<proto::ReadlinkRep>(Op::Readlink, proto::NodeReq{l.nodeid});
    ASSERT_TRUE(t);
    EXPECT_EQ(t->target, target);  // the text only; resolving it is the client's business
    for (uint32_t flags : {O_RDONLY, O_RDWR, O_WRONLY | O_TRUNC})
      EXPECT_EQ(err(Op::Open, proto::OpenReq{l.nodeid, flags}), ELOOP);
    EXPECT_EQ(err(Op::Opendir, proto::NodeReq{l.nodeid}), ENOTDIR);
    EXPECT_EQ(err(Op::Setattr, proto::SetattrReq{.nodeid = l.nodeid, .valid = proto::k_set_size}),
              ELOOP);
    EXPECT_EQ(err(Op::Setattr,
                  proto::SetattrReq{.nodeid = l.nodeid, .valid = proto::k_set_mode, .mode = 0777}),
              EOPNOTSUPP);
    auto sv = call<proto::StatfsRep>(Op::Statfs, proto::NodeReq{l.nodeid});
    EXPECT_TRUE(sv);  // statfs of the export's file system, harmless
  }
  // A symlink to a directory outside cannot be used as a parent.
  auto outdir = lookup(m_e0, "outdir").nodeid;
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{outdir, "secret"}), ENOTDIR);
  EXPECT_EQ(err(Op::Create, proto::CreateReq{outdir, "planted", 0644, O_RDWR | O_CREAT}), ENOTDIR);
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{lookup(m_e0, "up").nodeid, "secret"}), ENOTDIR);
  // Creating over a symlink does not write through it.
  EXPECT_EQ(err(Op::Create, proto::CreateReq{m_e0, "abs", 0644, O_RDWR | O_CREAT | O_TRUNC}),
            ELOOP);
  EXPECT_EQ(err(Op::Create, proto::CreateReq{m_e0, "abs", 0644, O_RDWR | O_CREAT | O_EXCL}),
            EEXIST);
  // A hard link of the symlink is still just a symlink.
  auto hl = call<proto::Entry>(Op::Link, proto::LinkReq{lookup(m_e0, "abs").nodeid, m_e0, "abs2"});
  ASSERT_TRUE(hl) << hl.error().message;
  EXPECT_TRUE(S_ISLNK(hl->attr.mode));
  EXPECT_EQ(err(Op::Open, proto::OpenReq{hl->nodeid, O_RDONLY}), ELOOP);

  EXPECT_EQ(read_file(secret), k_secret);
  ASSERT_EQ(::stat(secret.c_str(), &secret_st), 0);
  EXPECT_EQ(
      secret_st.st_mode & 07777, 0644u & ~[] {
        mode_t m = ::umask(0);
        ::umask(m);
        return m;
      }());
  EXPECT_FALSE(fs::exists(m_top + "/planted"));
}

TEST_F(FileServerTest, ReadOnlyExportRefusesEveryMutation) {
  auto f = lookup(m_e1, "file.txt");
  EXPECT_EQ(err(Op::Open, proto::OpenReq{f.nodeid, O_WRONLY}), EROFS);
  EXPECT_EQ(err(Op::Open, proto::OpenReq{f.nodeid, O_RDWR}), EROFS);
  EXPECT_EQ(err(Op::Open, proto::OpenReq{f.nodeid, O_RDONLY | O_TRUNC}), EROFS);
  EXPECT_EQ(err(Op::Create, proto::CreateReq{m_e1, "new", 0644, O_RDONLY | O_CREAT}), EROFS);
  EXPECT_EQ(err(Op::Mkdir, proto::MknodReq{m_e1, "d", 0755, 0}), EROFS);
  EXPECT_EQ(err(Op::Mknod, proto::MknodReq{m_e1, "p", S_IFIFO | 0644, 0}), EROFS);
  EXPECT_EQ(err(Op::Symlink, proto::SymlinkReq{m_e1, "l", "x"}), EROFS);
  EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e1, "file.txt"}), EROFS);
  EXPECT_EQ(err(Op::Rmdir, proto::NameReq{m_e1, "file.txt"}), EROFS);
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e1, m_e1, "file.txt", "x", 0}), EROFS);
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e1, m_e0, "file.txt", "x", 0}), EROFS);
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e1, "a.txt", "x", 0}), EROFS);
  EXPECT_EQ(err(Op::Link, proto::LinkReq{f.nodeid, m_e0, "x"}), EROFS);
  EXPECT_EQ(err(Op::Link, proto::LinkReq{lookup(m_e0, "a.txt").nodeid, m_e1, "x"}), EROFS);
  const uint32_t changes[] = {proto::k_set_mode, proto::k_set_size,
                              proto::k_set_mtime_now | proto::k_set_mtime, proto::k_set_uid};
  for (uint32_t valid : changes)
    EXPECT_EQ(err(Op::Setattr, proto::SetattrReq{.nodeid = f.nodeid, .valid = valid}), EROFS);
  // Reading is fine; a write on any fh of the export is refused.
  uint64_t fh = open(f.nodeid, O_RDONLY);
  EXPECT_EQ(read(fh, 0, 100), "read only");
  EXPECT_EQ(err(Op::Write, proto::WriteReq{fh, 0, to_bytes("x")}), EROFS);
  EXPECT_EQ(err(Op::Release, proto::FhReq{fh}), 0);
  EXPECT_EQ(read_file(m_ro + "/file.txt"), "read only");
  EXPECT_EQ(fs::directory_entry(m_ro + "/file.txt").exists(), true);
  EXPECT_FALSE(fs::exists(m_ro + "/new"));
  EXPECT_FALSE(fs::exists(m_rw + "/x"));
}

TEST_F(FileServerTest, MalformedPayloadsGiveEproto) {
  for (uint16_t op = proto::k_op_first; op <= proto::k_op_last; ++op) {
    if (!proto::is_known_op(op)) continue;
    // Renew's request is empty; Invalidate goes the other way (head → target).
    if (op == static_cast<uint16_t>(Op::Renew) || op == static_cast<uint16_t>(Op::Invalidate)) continue;
    EXPECT_EQ(m_fs->handle(static_cast<Op>(op), {}).first, EPROTO) << "op " << op;
  }
  EXPECT_EQ(m_fs->handle(Op::Renew, Bytes{std::byte{0}}).first, EPROTO);
  EXPECT_EQ(m_fs->handle(Op::Invalidate, {}).first, ENOSYS);
  // Trailing bytes.
  Bytes p = proto::encode(proto::NodeReq{m_e0});
  p.push_back(std::byte{0});
  EXPECT_EQ(m_fs->handle(Op::Getattr, p).first, EPROTO);
  // Truncated mid-string, and a string length far past the end.
  Bytes q = proto::encode(proto::NameReq{m_e0, "a.txt"});
  q.pop_back();
  EXPECT_EQ(m_fs->handle(Op::Lookup, q).first, EPROTO);
  Bytes huge = proto::encode(proto::NodeReq{m_e0});
  for (int i = 0; i < 4; ++i) huge.push_back(std::byte{0xff});
  EXPECT_EQ(m_fs->handle(Op::Lookup, huge).first, EPROTO);
  // A Write's data length overrunning the payload.
  Bytes w = proto::encode(proto::WriteReq{1, 0, to_bytes("abc")});
  w.resize(w.size() - 1);
  EXPECT_EQ(m_fs->handle(Op::Write, w).first, EPROTO);
  // Unserved op codes.
  EXPECT_EQ(m_fs->handle(static_cast<Op>(2), {}).first, ENOSYS);
  EXPECT_EQ(m_fs->handle(static_cast<Op>(999), {}).first, ENOSYS);

  // Random garbage into every op never crashes nor escapes.
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    Bytes junk(rng() % 64);
    for (auto& b : junk) b = std::byte(rng() & 0xff);
    m_fs->handle(static_cast<Op>(proto::k_op_first + rng() % proto::k_op_last), junk);
  }
  EXPECT_EQ(read_file(m_top + "/secret"), k_secret);
}

}  // namespace
}  // namespace mrc::headnode
