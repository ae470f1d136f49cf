// /proc/self/mountinfo parsing used to find and safely unmount our mount.
#include "fusefs/kmount.h"

#include <gtest/gtest.h>

namespace mrc::fusefs {
namespace {

constexpr const char* k_sample =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "36 22 0:30 / /tmp/with\\040space rw,nosuid shared:7 master:1 - tmpfs tmpfs rw\n"
    "40 36 0:52 / /tmp/with\\040space rw,nosuid,nodev - fuse.mrc mrc rw,user_id=0,group_id=0\n"
    "garbage line\n"
    "41 22 0:53 / /mnt rw - fuse.mrc mrc rw\n"
    "42 22 0:54 / /mnt rw - tmpfs none rw";  // no final newline

TEST(ParseMountinfo, ReadsDevMountPointTypeAndSourceSkippingOptionalFields) {
  auto ms = parse_mountinfo(k_sample);
  ASSERT_EQ(ms.size(), 5u);  // the garbage line is skipped
  EXPECT_EQ(ms[0].dev, "8:1");
  EXPECT_EQ(ms[0].mount_point, "/");
  EXPECT_EQ(ms[0].fstype, "ext4");
  EXPECT_EQ(ms[0].source, "/dev/sda1");
  EXPECT_EQ(ms[1].fstype, "tmpfs");  // two optional fields before "-"
  EXPECT_EQ(ms[2].dev, "0:52");
  EXPECT_EQ(ms[2].mount_point, "/tmp/with space");
  EXPECT_EQ(ms[2].fstype, "fuse.mrc");
  EXPECT_EQ(ms[2].source, "mrc");
  EXPECT_EQ(ms[4].dev, "0:54");
}

TEST(ParseMountinfo, UnescapesOctalButLeavesStrayBackslashes) {
  auto ms = parse_mountinfo("1 1 0:1 / /a\\134b\\011c\\9 rw - t s rw\n");
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].mount_point, "/a\\b\tc\\9");
}

TEST(ParseMountinfo, RejectsLinesWithoutSeparatorOrType) {
  EXPECT_TRUE(parse_mountinfo("1 1 0:1 / /x rw shared:1\n").empty());
  EXPECT_TRUE(parse_mountinfo("1 1 0:1 / /x rw - fuse\n").empty());
  EXPECT_TRUE(parse_mountinfo("").empty());
}

TEST(TopMountAt, TheLastMountListedAtThePathIsOnTop) {
  auto ms = parse_mountinfo(k_sample);
  auto top = top_mount_at(ms, "/mnt");
  ASSERT_TRUE(top);
  EXPECT_EQ(top->dev, "0:54");  // the tmpfs covers the fuse mount
  auto sp = top_mount_at(ms, "/tmp/with space");
  ASSERT_TRUE(sp);
  EXPECT_EQ(sp->dev, "0:52");
  EXPECT_FALSE(top_mount_at(ms, "/nowhere"));
  EXPECT_FALSE(top_mount_at(ms, "/mn"));
}

}  // namespace
}  // namespace mrc::fusefs
