// Namespace operations of the file server: lookup, attributes, directory
// mutations, links, statfs; the read-only policy hook; and the coherence
// calls: hold() before reading what a client caches, changed() after a
// mutation, before its reply. Every name from
// the wire goes through validate_name() and is resolved beneath its parent's
// O_PATH fd; nothing here follows a symlink. File and directory handles are
// in io.cc.
#include "headnode/ops.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <charconv>

#include "headnode/sys.h"

namespace mrc::headnode {

namespace {
struct timespec now_realtime() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}
}  // namespace

Ops::Ops(std::vector<Export> exports, NodeTable& nodes, Membership member)
    : m_exports(std::move(exports)), m_nodes(nodes), m_member(member), m_started(now_realtime()) {}

// ---- coherence --------------------------------------------------------------

void Ops::access(const Node& n, uint8_t bits) {
  if (m_member.coh)
    m_member.coh->access(n, bits);
  else
    hold(n, bits);
}

void Ops::changed(std::initializer_list<const Node*> origins, std::initializer_list<Change> changes) {
  if (m_member.coh) m_member.coh->changed(origins, changes);
}

std::optional<struct stat> Ops::peek(const Node& dir, const std::string& name) const {
  struct stat st {};
  if (::fstatat(dir.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return std::nullopt;
  return st;
}

std::shared_ptr<const Node> Ops::known(const std::optional<struct stat>& st, uint32_t export_idx) const {
  return st ? m_nodes.find(st->st_dev, st->st_ino, export_idx) : nullptr;
}

Result<proto::Empty> Ops::renew(const proto::Empty&) {
  // No coherence, no leases: the client then caches nothing (close-to-open).
  if (!m_member.coh) return fail(ENOSYS, "this server grants no leases");
  if (!m_member.coh->settle(m_member.session, Coherence::Clock::now() + m_member.lease))
    return fail(ESTALE, "lease not renewed: invalidations unacknowledged or lease revoked");
  return proto::Empty{};
}

// ---- policy ---------------------------------------------------------------

Result<void> Ops::writable_node(uint64_t nodeid) const {
  if (nodeid == proto::k_root_nodeid) return fail(EROFS, "the root is read-only");
  auto n = node(nodeid);
  if (!n) return tl::unexpected(n.error());
  return writable_export((*n)->export_idx);
}

Result<void> Ops::writable_export(uint32_t export_idx) const {
  if (m_exports.at(export_idx).read_only)
    return fail(EROFS, "read-only export " + m_exports[export_idx].path);
  return {};
}

Result<void> Ops::writable(const proto::NameReq& r) const { return writable_node(r.parent); }
Result<void> Ops::writable(const proto::SetattrReq& r) const { return writable_node(r.nodeid); }
Result<void> Ops::writable(const proto::CreateReq& r) const { return writable_node(r.parent); }
Result<void> Ops::writable(const proto::MknodReq& r) const { return writable_node(r.parent); }
Result<void> Ops::writable(const proto::SymlinkReq& r) const { return writable_node(r.parent); }
Result<void> Ops::writable(const proto::RenameReq& r) const {
  if (auto w = writable_node(r.parent); !w) return w;
  return writable_node(r.newparent);
}
Result<void> Ops::writable(const proto::LinkReq& r) const {
  if (auto w = writable_node(r.nodeid); !w) return w;
  return writable_node(r.newparent);
}
Result<void> Ops::writable(const proto::OpenReq& r) const { return writable_node(r.nodeid); }
Result<void> Ops::writable(const proto::WriteReqView& r) const {
  if (r.fh == 0) return writable_node(r.nodeid);
  // By the handle's node, which may be forgotten while the file is open.
  auto h = m_handles.file(r.fh);
  if (!h) return tl::unexpected(h.error());
  return writable_export((*h)->node->export_idx);
}

// ---- helpers --------------------------------------------------------------

Result<std::shared_ptr<const Node>> Ops::node(uint64_t nodeid) const { return m_nodes.get(nodeid); }

Result<proto::Entry> Ops::entry_for(UniqueFd fd, const Node& parent, const std::string& name,
                                    std::shared_ptr<const Node>* node) {
  auto id = stat_fd(fd.get());
  if (!id) return tl::unexpected(id.error());
  auto n = m_nodes.intern(std::move(fd), *id, parent.export_idx, parent.nodeid, name);
  // The attributes the client will cache are read after hold(): the first
  // stat only named the inode.
  access(*n, k_cache_attr);
  auto st = stat_fd(n->fd.get());
  if (!st) {
    m_nodes.forget(n->nodeid, 1);
    return tl::unexpected(st.error());
  }
  proto::Entry e;
  e.nodeid = n->nodeid;
  e.attr = to_attr(*st);
  if (node) *node = std::move(n);
  return e;
}

Result<proto::Entry> Ops::lookup_in(const Node& parent, const std::string& name) {
  if (auto v = validate_name(name); !v) return tl::unexpected(v.error());
  access(parent, k_cache_entries);  // the client caches the name, found or not
  if (m_member.coh) m_member.coh->wait_for_room();  // descriptors are short: let clients forget
  auto fd = open_beneath(parent.fd.get(), name);
  if (!fd) return tl::unexpected(fd.error());
  return entry_for(std::move(*fd), parent, name);
}

Result<proto::Entry> Ops::lookup_export(const std::string& name) {
  // Strict decimal: "0", "12"; no sign, no leading zero, no spaces.
  size_t idx = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), idx);
  if (name.empty() || ec != std::errc{} || end != name.data() + name.size() ||
      (name.size() > 1 && name[0] == '0') || idx >= m_exports.size())
    return fail(ENOENT, "no export " + name);
  auto n = node(m_exports[idx].nodeid);
  if (!n) return tl::unexpected(n.error());
  access(**n, k_cache_attr);
  auto st = stat_fd((*n)->fd.get());
  if (!st) return tl::unexpected(st.error());
  return proto::Entry{(*n)->nodeid, 0, to_attr(*st)};  // pinned: no count
}

proto::Attr Ops::root_attr() const {
  proto::Attr a;
  a.ino = proto::k_root_nodeid;
  a.mode = S_IFDIR | 0555;
  a.nlink = static_cast<uint32_t>(2 + m_exports.size());
  a.uid = ::geteuid();
  a.gid = ::getegid();
  a.blksize = 4096;
  a.atime_s = a.mtime_s = a.ctime_s = m_started.tv_sec;
  a.atime_ns = a.mtime_ns = a.ctime_ns = static_cast<uint32_t>(m_started.tv_nsec);
  return a;
}

// ---- ops --------------------------------------------------------------------

Result<proto::Entry> Ops::lookup(const proto::NameReq& r) {
  if (r.parent == proto::k_root_nodeid) return lookup_export(r.name);
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  return lookup_in(**p, r.name);
}

Result<proto::Attr> Ops::getattr(const proto::NodeReq& r) {
  if (r.nodeid == proto::k_root_nodeid) return root_attr();
  auto n = node(r.nodeid);
  if (!n) return tl::unexpected(n.error());
  access(**n, k_cache_attr);
  auto st = stat_fd((*n)->fd.get());
  if (!st) return tl::unexpected(st.error());
  return to_attr(*st);
}

Result<proto::Attr> Ops::setattr(const proto::SetattrReq& r) {
  auto n = node(r.nodeid);
  if (!n) return tl::unexpected(n.error());
  access(**n, 0);  // another client's buffered writes go first
  int fd = (*n)->fd.get();
  auto st = stat_fd(fd);
  if (!st) return tl::unexpected(st.error());
  bool is_link = S_ISLNK(st->st_mode);

  if (r.valid & proto::k_set_mode) {
    // Through /proc the magic link lands on the inode itself; Linux has
    // no symlink modes, so refuse rather than touch what a link points to.
    if (is_link) return fail(EOPNOTSUPP, "chmod of a symlink");
    if (::fchmodat(AT_FDCWD, proc_path(fd).c_str(), r.mode & 07777, 0) < 0)
      return fail_errno("chmod");
  }
  if (r.valid & (proto::k_set_uid | proto::k_set_gid)) {
    uid_t uid = (r.valid & proto::k_set_uid) ? r.uid : static_cast<uid_t>(-1);
    gid_t gid = (r.valid & proto::k_set_gid) ? r.gid : static_cast<gid_t>(-1);
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno("chown");
  }
  if (r.valid & proto::k_set_size) {
    if (r.size > static_cast<uint64_t>(INT64_MAX)) return fail(EFBIG, "size too large");
    auto size = static_cast<off_t>(r.size);
    if (r.fh != 0) {
      auto h = m_handles.file(r.fh);
      if (!h) return tl::unexpected(h.error());
      const Node& hn = *(*h)->node;  // by inode: the node may have been re-looked-up
      if (hn.dev != (*n)->dev || hn.ino != (*n)->ino) return fail(EBADF, "fh of another inode");
      if (::ftruncate((*h)->fd.get(), size) < 0) return fail_errno("ftruncate");
    } else {
      auto wfd = reopen(fd, O_WRONLY);
      if (!wfd) return tl::unexpected(wfd.error());
      if (::ftruncate(wfd->get(), size) < 0) return fail_errno("ftruncate");
    }
  }
  if (r.valid & (proto::k_set_atime | proto::k_set_mtime)) {
    struct timespec ts[2];
    auto pick = [](bool set, bool now, int64_t s, uint32_t ns) {
      if (!set) return timespec{0, UTIME_OMIT};
      if (now) return timespec{0, UTIME_NOW};
      return timespec{static_cast<time_t>(s), static_cast<long>(ns)};
    };
    ts[0] =
        pick(r.valid & proto::k_set_atime, r.valid & proto::k_set_atime_now, r.atime_s, r.atime_ns);
    ts[1] =
        pick(r.valid & proto::k_set_mtime, r.valid & proto::k_set_mtime_now, r.mtime_s, r.mtime_ns);
    if (::utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno("utimensat");
  }
  changed({n->get()}, {inode_of(**n)});
  access(**n, k_cache_attr);  // the client caches the attributes we return
  auto fresh = stat_fd(fd);
  if (!fresh) return tl::unexpected(fresh.error());
  return to_attr(*fresh);
}

Result<proto::Entry> Ops::mkdir(const proto::MknodReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  if (::mkdirat((*p)->fd.get(), r.name.c_str(), r.mode & 07777) < 0) return fail_errno("mkdir");
  changed({p->get()}, {entry_of(**p, r.name), inode_of(**p)});
  return lookup_in(**p, r.name);
}

Result<proto::Entry> Ops::mknod(const proto::MknodReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  if (::mknodat((*p)->fd.get(), r.name.c_str(), r.mode, static_cast<dev_t>(r.rdev)) < 0)
    return fail_errno("mknod");
  changed({p->get()}, {entry_of(**p, r.name), inode_of(**p)});
  return lookup_in(**p, r.name);
}

Result<proto::Entry> Ops::symlink(const proto::SymlinkReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  // The target is stored, never resolved here; a NUL would silently cut it.
  if (r.target.find('\0') != std::string::npos) return fail(EINVAL, "symlink target has NUL");
  if (::symlinkat(r.target.c_str(), (*p)->fd.get(), r.name.c_str()) < 0)
    return fail_errno("symlink");
  changed({p->get()}, {entry_of(**p, r.name), inode_of(**p)});
  return lookup_in(**p, r.name);
}

Result<proto::Entry> Ops::link(const proto::LinkReq& r) {
  auto n = node(r.nodeid);
  if (!n) return tl::unexpected(n.error());
  auto p = node(r.newparent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.newname); !v) return tl::unexpected(v.error());
  // linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc
  // magic link names the inode itself (a symlink is linked, not followed).
  if (::linkat(AT_FDCWD, proc_path((*n)->fd.get()).c_str(), (*p)->fd.get(), r.newname.c_str(),
               AT_SYMLINK_FOLLOW) < 0)
    return fail_errno("link");
  changed({p->get(), n->get()}, {entry_of(**p, r.newname), inode_of(**p), inode_of(**n)});
  return lookup_in(**p, r.newname);
}

Result<proto::Empty> Ops::unlink(const proto::NameReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  return remove(**p, r.name, 0);
}

Result<proto::Empty> Ops::rmdir(const proto::NameReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  return remove(**p, r.name, AT_REMOVEDIR);
}

Result<proto::Empty> Ops::remove(const Node& dir, const std::string& name, int flags) {
  auto victim = peek(dir, name);
  if (::unlinkat(dir.fd.get(), name.c_str(), flags) < 0)
    return fail_errno(flags ? "rmdir" : "unlink");
  auto mine = known(victim, dir.export_idx);
  if (victim)
    changed({&dir, mine.get()}, {entry_of(dir, name), inode_of(dir), inode_of(*victim)});
  else
    changed({&dir}, {entry_of(dir, name), inode_of(dir)});
  return proto::Empty{};
}

Result<proto::Empty> Ops::rename(const proto::RenameReq& r) {
  if (r.flags & ~static_cast<uint32_t>(RENAME_NOREPLACE | RENAME_EXCHANGE))
    return fail(EINVAL, "unsupported rename flags");
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  auto np = node(r.newparent);
  if (!np) return tl::unexpected(np.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  if (auto v = validate_name(r.newname); !v) return tl::unexpected(v.error());
  auto moved = peek(**p, r.name), replaced = peek(**np, r.newname);
  if (::renameat2((*p)->fd.get(), r.name.c_str(), (*np)->fd.get(), r.newname.c_str(), r.flags) < 0)
    return fail_errno("rename");
  auto m1 = known(moved, (*p)->export_idx), m2 = known(replaced, (*np)->export_idx);
  std::vector<Change> changes{entry_of(**p, r.name), entry_of(**np, r.newname), inode_of(**p),
                              inode_of(**np)};
  if (moved) changes.push_back(inode_of(*moved));
  if (replaced) changes.push_back(inode_of(*replaced));
  const Node* origins[] = {p->get(), np->get(), m1.get(), m2.get()};
  if (m_member.coh) m_member.coh->changed(origins, changes);
  return proto::Empty{};
}

Result<proto::ReadlinkRep> Ops::readlink(const proto::NodeReq& r) {
  if (r.nodeid == proto::k_root_nodeid) return fail(EINVAL, "the root is not a symlink");
  auto n = node(r.nodeid);
  if (!n) return tl::unexpected(n.error());
  // readlinkat(fd, "") says ENOENT for a non-link; readlink(2) says EINVAL.
  auto st = stat_fd((*n)->fd.get());
  if (!st) return tl::unexpected(st.error());
  if (!S_ISLNK(st->st_mode)) return fail(EINVAL, "not a symlink");
  char buf[PATH_MAX + 1];
  ssize_t len = ::readlinkat((*n)->fd.get(), "", buf, sizeof(buf));
  if (len < 0) return fail_errno("readlink");
  if (static_cast<size_t>(len) == sizeof(buf)) return fail(ENAMETOOLONG, "symlink too long");
  return proto::ReadlinkRep{std::string(buf, static_cast<size_t>(len))};
}

Result<proto::StatfsRep> Ops::statfs(const proto::NodeReq& r) {
  uint64_t id = r.nodeid;
  if (id == proto::k_root_nodeid) {
    if (m_exports.empty()) return proto::StatfsRep{};
    id = m_exports[0].nodeid;
  }
  auto n = node(id);
  if (!n) return tl::unexpected(n.error());
  struct statvfs sv;
  if (::fstatvfs((*n)->fd.get(), &sv) < 0) return fail_errno("statfs");
  return proto::StatfsRep{sv.f_bsize, sv.f_frsize, sv.f_blocks, sv.f_bfree,  sv.f_bavail,
                          sv.f_files, sv.f_ffree,  sv.f_favail, sv.f_namemax};
}

}  // namespace mrc::headnode
