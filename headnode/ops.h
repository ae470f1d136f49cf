// The file server's operations, one method per protocol op on decoded
// requests, over the node table and the open-handle tables. Policy
// (read-only exports) is not applied here but by the dispatch table in
// fileserver.cc through writable(); confinement is (every name is
// validated and resolved with openat2 beneath its parent).
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "headnode/coherence.h"
#include "headnode/nodes.h"
#include "proto/messages.h"

namespace mrc::headnode {

/// One export root as opened by FileServer::create.
struct Export {
  std::string path;
  bool read_only = false;
  uint64_t nodeid = 0;  // its pinned node
};

/// An open file: the I/O fd, the node it came from, and whether it was
/// opened under the inode's write lease (coherence.h: try_lease).
struct FileHandle {
  UniqueFd fd;
  std::shared_ptr<const Node> node;
  bool leased = false;
};
struct DirHandle;  // ops.cc: a DIR* and its mutex

/// Descriptors the server opened by itself, for files and directories a
/// client opened without telling us (FUSE no_open: requests carry fh 0 and
/// the nodeid). At most k_max entries; the least recently used one goes
/// first, except one whose file holds an implicit write lease.
class ImplicitHandles {
 public:
  static constexpr size_t k_max = 512;
  /// An fd of `n` for reading (O_RDONLY) or writing (O_WRONLY), opened on
  /// first use. Errors: those of reopen() (EACCES, ...).
  [[nodiscard]] Result<std::shared_ptr<FileHandle>> file(const std::shared_ptr<const Node>& n, int mode);
  [[nodiscard]] Result<std::shared_ptr<DirHandle>> dir(const std::shared_ptr<const Node>& n);
  /// Marks that `nodeid`'s implicit write lease was granted (it is then
  /// never evicted). Returns whether it was already.
  bool set_leased(uint64_t nodeid);
  /// The node was forgotten: its descriptors go. Returns whether it held
  /// an implicit write lease.
  bool forget(uint64_t nodeid);
  /// Closes the write descriptors unused for `idle` (0: all of them), so a
  /// file the client wrote is not kept open for writing on the head (exec
  /// there would fail with ETXTBSY); they reopen on the next write. Leases
  /// stay. Returns how many closed (once in-flight users finish).
  size_t drop_writers(std::chrono::steady_clock::duration idle);
  /// Closes every descriptor (the client is done); leases stay.
  void close_all();

 private:
  struct Entry {
    std::shared_ptr<FileHandle> rd, wr;
    std::shared_ptr<DirHandle> dir;
    std::chrono::steady_clock::time_point wr_used;  // the last write through wr
    uint64_t used = 0;  // m_clock at the last use
    bool leased = false;
  };
  Entry& touch(uint64_t nodeid);  // under m_mu; may evict another entry
  std::mutex m_mu;                // guards m_entries, m_clock
  std::unordered_map<uint64_t, Entry> m_entries;
  uint64_t m_clock = 0;
};

/// fh → open file or directory. One counter for both kinds, so a file fh
/// used as a dir fh (or the reverse) is EBADF, never another handle.
class HandleTable {
 public:
  uint64_t add_file(std::shared_ptr<FileHandle> h);
  uint64_t add_dir(std::shared_ptr<DirHandle> h);
  /// Errors: EBADF if `fh` is not an open file (or directory).
  [[nodiscard]] Result<std::shared_ptr<FileHandle>> file(uint64_t fh) const;
  [[nodiscard]] Result<std::shared_ptr<DirHandle>> dir(uint64_t fh) const;
  /// Errors: EBADF if not open. The fd closes when in-flight users finish.
  [[nodiscard]] Result<void> remove_file(uint64_t fh);
  [[nodiscard]] Result<void> remove_dir(uint64_t fh);
  /// Forgets every handle (the client is done): fds close when in-flight
  /// users finish; a later request on one is EBADF.
  void clear();

 private:
  mutable std::mutex m_mu;  // guards m_files, m_dirs, m_next
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> m_files;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> m_dirs;
  uint64_t m_next = 1;  // never reused
};

/// The Change that drops a client's attributes and data of an inode.
inline Change inode_of(const Node& n) { return Change{proto::InvalKind::Inode, n.dev, n.ino, {}}; }
inline Change inode_of(const struct stat& st) {
  return Change{proto::InvalKind::Inode, st.st_dev, st.st_ino, {}};
}
/// The Change that drops a client's dentry `name` (positive or negative) in `dir`.
inline Change entry_of(const Node& dir, const std::string& name) {
  return Change{proto::InvalKind::Entry, dir.dev, dir.ino, name};
}

/// How a session takes part in coherence: null `coh` for none.
struct Membership {
  Coherence* coh = nullptr;
  uint32_t session = 0;
  std::chrono::milliseconds lease{30000};  // the client's lease term
  /// Whether the client may get write leases. Not when we re-export an
  /// mrc mount (recursion): its head cannot recall what our client buffers.
  bool write_leases = true;
};

/// A reply body a handler built in its wire form (e.g. pread straight into
/// an encoded DataRep), sent as it is instead of encoded again.
struct EncodedReply {
  Bytes payload;
};

class Ops {
 public:
  /// `exports[i].nodeid` must already be pinned in `nodes`.
  Ops(std::vector<Export> exports, NodeTable& nodes, Membership member = {});

  // Namespace ops (ops.cc). Every Entry returned counts one lookup.
  Result<proto::Entry> lookup(const proto::NameReq& r);
  Result<proto::Attr> getattr(const proto::NodeReq& r);
  Result<proto::Attr> setattr(const proto::SetattrReq& r);
  Result<proto::Entry> mkdir(const proto::MknodReq& r);
  Result<proto::Entry> mknod(const proto::MknodReq& r);
  Result<proto::Entry> symlink(const proto::SymlinkReq& r);
  Result<proto::Entry> link(const proto::LinkReq& r);
  Result<proto::Empty> unlink(const proto::NameReq& r);
  Result<proto::Empty> rmdir(const proto::NameReq& r);
  Result<proto::Empty> rename(const proto::RenameReq& r);
  Result<proto::ReadlinkRep> readlink(const proto::NodeReq& r);
  Result<proto::StatfsRep> statfs(const proto::NodeReq& r);
  /// Lease renewal: ok once every invalidation sent to this session so far
  /// is acknowledged. Errors: ESTALE if that takes a lease term or the
  /// session's lease was revoked; ENOSYS without coherence.
  Result<proto::Empty> renew(const proto::Empty& r);

  // Handle ops (io.cc).
  Result<proto::FhRep> open(const proto::OpenReq& r);
  Result<proto::CreateRep> create(const proto::CreateReq& r);
  /// The reply is a DataRep already encoded: read straight into it.
  Result<EncodedReply> read(const proto::ReadReq& r);
  Result<proto::WriteRep> write(const proto::WriteReqView& r);
  Result<proto::Empty> fsync(const proto::FsyncReq& r);
  Result<proto::Empty> flush(const proto::FhReq& r);
  Result<proto::Empty> release(const proto::FhReq& r);
  Result<proto::FhRep> opendir(const proto::NodeReq& r);
  Result<proto::ReaddirRep> readdirplus(const proto::ReaddirReq& r);
  Result<proto::Empty> releasedir(const proto::FhReq& r);

  /// Policy hook of the dispatch table: ok if every node the request
  /// changes is in a writable export. Errors: EROFS (read-only export or
  /// the synthetic root), ESTALE/EBADF for unknown nodeids/fhs.
  [[nodiscard]] Result<void> writable(const proto::NameReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::SetattrReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::CreateReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::MknodReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::SymlinkReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::RenameReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::LinkReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::OpenReq& r) const;
  [[nodiscard]] Result<void> writable(const proto::WriteReqView& r) const;

  const std::vector<Export>& exports() const { return m_exports; }
  /// The node was forgotten by its client (FileServer::forget): its
  /// implicit descriptors and implicit write lease go.
  void forgotten(const Node& n);
  /// ImplicitHandles::drop_writers of this session's descriptors.
  size_t drop_idle_writers(std::chrono::steady_clock::duration idle) { return m_implicit.drop_writers(idle); }
  /// The client's job ended: every descriptor it made us open closes, so
  /// none outlives the job on the head (ETXTBSY, held disk space).
  void close_descriptors();

 private:
  Result<void> writable_node(uint64_t nodeid) const;
  Result<void> writable_export(uint32_t export_idx) const;
  /// The node of `nodeid` (ESTALE if unknown; the root has none: EINVAL
  /// is never right for it, so callers handle k_root_nodeid first).
  Result<std::shared_ptr<const Node>> node(uint64_t nodeid) const;
  /// Stats `fd` and interns it in `export_idx`: one counted lookup. Sets
  /// `node` (if given) to the node the Entry names.
  Result<proto::Entry> entry_for(UniqueFd fd, const Node& parent, const std::string& name,
                                 std::shared_ptr<const Node>* node = nullptr);
  /// Looks `name` up beneath `parent` (validating it first).
  Result<proto::Entry> lookup_in(const Node& parent, const std::string& name);
  /// Entry of the root's child `name` ("0", "1", ...). Errors: ENOENT.
  Result<proto::Entry> lookup_export(const std::string& name);
  proto::Attr root_attr() const;
  /// The open file `fh`, or (fh 0) the server's own descriptor of `nodeid`
  /// opened with `mode`. Errors: EBADF, ESTALE, reopen()'s.
  Result<std::shared_ptr<FileHandle>> file_for(uint64_t fh, uint64_t nodeid, int mode);
  /// Whether a file opened with `flags` gets n's write lease.
  bool lease_for(const Node& n, uint32_t flags);
  /// unlinkat(dir, name, flags) and its invalidations.
  Result<proto::Empty> remove(const Node& dir, const std::string& name, int flags);
  /// Coherence::access (hold, and recall another client's write lease),
  /// or a plain hold() without coherence.
  void access(const Node& n, uint8_t bits);
  /// Tells the other holders (Coherence::changed); no-op without coherence.
  void changed(std::initializer_list<const Node*> origins, std::initializer_list<Change> changes);
  /// The (dev, ino) of `name` beneath `dir`, not following a symlink, for
  /// the invalidation of what an unlink or rename is about to replace.
  std::optional<struct stat> peek(const Node& dir, const std::string& name) const;
  /// This session's node for the inode of `st` in `export_idx`, if any.
  std::shared_ptr<const Node> known(const std::optional<struct stat>& st, uint32_t export_idx) const;
  Result<proto::ReaddirRep> readdir_root(uint64_t offset, uint32_t max);

  const std::vector<Export> m_exports;  // immutable after construction
  NodeTable& m_nodes;                   // internally locked
  HandleTable m_handles;                // internally locked
  ImplicitHandles m_implicit;           // internally locked
  const Membership m_member;
  const struct timespec m_started;      // the synthetic root's times
};

}  // namespace mrc::headnode
