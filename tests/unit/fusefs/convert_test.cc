// Pure translations of the FUSE client: uid/gid mapping, attrs, setattr,
// errno policy, readdir packing (fusefs/convert.h).
#include "fusefs/convert.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>

#include <cerrno>
#include <string>

namespace mrc::fusefs {
namespace {

constexpr IdMap k_ids{/*head_uid=*/1000, /*head_gid=*/100, /*local_uid=*/0, /*local_gid=*/0};

proto::DirEntry dent(std::string name, uint64_t nodeid) {
  proto::DirEntry d;
  d.name = std::move(name);
  d.entry.nodeid = nodeid;
  return d;
}

TEST(IdMap, HeadOwnerShowsAsLocalUserOthersUnchanged) {
  EXPECT_EQ(k_ids.uid_to_local(1000), 0u);
  EXPECT_EQ(k_ids.gid_to_local(100), 0u);
  EXPECT_EQ(k_ids.uid_to_local(1001), 1001u);
  EXPECT_EQ(k_ids.gid_to_local(0), 0u);
}

TEST(IdMap, LocalUserMapsBackToHeadOwner) {
  EXPECT_EQ(k_ids.uid_to_head(0), 1000u);
  EXPECT_EQ(k_ids.gid_to_head(0), 100u);
  EXPECT_EQ(k_ids.uid_to_head(1001), 1001u);
  EXPECT_EQ(k_ids.gid_to_head(5), 5u);
}

TEST(ToStat, CopiesEveryFieldMapsOwnerAndUsesNodeidAsIno) {
  proto::Attr a;
  a.ino = 777;
  a.size = 12345;
  a.blocks = 24;
  a.rdev = 0x0801;
  a.mode = 0100644;
  a.nlink = 2;
  a.uid = 1000;
  a.gid = 4;
  a.blksize = 4096;
  a.atime_s = 10, a.atime_ns = 11, a.mtime_s = 20, a.mtime_ns = 21, a.ctime_s = 30, a.ctime_ns = 31;
  struct stat st = to_stat(a, 42, k_ids);
  EXPECT_EQ(st.st_ino, 42u);
  EXPECT_EQ(st.st_size, 12345);
  EXPECT_EQ(st.st_blocks, 24);
  EXPECT_EQ(st.st_rdev, 0x0801u);
  EXPECT_EQ(st.st_mode, 0100644u);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 4u);
  EXPECT_EQ(st.st_blksize, 4096);
  EXPECT_EQ(st.st_atim.tv_sec, 10);
  EXPECT_EQ(st.st_atim.tv_nsec, 11);
  EXPECT_EQ(st.st_mtim.tv_sec, 20);
  EXPECT_EQ(st.st_mtim.tv_nsec, 21);
  EXPECT_EQ(st.st_ctim.tv_sec, 30);
  EXPECT_EQ(st.st_ctim.tv_nsec, 31);
}

TEST(ToStat, NodeidZeroFallsBackToHeadIno) {
  proto::Attr a;
  a.ino = 777;
  EXPECT_EQ(to_stat(a, 0, k_ids).st_ino, 777u);
}

TEST(ToSetattr, ChownMapsLocalUserBackToHeadOwner) {
  struct stat st {};
  st.st_uid = 0;
  st.st_gid = 0;
  auto r = to_setattr(5, 9, st, proto::k_set_uid | proto::k_set_gid, k_ids);
  EXPECT_EQ(r.nodeid, 5u);
  EXPECT_EQ(r.fh, 9u);
  EXPECT_EQ(r.uid, 1000u);
  EXPECT_EQ(r.gid, 100u);
  EXPECT_EQ(r.valid, proto::k_set_uid | proto::k_set_gid);
}

TEST(ToSetattr, DropsBitsTheProtocolDoesNotCarry) {
  struct stat st {};
  st.st_size = 7;
  constexpr uint32_t k_ctime = 1 << 10, k_kill_suid = 1 << 11;
  auto r = to_setattr(5, 0, st, proto::k_set_size | k_ctime | k_kill_suid, k_ids);
  EXPECT_EQ(r.valid, proto::k_set_size);
  EXPECT_EQ(r.size, 7u);
}

TEST(ToSetattr, TimesCopiedUnlessNow) {
  struct stat st {};
  st.st_atim = {100, 5};
  st.st_mtim = {200, 6};
  auto r = to_setattr(1, 0, st, proto::k_set_atime | proto::k_set_mtime, k_ids);
  EXPECT_EQ(r.atime_s, 100);
  EXPECT_EQ(r.atime_ns, 5u);
  EXPECT_EQ(r.mtime_s, 200);
  EXPECT_EQ(r.mtime_ns, 6u);
  auto now = to_setattr(1, 0, st, proto::k_set_mtime | proto::k_set_mtime_now, k_ids);
  EXPECT_EQ(now.mtime_s, 0);
  EXPECT_EQ(now.valid, proto::k_set_mtime | proto::k_set_mtime_now);
}

TEST(ToSetattr, ModeOnlyWhenAsked) {
  struct stat st {};
  st.st_mode = 0100600;
  EXPECT_EQ(to_setattr(1, 0, st, proto::k_set_mode, k_ids).mode, 0100600u);
  EXPECT_EQ(to_setattr(1, 0, st, proto::k_set_size, k_ids).mode, 0u);
}

TEST(ReplyErrno, ServerErrnoPassesThroughTransportFailuresBecomeEio) {
  EXPECT_EQ(reply_errno({ENOENT, "x"}), ENOENT);
  EXPECT_EQ(reply_errno({EACCES, "x"}), EACCES);
  EXPECT_EQ(reply_errno({ETIMEDOUT, "no reply"}), EIO);
  EXPECT_EQ(reply_errno({EPROTO, "malformed"}), EIO);
  EXPECT_EQ(reply_errno({EIO, "closed"}), EIO);
  EXPECT_EQ(reply_errno({0, "?"}), EIO);
  EXPECT_EQ(reply_errno({-2, "?"}), EIO);
  EXPECT_EQ(reply_errno({100000, "?"}), EIO);
}

TEST(ToStatvfs, CopiesFields) {
  proto::StatfsRep s{4096, 1024, 100, 50, 40, 9, 8, 7, 255};
  auto v = to_statvfs(s);
  EXPECT_EQ(v.f_bsize, 4096u);
  EXPECT_EQ(v.f_frsize, 1024u);
  EXPECT_EQ(v.f_blocks, 100u);
  EXPECT_EQ(v.f_bfree, 50u);
  EXPECT_EQ(v.f_bavail, 40u);
  EXPECT_EQ(v.f_files, 9u);
  EXPECT_EQ(v.f_ffree, 8u);
  EXPECT_EQ(v.f_favail, 7u);
  EXPECT_EQ(v.f_namemax, 255u);
}

TEST(DirentSizes, MatchTheKernelAbi) {
  for (size_t n : {1, 7, 8, 9, 16, 100, 255}) {
    struct fuse_dirent d {};
    d.namelen = static_cast<uint32_t>(n);
    EXPECT_EQ(dirent_size(n), FUSE_DIRENT_SIZE(&d)) << n;
    struct fuse_direntplus dp {};
    dp.dirent.namelen = static_cast<uint32_t>(n);
    EXPECT_EQ(direntplus_size(n), FUSE_DIRENTPLUS_SIZE(&dp)) << n;
  }
}

TEST(ReaddirMaxEntries, SizedToFillTheBufferWithTypicalNames) {
  // 4096-byte buffer, 16-byte names: 168-byte plus records, 40-byte plain.
  EXPECT_EQ(readdir_max_entries(4096, DirMode::Plus), 4096u / 168u);
  EXPECT_EQ(readdir_max_entries(4096, DirMode::Plain), 4096u / 40u);
  EXPECT_EQ(readdir_max_entries(10, DirMode::Plus), 1u);  // always ask for at least one
}

TEST(EntriesThatFit, StopsAtTheFirstEntryThatOverflows) {
  std::vector<proto::DirEntry> es{dent(".", 0), dent("..", 0), dent(std::string(200, 'a'), 5), dent("b", 6)};
  size_t plus3 = direntplus_size(1) + direntplus_size(2) + direntplus_size(200);
  EXPECT_EQ(entries_that_fit(es, plus3, DirMode::Plus), 3u);
  EXPECT_EQ(entries_that_fit(es, plus3 - 1, DirMode::Plus), 2u);
  // Order matters: a small entry after an overflowing one is not packed.
  size_t room_for_b = direntplus_size(1) + direntplus_size(2) + direntplus_size(1);
  EXPECT_EQ(entries_that_fit(es, room_for_b, DirMode::Plus), 2u);
  EXPECT_EQ(entries_that_fit(es, 1 << 20, DirMode::Plain), 4u);
  EXPECT_EQ(entries_that_fit(es, 0, DirMode::Plain), 0u);
}

TEST(ForgetsFrom, OnlyRealNodesFromTheCutOn) {
  std::vector<proto::DirEntry> es{dent(".", 0), dent("a", 5), dent("..", 0), dent("b", 6), dent("c", 5)};
  auto f = forgets_from(es, 1);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].nodeid, 5u);
  EXPECT_EQ(f[1].nodeid, 6u);
  EXPECT_EQ(f[2].nodeid, 5u);
  for (auto& i : f) EXPECT_EQ(i.nlookup, 1u);
  EXPECT_TRUE(forgets_from(es, 5).empty());
  EXPECT_EQ(forgets_from(es, 3).size(), 2u);
}

}  // namespace
}  // namespace mrc::fusefs
