// File and directory handle operations of the file server: open/create,
// read/write/fsync, opendir/readdirplus. An fh owns an fd reopened from
// the node's O_PATH fd; no table lock is held during file I/O.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "headnode/ops.h"
#include "headnode/sys.h"

namespace mrc::headnode {

namespace {
// Largest Read served, bytes (the FUSE client's max request; one frame).
constexpr uint32_t k_max_read = 1024 * 1024;
/// Writes at least this large start their write-out to disk at once
/// (sync_file_range), bytes: a job's large output then streams to the disk
/// while it arrives, so the fsync or job end that must see it on the head
/// does not wait for the whole file at the end. Smaller writes (object
/// files, logs) stay in the page cache as usual.
constexpr size_t k_writeout_min = 256 * 1024;
// Most entries per Readdirplus, bounding one reply (~400 KiB).
constexpr uint32_t k_max_dir_entries = 1024;
}  // namespace

/// An open directory. readdir/seekdir/telldir on one DIR* are not
/// thread-safe, and an offset only means something with the seek before it.
struct DirHandle {
  std::shared_ptr<const Node> node;  // null: the synthetic root
  std::mutex mu;                     // guards dir and its position
  DIR* dir = nullptr;                // guarded by mu; null for the root
  ~DirHandle() {
    if (dir) ::closedir(dir);
  }
};

// ---- HandleTable ----------------------------------------------------------

uint64_t HandleTable::add_file(std::shared_ptr<FileHandle> h) {
  std::lock_guard lk(m_mu);
  uint64_t fh = m_next++;
  m_files.emplace(fh, std::move(h));
  return fh;
}

uint64_t HandleTable::add_dir(std::shared_ptr<DirHandle> h) {
  std::lock_guard lk(m_mu);
  uint64_t fh = m_next++;
  m_dirs.emplace(fh, std::move(h));
  return fh;
}

Result<std::shared_ptr<FileHandle>> HandleTable::file(uint64_t fh) const {
  std::lock_guard lk(m_mu);
  auto it = m_files.find(fh);
  if (it == m_files.end()) return fail(EBADF, "unknown file handle " + std::to_string(fh));
  return it->second;
}

Result<std::shared_ptr<DirHandle>> HandleTable::dir(uint64_t fh) const {
  std::lock_guard lk(m_mu);
  auto it = m_dirs.find(fh);
  if (it == m_dirs.end()) return fail(EBADF, "unknown directory handle " + std::to_string(fh));
  return it->second;
}

Result<void> HandleTable::remove_file(uint64_t fh) {
  std::shared_ptr<FileHandle> gone;  // closes after the unlock
  std::lock_guard lk(m_mu);
  auto it = m_files.find(fh);
  if (it == m_files.end()) return fail(EBADF, "unknown file handle " + std::to_string(fh));
  gone = std::move(it->second);
  m_files.erase(it);
  return {};
}

Result<void> HandleTable::remove_dir(uint64_t fh) {
  std::shared_ptr<DirHandle> gone;  // closes after the unlock
  std::lock_guard lk(m_mu);
  auto it = m_dirs.find(fh);
  if (it == m_dirs.end()) return fail(EBADF, "unknown directory handle " + std::to_string(fh));
  gone = std::move(it->second);
  m_dirs.erase(it);
  return {};
}

void HandleTable::clear() {
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files;  // close after the unlock
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs;
  std::lock_guard lk(m_mu);
  files.swap(m_files);
  dirs.swap(m_dirs);
}

// ---- ImplicitHandles ----------------------------------------------------------

ImplicitHandles::Entry& ImplicitHandles::touch(uint64_t nodeid) {
  if (m_entries.size() >= k_max && !m_entries.count(nodeid)) {
    auto victim = m_entries.end();
    for (auto it = m_entries.begin(); it != m_entries.end(); ++it)
      if (!it->second.leased && (victim == m_entries.end() || it->second.used < victim->second.used)) victim = it;
    if (victim != m_entries.end()) m_entries.erase(victim);  // fds close when in-flight users finish
  }
  Entry& e = m_entries[nodeid];
  e.used = ++m_clock;
  return e;
}

Result<std::shared_ptr<FileHandle>> ImplicitHandles::file(const std::shared_ptr<const Node>& n, int mode) {
  {
    std::lock_guard lk(m_mu);
    Entry& e = touch(n->nodeid);
    if (mode != O_RDONLY) e.wr_used = std::chrono::steady_clock::now();
    if (auto& h = mode == O_RDONLY ? e.rd : e.wr) return h;
  }
  auto fd = reopen(n->fd.get(), mode);  // outside the lock: opening may be slow
  if (!fd) return tl::unexpected(fd.error());
  auto h = std::make_shared<FileHandle>(FileHandle{std::move(*fd), n});
  std::lock_guard lk(m_mu);
  Entry& e = touch(n->nodeid);
  auto& slot = mode == O_RDONLY ? e.rd : e.wr;
  if (!slot) slot = h;
  if (mode != O_RDONLY) e.wr_used = std::chrono::steady_clock::now();
  return slot;
}

Result<std::shared_ptr<DirHandle>> ImplicitHandles::dir(const std::shared_ptr<const Node>& n) {
  {
    std::lock_guard lk(m_mu);
    if (auto& d = touch(n->nodeid).dir) return d;
  }
  auto fd = reopen_dir(n->fd.get());
  if (!fd) return tl::unexpected(fd.error());
  auto d = std::make_shared<DirHandle>();
  d->dir = ::fdopendir(fd->get());
  if (!d->dir) return fail_errno("fdopendir");
  fd->release();
  d->node = n;
  std::lock_guard lk(m_mu);
  auto& slot = touch(n->nodeid).dir;
  if (!slot) slot = d;
  return slot;
}

bool ImplicitHandles::set_leased(uint64_t nodeid) {
  std::lock_guard lk(m_mu);
  return std::exchange(touch(nodeid).leased, true);
}

bool ImplicitHandles::forget(uint64_t nodeid) {
  std::lock_guard lk(m_mu);
  auto it = m_entries.find(nodeid);
  if (it == m_entries.end()) return false;
  bool leased = it->second.leased;
  m_entries.erase(it);
  return leased;
}

size_t ImplicitHandles::drop_writers(std::chrono::steady_clock::duration idle) {
  std::vector<std::shared_ptr<FileHandle>> gone;  // close after the unlock
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(m_mu);
  for (auto& [id, e] : m_entries)
    if (e.wr && now - e.wr_used >= idle) gone.push_back(std::move(e.wr));
  return gone.size();
}

void ImplicitHandles::close_all() {
  std::vector<Entry> gone;  // close after the unlock
  std::lock_guard lk(m_mu);
  for (auto& [id, e] : m_entries) {
    gone.push_back(Entry{std::move(e.rd), std::move(e.wr), std::move(e.dir)});
  }
}

void Ops::close_descriptors() {
  m_handles.clear();
  m_implicit.close_all();
}

void Ops::forgotten(const Node& n) {
  if (m_implicit.forget(n.nodeid) && m_member.coh) m_member.coh->unlease_implicit(n);
}

Result<std::shared_ptr<FileHandle>> Ops::file_for(uint64_t fh, uint64_t nodeid, int mode) {
  if (fh != 0) return m_handles.file(fh);
  if (nodeid == proto::k_root_nodeid) return fail(EISDIR, "the root is a directory");
  auto n = node(nodeid);
  if (!n) return tl::unexpected(n.error());
  return m_implicit.file(*n, mode);
}

// ---- files ------------------------------------------------------------------

Result<proto::FhRep> Ops::open(const proto::OpenReq& r) {
  if (r.nodeid == proto::k_root_nodeid) return fail(EISDIR, "the root is a directory");
  auto n = node(r.nodeid);
  if (!n) return tl::unexpected(n.error());
  access(**n, k_cache_attr);  // the client may keep its cached pages (keep_cache)
  auto fd = reopen((*n)->fd.get(), static_cast<int>(r.flags));
  if (!fd) return tl::unexpected(fd.error());
  if (r.flags & O_TRUNC) changed({n->get()}, {inode_of(**n)});
  auto h = std::make_shared<FileHandle>(FileHandle{std::move(*fd), *n});
  h->leased = lease_for(**n, r.flags);
  uint32_t flags = h->leased ? proto::k_fh_write_lease : 0;
  return proto::FhRep{m_handles.add_file(std::move(h)), flags};
}

Result<proto::CreateRep> Ops::create(const proto::CreateReq& r) {
  auto p = node(r.parent);
  if (!p) return tl::unexpected(p.error());
  if (auto v = validate_name(r.name); !v) return tl::unexpected(v.error());
  access(**p, k_cache_entries);
  auto io = open_beneath((*p)->fd.get(), r.name, static_cast<int>(r.flags) | O_CREAT, r.mode);
  if (!io) return tl::unexpected(io.error());
  // The node's O_PATH fd comes from the opened file itself, so a rename
  // racing with us cannot make the entry name a different inode.
  int path = ::open(proc_path(io->get()).c_str(), O_PATH | O_CLOEXEC);
  if (path < 0) return fail_errno("reopen O_PATH");
  std::shared_ptr<const Node> n;
  auto entry = entry_for(UniqueFd(path), **p, r.name, &n);
  if (!entry) return tl::unexpected(entry.error());
  // Without O_EXCL the file may have existed (and been truncated).
  changed({p->get(), n.get()}, {entry_of(**p, r.name), inode_of(**p), inode_of(*n)});
  auto h = std::make_shared<FileHandle>(FileHandle{std::move(*io), std::move(n)});
  h->leased = lease_for(*h->node, r.flags);
  uint32_t flags = h->leased ? proto::k_fh_write_lease : 0;
  return proto::CreateRep{*entry, m_handles.add_file(std::move(h)), flags};
}

Result<EncodedReply> Ops::read(const proto::ReadReq& r) {
  if (r.size > k_max_read) return fail(EINVAL, "read larger than 1 MiB");
  if (r.offset > static_cast<uint64_t>(INT64_MAX)) return fail(EINVAL, "offset too large");
  auto h = file_for(r.fh, r.nodeid, O_RDONLY);
  if (!h) return tl::unexpected(h.error());
  access(*(*h)->node, k_cache_attr);  // the pages read stay in the client's cache
  // DataRep on the wire: u32 length, then the bytes (docs/protocol.md).
  constexpr size_t k_prefix = sizeof(uint32_t);
  EncodedReply rep{Bytes(k_prefix + r.size)};
  std::byte* data = rep.payload.data() + k_prefix;
  size_t done = 0;
  while (done < r.size) {  // short only at EOF
    ssize_t n = ::pread((*h)->fd.get(), data + done, r.size - done, static_cast<off_t>(r.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  rep.payload.resize(k_prefix + done);
  auto len = static_cast<uint32_t>(done);
  std::memcpy(rep.payload.data(), &len, k_prefix);
  return rep;
}

Result<proto::WriteRep> Ops::write(const proto::WriteReqView& r) {
  if (r.offset > static_cast<uint64_t>(INT64_MAX)) return fail(EINVAL, "offset too large");
  auto h = file_for(r.fh, r.nodeid, O_WRONLY);
  if (!h) return tl::unexpected(h.error());
  access(*(*h)->node, 0);  // another client's buffered writes go first
  size_t done = 0;
  while (done < r.data.size()) {
    ssize_t n = ::pwrite((*h)->fd.get(), r.data.data() + done, r.data.size() - done,
                         static_cast<off_t>(r.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (done > 0) break;  // report what reached the file
      return fail_errno("write");
    }
    done += static_cast<size_t>(n);
  }
  // A hint: an fs without it (or a full queue) changes nothing but timing.
  if (done >= k_writeout_min)
    (void)::sync_file_range((*h)->fd.get(), static_cast<off_t>(r.offset), static_cast<off_t>(done),
                            SYNC_FILE_RANGE_WRITE);
  changed({(*h)->node.get()}, {inode_of(*(*h)->node)});
  // A client that opens without telling us gets the write lease with a write.
  uint32_t flags = 0;
  if (r.fh == 0 && m_member.coh && m_member.write_leases && m_member.coh->lease_implicit(*(*h)->node)) {
    m_implicit.set_leased((*h)->node->nodeid);
    flags = proto::k_fh_write_lease;
  }
  return proto::WriteRep{static_cast<uint32_t>(done), flags};
}

Result<proto::Empty> Ops::fsync(const proto::FsyncReq& r) {
  auto h = file_for(r.fh, r.nodeid, O_RDONLY);
  if (!h) return tl::unexpected(h.error());
  int rc = r.datasync ? ::fdatasync((*h)->fd.get()) : ::fsync((*h)->fd.get());
  if (rc < 0) return fail_errno("fsync");
  return proto::Empty{};
}

Result<proto::Empty> Ops::flush(const proto::FhReq& r) {
  // Writes go straight to the file; nothing is buffered here to flush.
  auto h = m_handles.file(r.fh);
  if (!h) return tl::unexpected(h.error());
  return proto::Empty{};
}

Result<proto::Empty> Ops::release(const proto::FhReq& r) {
  auto h = m_handles.file(r.fh);
  if (!h) return tl::unexpected(h.error());
  if (auto ok = m_handles.remove_file(r.fh); !ok) return tl::unexpected(ok.error());
  if ((*h)->leased && m_member.coh) m_member.coh->unlease(*(*h)->node);
  return proto::Empty{};
}

bool Ops::lease_for(const Node& n, uint32_t flags) {
  if (!m_member.coh || !m_member.write_leases || (flags & O_ACCMODE) == O_RDONLY) return false;
  return m_member.coh->try_lease(n);
}

// ---- directories ------------------------------------------------------------

Result<proto::FhRep> Ops::opendir(const proto::NodeReq& r) {
  auto h = std::make_shared<DirHandle>();
  if (r.nodeid != proto::k_root_nodeid) {
    auto n = node(r.nodeid);
    if (!n) return tl::unexpected(n.error());
    auto st = stat_fd((*n)->fd.get());
    if (!st) return tl::unexpected(st.error());
    if (!S_ISDIR(st->st_mode)) return fail(ENOTDIR, "not a directory");
    access(**n, k_cache_attr | k_cache_entries);  // the listing may be cached (cache_readdir)
    auto fd = reopen_dir((*n)->fd.get());
    if (!fd) return tl::unexpected(fd.error());
    h->dir = ::fdopendir(fd->get());
    if (!h->dir) return fail_errno("fdopendir");
    fd->release();  // the DIR* owns it now
    h->node = *n;
  }
  return proto::FhRep{m_handles.add_dir(std::move(h))};
}

Result<proto::ReaddirRep> Ops::readdir_root(uint64_t offset, uint32_t max) {
  // Offsets: index of the next entry; 0 ".", 1 "..", 2+i export i.
  proto::ReaddirRep rep;
  for (uint64_t i = offset; i < 2 + m_exports.size() && rep.entries.size() < max; ++i) {
    proto::DirEntry e;
    e.next_offset = i + 1;
    if (i < 2) {
      e.name = i == 0 ? "." : "..";
      e.entry.attr = root_attr();
    } else {
      e.name = std::to_string(i - 2);
      auto entry = lookup_export(e.name);
      if (!entry) return tl::unexpected(entry.error());
      e.entry = *entry;
    }
    rep.entries.push_back(std::move(e));
  }
  rep.eof = offset + rep.entries.size() >= 2 + m_exports.size() ? 1 : 0;
  return rep;
}

Result<proto::ReaddirRep> Ops::readdirplus(const proto::ReaddirReq& r) {
  if (r.max_entries == 0) return fail(EINVAL, "max_entries is 0");
  uint32_t max = std::min(r.max_entries, k_max_dir_entries);
  Result<std::shared_ptr<DirHandle>> h = fail(EBADF, "no directory handle");
  if (r.fh != 0) {
    h = m_handles.dir(r.fh);
  } else if (r.nodeid == proto::k_root_nodeid) {
    h = std::make_shared<DirHandle>();  // the synthetic root: no DIR*
  } else {
    auto n = node(r.nodeid);
    if (!n) return tl::unexpected(n.error());
    h = m_implicit.dir(*n);
  }
  if (!h) return tl::unexpected(h.error());
  DirHandle& d = **h;
  if (!d.dir) return readdir_root(r.offset, max);
  if (r.offset > static_cast<uint64_t>(LONG_MAX)) return fail(EINVAL, "bad directory offset");

  proto::ReaddirRep rep;
  access(*d.node, k_cache_attr | k_cache_entries);  // again: an invalidation may have come since
  std::lock_guard lk(d.mu);
  if (r.offset == 0)
    ::rewinddir(d.dir);
  else
    ::seekdir(d.dir, static_cast<long>(r.offset));
  while (rep.entries.size() < max) {
    errno = 0;
    struct dirent* de = ::readdir(d.dir);
    if (!de) {
      if (errno != 0 && rep.entries.empty()) return fail_errno("readdir");
      rep.eof = errno == 0 ? 1 : 0;  // else an error the next call reports
      break;
    }
    proto::DirEntry e;
    e.name = de->d_name;
    e.next_offset = static_cast<uint64_t>(::telldir(d.dir));
    if (e.name == "." || e.name == "..") {
      e.entry.attr.ino = de->d_ino;  // nodeid 0: not a lookup
      e.entry.attr.mode = DTTOIF(de->d_type);
    } else {
      auto entry = lookup_in(*d.node, e.name);
      if (!entry && entry.error().code == ENOENT) continue;  // removed meanwhile
      if (entry) {
        e.entry = *entry;
      } else {
        // Listed but not reachable (e.g. a directory without search
        // permission): the name without a lookup, like "." and "..".
        e.entry.attr.ino = de->d_ino;
        e.entry.attr.mode = DTTOIF(de->d_type);
      }
    }
    rep.entries.push_back(std::move(e));
  }
  return rep;
}

Result<proto::Empty> Ops::releasedir(const proto::FhReq& r) {
  if (auto ok = m_handles.remove_dir(r.fh); !ok) return tl::unexpected(ok.error());
  return proto::Empty{};
}

}  // namespace mrc::headnode
