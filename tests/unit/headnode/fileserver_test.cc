// FileServer ops through handle(): lookup, attributes, directories, file
// I/O, links, setattr, statfs, sync and FORGET bookkeeping.
#include "tests/unit/headnode/fileserver_fixture.h"

namespace mrc::headnode {
namespace {

TEST_F(FileServerTest, CreateRejectsRelativeMissingAndNonDirectoryExports) {
  EXPECT_EQ(FileServer::create({{"relative/path", 0}}).error().code, EINVAL);
  EXPECT_EQ(FileServer::create({{m_top + "/nope", 0}}).error().code, ENOENT);
  auto r = FileServer::create({{m_rw + "/a.txt", 0}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOTDIR);
  EXPECT_NE(r.error().message.find("a.txt"), std::string::npos);
}

TEST_F(FileServerTest, RootIsSyntheticReadOnlyDirectoryOfExports) {
  auto a = call<proto::Attr>(Op::Getattr, proto::NodeReq{proto::k_root_nodeid});
  ASSERT_TRUE(a);
  EXPECT_TRUE(S_ISDIR(a->mode));
  EXPECT_EQ(a->mode & 07777, 0555u);
  EXPECT_NE(m_e0, m_e1);
  struct stat st;
  ASSERT_EQ(::stat(m_rw.c_str(), &st), 0);
  EXPECT_EQ(lookup(proto::k_root_nodeid, "0").attr.ino, st.st_ino);
  for (const char* bad : {"2", "00", "-1", "+0", "x", " 0"})
    EXPECT_EQ(err(Op::Lookup, proto::NameReq{proto::k_root_nodeid, bad}), ENOENT) << bad;
  std::set<std::string> names;
  for (auto& e : list(proto::k_root_nodeid, 1)) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "0", "1"}));
  EXPECT_EQ(err(Op::Mkdir, proto::MknodReq{proto::k_root_nodeid, "x", 0755, 0}), EROFS);
  EXPECT_EQ(err(Op::Open, proto::OpenReq{proto::k_root_nodeid, O_RDONLY}), EISDIR);
}

TEST_F(FileServerTest, LooksUpAndGetsAttrOfFiles) {
  auto e = lookup(m_e0, "a.txt");
  EXPECT_TRUE(S_ISREG(e.attr.mode));
  EXPECT_EQ(e.attr.size, 5u);
  struct stat st;
  ASSERT_EQ(::stat((m_rw + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(e.attr.ino, st.st_ino);
  auto a = call<proto::Attr>(Op::Getattr, proto::NodeReq{e.nodeid});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ino, st.st_ino);
  EXPECT_EQ(a->mtime_s, st.st_mtim.tv_sec);
  EXPECT_EQ(a->mtime_ns, static_cast<uint32_t>(st.st_mtim.tv_nsec));
  EXPECT_EQ(lookup(m_e0, "a.txt").nodeid, e.nodeid);  // same inode, same nodeid
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{m_e0, "missing"}), ENOENT);
  EXPECT_EQ(err(Op::Getattr, proto::NodeReq{999999}), ESTALE);
  EXPECT_EQ(err(Op::Lookup, proto::NameReq{e.nodeid, "x"}), ENOTDIR);
}

TEST_F(FileServerTest, ReaddirplusListsEveryEntryWithAFullLookup) {
  write_file(m_rw + "/b.txt", "bb");
  std::map<std::string, proto::DirEntry> by_name;
  for (uint32_t batch : {1u, 2u, 1024u}) {
    by_name.clear();
    for (auto& e : list(m_e0, batch)) EXPECT_TRUE(by_name.emplace(e.name, e).second) << e.name;
    EXPECT_EQ(by_name.size(), 5u) << "batch " << batch;  // . .. a.txt b.txt sub
  }
  EXPECT_EQ(by_name.at(".").entry.nodeid, 0u);
  EXPECT_EQ(by_name.at("..").entry.nodeid, 0u);
  EXPECT_TRUE(S_ISDIR(by_name.at("..").entry.attr.mode));
  EXPECT_EQ(by_name.at("b.txt").entry.attr.size, 2u);
  EXPECT_TRUE(S_ISDIR(by_name.at("sub").entry.attr.mode));
  EXPECT_EQ(by_name.at("a.txt").entry.nodeid, lookup(m_e0, "a.txt").nodeid);
  EXPECT_EQ(err(Op::Readdirplus, proto::ReaddirReq{424242, 0, 10}), EBADF);
  auto file = lookup(m_e0, "a.txt").nodeid;
  EXPECT_EQ(err(Op::Opendir, proto::NodeReq{file}), ENOTDIR);
}

TEST_F(FileServerTest, CreateWriteReadRoundTrip) {
  auto c = create(m_e0, "new.txt", 0640);
  ASSERT_NE(c.fh, 0u);
  EXPECT_TRUE(S_ISREG(c.entry.attr.mode));
  auto w = call<proto::WriteRep>(Op::Write, proto::WriteReq{c.fh, 0, to_bytes("0123456789")});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->written, 10u);
  EXPECT_EQ(read(c.fh, 0, 100), "0123456789");  // short only at EOF
  EXPECT_EQ(read(c.fh, 7, 2), "78");
  EXPECT_EQ(read(c.fh, 50, 10), "");
  EXPECT_EQ(err(Op::Fsync, proto::FsyncReq{c.fh, 1}), 0);
  EXPECT_EQ(err(Op::Flush, proto::FhReq{c.fh}), 0);
  EXPECT_EQ(err(Op::Release, proto::FhReq{c.fh}), 0);
  EXPECT_EQ(err(Op::Release, proto::FhReq{c.fh}), EBADF);
  EXPECT_EQ(err(Op::Read, proto::ReadReq{c.fh, 0, 1}), EBADF);
  EXPECT_EQ(read_file(m_rw + "/new.txt"), "0123456789");
  struct stat st;
  ASSERT_EQ(::stat((m_rw + "/new.txt").c_str(), &st), 0);
  EXPECT_EQ(
      st.st_mode & 07777, 0640u & ~[] {
        mode_t m = ::umask(0);
        ::umask(m);
        return m;
      }());

  uint64_t fh = open(c.entry.nodeid, O_RDONLY);
  EXPECT_EQ(read(fh, 0, 4), "0123");
  EXPECT_EQ(err(Op::Write, proto::WriteReq{fh, 0, to_bytes("x")}), EBADF);  // read-only fh
  EXPECT_EQ(err(Op::Read, proto::ReadReq{fh, 0, (1u << 20) + 1}), EINVAL);
  EXPECT_EQ(err(Op::Release, proto::FhReq{fh}), 0);
  EXPECT_EQ(err(Op::Create, proto::CreateReq{m_e0, "new.txt", 0644, O_RDWR | O_CREAT | O_EXCL}),
            EEXIST);
  // A large write and read of a full 1 MiB.
  auto big = create(m_e0, "big");
  std::string data(1 << 20, 'z');
  data[12345] = 'q';
  ASSERT_TRUE(call<proto::WriteRep>(Op::Write, proto::WriteReq{big.fh, 0, to_bytes(data)}));
  EXPECT_EQ(read(big.fh, 0, 1 << 20), data);
  EXPECT_EQ(err(Op::Release, proto::FhReq{big.fh}), 0);
}

TEST_F(FileServerTest, OpenUnlinkedFileStaysReadable) {
  auto c = create(m_e0, "gone");
  ASSERT_TRUE(call<proto::WriteRep>(Op::Write, proto::WriteReq{c.fh, 0, to_bytes("still here")}));
  EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e0, "gone"}), 0);
  EXPECT_FALSE(fs::exists(m_rw + "/gone"));
  EXPECT_EQ(read(c.fh, 0, 64), "still here");
  auto a = call<proto::Attr>(Op::Getattr, proto::NodeReq{c.entry.nodeid});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->nlink, 0u);
  EXPECT_EQ(err(Op::Release, proto::FhReq{c.fh}), 0);
}

TEST_F(FileServerTest, MkdirRenameUnlinkRmdir) {
  auto d = call<proto::Entry>(Op::Mkdir, proto::MknodReq{m_e0, "d", 0755, 0});
  ASSERT_TRUE(d);
  EXPECT_TRUE(S_ISDIR(d->attr.mode));
  EXPECT_TRUE(fs::is_directory(m_rw + "/d"));
  auto f = create(d->nodeid, "f");
  EXPECT_EQ(err(Op::Release, proto::FhReq{f.fh}), 0);
  EXPECT_EQ(err(Op::Rmdir, proto::NameReq{m_e0, "d"}), ENOTEMPTY);

  EXPECT_EQ(err(Op::Rename, proto::RenameReq{d->nodeid, m_e0, "f", "g", 0}), 0);
  EXPECT_TRUE(fs::exists(m_rw + "/g"));
  EXPECT_FALSE(fs::exists(m_rw + "/d/f"));
  EXPECT_EQ(lookup(m_e0, "g").nodeid, f.entry.nodeid);  // the nodeid follows the inode
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e0, "g", "a.txt", RENAME_NOREPLACE}), EEXIST);
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e0, "g", "a.txt", RENAME_EXCHANGE}), 0);
  EXPECT_EQ(read_file(m_rw + "/g"), "hello");
  EXPECT_EQ(read_file(m_rw + "/a.txt"), "");
  EXPECT_EQ(err(Op::Rename, proto::RenameReq{m_e0, m_e0, "g", "h", RENAME_WHITEOUT}), EINVAL);

  EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e0, "g"}), 0);
  EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e0, "g"}), ENOENT);
  EXPECT_EQ(err(Op::Unlink, proto::NameReq{m_e0, "d"}), EISDIR);
  EXPECT_EQ(err(Op::Rmdir, proto::NameReq{m_e0, "d"}), 0);
  EXPECT_FALSE(fs::exists(m_rw + "/d"));
  auto fifo = call<proto::Entry>(Op::Mknod, proto::MknodReq{m_e0, "fifo", S_IFIFO | 0600, 0});
  ASSERT_TRUE(fifo);
  EXPECT_TRUE(S_ISFIFO(fifo->attr.mode));
  EXPECT_EQ(err(Op::Open, proto::OpenReq{fifo->nodeid, O_RDONLY}), ENXIO);  // would block
}

TEST_F(FileServerTest, SymlinkAndReadlink) {
  auto l = call<proto::Entry>(Op::Symlink, proto::SymlinkReq{m_e0, "ln", "a.txt"});
  ASSERT_TRUE(l);
  EXPECT_TRUE(S_ISLNK(l->attr.mode));
  EXPECT_EQ(fs::read_symlink(m_rw + "/ln"), "a.txt");
  auto t = call<proto::ReadlinkRep>(Op::Readlink, proto::NodeReq{l->nodeid});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->target, "a.txt");
  EXPECT_EQ(err(Op::Open, proto::OpenReq{l->nodeid, O_RDONLY}), ELOOP);
  EXPECT_EQ(err(Op::Readlink, proto::NodeReq{lookup(m_e0, "a.txt").nodeid}), EINVAL);
  EXPECT_EQ(err(Op::Symlink, proto::SymlinkReq{m_e0, "nul", std::string("a\0b", 3)}), EINVAL);
}

TEST_F(FileServerTest, HardLinkSharesNodeid) {
  auto a = lookup(m_e0, "a.txt");
  auto l = call<proto::Entry>(Op::Link, proto::LinkReq{a.nodeid, m_e0, "hard"});
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->nodeid, a.nodeid);
  EXPECT_EQ(l->attr.nlink, 2u);
  auto sub = lookup(m_e0, "sub");
  ASSERT_EQ(::link((m_rw + "/a.txt").c_str(), (m_rw + "/sub/local").c_str()), 0);
  EXPECT_EQ(lookup(sub.nodeid, "local").nodeid, a.nodeid);  // made outside mrc, same inode
  EXPECT_EQ(read_file(m_rw + "/hard"), "hello");
}

TEST_F(FileServerTest, SetattrChmodChownTruncateUtimens) {
  auto a = lookup(m_e0, "a.txt");
  auto r = call<proto::Attr>(
      Op::Setattr, proto::SetattrReq{.nodeid = a.nodeid, .valid = proto::k_set_mode, .mode = 0604});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mode & 07777, 0604u);
  EXPECT_EQ(fs::status(m_rw + "/a.txt").permissions(), fs::perms(0604));

  r = call<proto::Attr>(Op::Setattr, proto::SetattrReq{.nodeid = a.nodeid,
                                                       .valid = proto::k_set_uid | proto::k_set_gid,
                                                       .uid = ::getuid(),
                                                       .gid = ::getgid()});
  ASSERT_TRUE(r);  // chown to ourselves is always allowed
  EXPECT_EQ(r->uid, ::getuid());

  r = call<proto::Attr>(
      Op::Setattr, proto::SetattrReq{.nodeid = a.nodeid, .valid = proto::k_set_size, .size = 2});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size, 2u);
  EXPECT_EQ(read_file(m_rw + "/a.txt"), "he");

  uint64_t fh = open(a.nodeid, O_RDWR);
  r = call<proto::Attr>(
      Op::Setattr,
      proto::SetattrReq{.nodeid = a.nodeid, .fh = fh, .valid = proto::k_set_size, .size = 7});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size, 7u);
  EXPECT_EQ(err(Op::Setattr,
                proto::SetattrReq{.nodeid = a.nodeid, .fh = 777777, .valid = proto::k_set_size}),
            EBADF);
  EXPECT_EQ(err(Op::Release, proto::FhReq{fh}), 0);

  r = call<proto::Attr>(Op::Setattr,
                        proto::SetattrReq{.nodeid = a.nodeid,
                                          .valid = proto::k_set_atime | proto::k_set_mtime,
                                          .atime_s = 1000000000,
                                          .mtime_s = 1234567890,
                                          .atime_ns = 5,
                                          .mtime_ns = 42});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mtime_s, 1234567890);
  EXPECT_EQ(r->mtime_ns, 42u);
  EXPECT_EQ(r->atime_s, 1000000000);
  struct stat st;
  ASSERT_EQ(::stat((m_rw + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);

  // mtime "now", atime left alone.
  r = call<proto::Attr>(
      Op::Setattr,
      proto::SetattrReq{.nodeid = a.nodeid, .valid = proto::k_set_mtime | proto::k_set_mtime_now});
  ASSERT_TRUE(r);
  EXPECT_GT(r->mtime_s, 1234567890 + 100000000);
  EXPECT_EQ(r->atime_s, 1000000000);

  auto d = lookup(m_e0, "sub");
  EXPECT_EQ(err(Op::Setattr, proto::SetattrReq{.nodeid = d.nodeid, .valid = proto::k_set_size}),
            EISDIR);
}

TEST_F(FileServerTest, ForgetDropsNodesBackToBaseline) {
  const size_t base = m_fs->node_count();
  EXPECT_EQ(base, 2u);  // the two export roots
  auto a = lookup(m_e0, "a.txt");
  lookup(m_e0, "a.txt");
  lookup(m_e0, "a.txt");
  EXPECT_EQ(m_fs->node_count(), base + 1);
  forget(a.nodeid, 2);
  EXPECT_EQ(m_fs->node_count(), base + 1);
  EXPECT_EQ(err(Op::Getattr, proto::NodeReq{a.nodeid}), 0);
  forget(a.nodeid, 1);
  EXPECT_EQ(m_fs->node_count(), base);
  EXPECT_EQ(err(Op::Getattr, proto::NodeReq{a.nodeid}), ESTALE);
  EXPECT_NE(lookup(m_e0, "a.txt").nodeid, a.nodeid);  // never reused
  forget(lookup(m_e0, "a.txt").nodeid, 2);

  // Readdirplus entries count; a batch of forgets balances them.
  auto entries = list(m_e0);
  EXPECT_EQ(m_fs->node_count(), base + 2);  // a.txt, sub
  proto::ForgetMsg m;
  for (auto& e : entries)
    if (e.entry.nodeid) m.items.push_back({e.entry.nodeid, 1});
  EXPECT_EQ(m.items.size(), 2u);
  m_fs->forget(m);
  EXPECT_EQ(m_fs->node_count(), base);

  // Create/mkdir/symlink/link entries count; roots and unknowns ignored.
  auto c = create(m_e0, "c");
  auto l = call<proto::Entry>(Op::Link, proto::LinkReq{c.entry.nodeid, m_e0, "c2"});
  ASSERT_TRUE(l);
  EXPECT_EQ(m_fs->node_count(), base + 1);
  forget(proto::k_root_nodeid, 100);
  forget(m_e0, 100);
  forget(123456789, 1);
  forget(c.entry.nodeid, 2);
  EXPECT_EQ(m_fs->node_count(), base);
  // The open fh keeps working after its node is forgotten.
  EXPECT_EQ(err(Op::Write, proto::WriteReq{c.fh, 0, to_bytes("ok")}), 0);
  EXPECT_EQ(err(Op::Release, proto::FhReq{c.fh}), 0);
  EXPECT_EQ(err(Op::Getattr, proto::NodeReq{m_e0}), 0);
}

TEST_F(FileServerTest, ConcurrentLookupsAndForgetsBalance) {
  const size_t base = m_fs->node_count();
  write_file(m_rw + "/sub/x", "x");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        for (const char* name : {"a.txt", "sub"}) {
          auto e = call<proto::Entry>(Op::Lookup, proto::NameReq{m_e0, name});
          if (!e) {
            failures++;
            continue;
          }
          if (std::string(name) == "sub") {  // a child of a node others may be dropping
            auto x = call<proto::Entry>(Op::Lookup, proto::NameReq{e->nodeid, "x"});
            if (x)
              forget(x->nodeid, 1);
            else
              failures++;
          }
          if (err(Op::Getattr, proto::NodeReq{e->nodeid}) != 0) failures++;
          forget(e->nodeid, 1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(m_fs->node_count(), base);
}

TEST_F(FileServerTest, StatfsAndSync) {
  auto s = call<proto::StatfsRep>(Op::Statfs, proto::NodeReq{m_e0});
  ASSERT_TRUE(s);
  EXPECT_GT(s->bsize, 0u);
  EXPECT_EQ(s->namemax, 255u);
  EXPECT_TRUE(call<proto::StatfsRep>(Op::Statfs, proto::NodeReq{proto::k_root_nodeid}));
  EXPECT_EQ(err(Op::Statfs, proto::NodeReq{31337}), ESTALE);
  auto r = m_fs->sync();
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
}

}  // namespace
}  // namespace mrc::headnode
