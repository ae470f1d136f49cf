// Pure proto <-> kernel translations (see convert.h).
#include "fusefs/convert.h"

#include <algorithm>
#include <cerrno>

namespace mrc::fusefs {
namespace {

// Kernel ABI sizes (include/uapi/linux/fuse.h), bytes.
constexpr size_t k_dirent_header = 24;  // offsetof(struct fuse_dirent, name)
constexpr size_t k_entry_out = 128;     // sizeof(struct fuse_entry_out)
constexpr size_t k_record_align = 8;    // FUSE_REC_ALIGN

constexpr size_t align_record(size_t n) { return (n + k_record_align - 1) & ~(k_record_align - 1); }

}  // namespace

struct stat to_stat(const proto::Attr& a, uint64_t nodeid, const IdMap& ids) {
  struct stat st {};
  st.st_ino = nodeid != 0 ? nodeid : a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = ids.uid_to_local(a.uid);
  st.st_gid = ids.gid_to_local(a.gid);
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = a.blksize;
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_atim = {a.atime_s, a.atime_ns};
  st.st_mtim = {a.mtime_s, a.mtime_ns};
  st.st_ctim = {a.ctime_s, a.ctime_ns};
  return st;
}

proto::SetattrReq to_setattr(uint64_t nodeid, uint64_t fh, const struct stat& attr, uint32_t to_set,
                             const IdMap& ids) {
  constexpr uint32_t k_known = proto::k_set_mode | proto::k_set_uid | proto::k_set_gid | proto::k_set_size |
                               proto::k_set_atime | proto::k_set_mtime | proto::k_set_atime_now |
                               proto::k_set_mtime_now;
  proto::SetattrReq r;
  r.nodeid = nodeid;
  r.fh = fh;
  r.valid = to_set & k_known;
  if (r.valid & proto::k_set_mode) r.mode = attr.st_mode;
  if (r.valid & proto::k_set_uid) r.uid = ids.uid_to_head(attr.st_uid);
  if (r.valid & proto::k_set_gid) r.gid = ids.gid_to_head(attr.st_gid);
  if (r.valid & proto::k_set_size) r.size = static_cast<uint64_t>(attr.st_size);
  if ((r.valid & proto::k_set_atime) && !(r.valid & proto::k_set_atime_now)) {
    r.atime_s = attr.st_atim.tv_sec;
    r.atime_ns = static_cast<uint32_t>(attr.st_atim.tv_nsec);
  }
  if ((r.valid & proto::k_set_mtime) && !(r.valid & proto::k_set_mtime_now)) {
    r.mtime_s = attr.st_mtim.tv_sec;
    r.mtime_ns = static_cast<uint32_t>(attr.st_mtim.tv_nsec);
  }
  return r;
}

struct statvfs to_statvfs(const proto::StatfsRep& s) {
  struct statvfs v {};
  v.f_bsize = s.bsize;
  v.f_frsize = s.frsize;
  v.f_blocks = s.blocks;
  v.f_bfree = s.bfree;
  v.f_bavail = s.bavail;
  v.f_files = s.files;
  v.f_ffree = s.ffree;
  v.f_favail = s.favail;
  v.f_namemax = s.namemax;
  return v;
}

int reply_errno(const Error& e) {
  // 4095: the largest errno the kernel accepts in a reply (MAX_ERRNO).
  if (e.code <= 0 || e.code > 4095) return EIO;
  if (e.code == ETIMEDOUT || e.code == EPROTO) return EIO;
  return e.code;
}

size_t dirent_size(size_t name_len) { return align_record(k_dirent_header + name_len); }

size_t direntplus_size(size_t name_len) { return align_record(k_entry_out + k_dirent_header + name_len); }

uint32_t readdir_max_entries(size_t bufsize, DirMode mode) {
  size_t one = mode == DirMode::Plus ? direntplus_size(k_typical_name) : dirent_size(k_typical_name);
  return static_cast<uint32_t>(std::max<size_t>(1, bufsize / one));
}

size_t entries_that_fit(const std::vector<proto::DirEntry>& entries, size_t bufsize, DirMode mode) {
  size_t used = 0, n = 0;
  for (const auto& e : entries) {
    size_t sz = mode == DirMode::Plus ? direntplus_size(e.name.size()) : dirent_size(e.name.size());
    if (used + sz > bufsize) break;
    used += sz;
    ++n;
  }
  return n;
}

std::vector<proto::ForgetItem> forgets_from(const std::vector<proto::DirEntry>& entries, size_t from) {
  std::vector<proto::ForgetItem> out;
  for (size_t i = from; i < entries.size(); ++i)
    if (entries[i].entry.nodeid != 0) out.push_back({entries[i].entry.nodeid, 1});
  return out;
}

}  // namespace mrc::fusefs
