// Message catalogue of the mrc protocol: op codes and the payload structs
// of every request, reply and control message (docs/protocol.md §4–5).
// Field order in visit() is the wire order. Not the frame layer or I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/zstd.h"

namespace mrc::proto {

/// Request/Reply ops of the file service (target → head). Semantics mirror
/// the FUSE low-level API (libfuse fuse_lowlevel.h) on server nodeids.
enum class Op : uint16_t {
  Lookup = 1,
  Getattr = 3,
  Setattr = 4,
  Opendir = 5,
  Readdirplus = 6,
  Releasedir = 7,
  Open = 8,
  Read = 9,
  Write = 10,
  Create = 11,
  Mkdir = 12,
  Mknod = 13,
  Unlink = 14,
  Rmdir = 15,
  Rename = 16,
  Symlink = 17,
  Readlink = 18,
  Link = 19,
  Statfs = 20,
  Fsync = 21,
  Flush = 22,
  Release = 23,
  /// target → head: renew this client's lease (Empty → Empty). The reply
  /// waits until every invalidation sent to the client before the request
  /// arrived is acknowledged, so a client that ignores invalidations stops
  /// being renewed (docs/design.md, "Leases").
  Renew = 24,
  /// head → target: drop cached state (InvalidateReq → Empty); the reply
  /// is the acknowledgement, sent once the kernel has dropped it.
  Invalidate = 25,
};
inline constexpr uint16_t k_op_first = 1, k_op_last = 25;

/// The op's name in lower case ("lookup", "readdirplus", ...), or "op?"
/// for a number that names none (for logs).
constexpr const char* op_name(Op op) {
  switch (op) {
    case Op::Lookup: return "lookup";
    case Op::Getattr: return "getattr";
    case Op::Setattr: return "setattr";
    case Op::Opendir: return "opendir";
    case Op::Readdirplus: return "readdirplus";
    case Op::Releasedir: return "releasedir";
    case Op::Open: return "open";
    case Op::Read: return "read";
    case Op::Write: return "write";
    case Op::Create: return "create";
    case Op::Mkdir: return "mkdir";
    case Op::Mknod: return "mknod";
    case Op::Unlink: return "unlink";
    case Op::Rmdir: return "rmdir";
    case Op::Rename: return "rename";
    case Op::Symlink: return "symlink";
    case Op::Readlink: return "readlink";
    case Op::Link: return "link";
    case Op::Statfs: return "statfs";
    case Op::Fsync: return "fsync";
    case Op::Flush: return "flush";
    case Op::Release: return "release";
    case Op::Renew: return "renew";
    case Op::Invalidate: return "invalidate";
  }
  return "op?";
}
/// True if `op` is a Request op this version knows (2 is retired: Forget
/// is a control message).
bool is_known_op(uint16_t op);

/// Control ops (FrameType::Control), one-way, in order per direction.
enum class Ctl : uint16_t {
  JobSpec = 100,      ///< head → target: what to run (JobSpec)
  Signal = 101,       ///< head → target: deliver to the job's process group
  WinSize = 102,      ///< head → target: pty window size changed
  StreamData = 103,   ///< both: stdin (head → target), stdout/stderr (back)
  StreamClose = 104,  ///< both: end of one stream
  StreamAck = 105,    ///< both: receiver wrote N more bytes of a stream
  JobExit = 106,      ///< target → head: the job ended (JobExit)
  Fatal = 107,        ///< both: the sender gives up; message names the cause
  Forget = 108,       ///< target → head: batch of FUSE forgets
  JobStarted = 109,   ///< target → head: mounts done, job exec'd
  /// mrc → the head node's file service (head-local, on its unix socket,
  /// never on the network): serve this target (AttachMsg). The first frame
  /// on the socket; it carries descriptors (SCM_RIGHTS): the target link,
  /// then one directory per export.
  Attach = 110,
  /// A target's FUSE client → a file service re-exporting files of that
  /// mount (recursion; target-local, on an abstract unix socket): which
  /// device the mount is (UpstreamHelloMsg). Then the client forwards every
  /// invalidation it gets from its head as an Invalidate request whose
  /// nodeids are the inode numbers seen on that device.
  UpstreamHello = 111,
};
inline constexpr uint16_t k_ctl_first = 100, k_ctl_last = 111;
bool is_known_ctl(uint16_t op);

/// The root nodeid: a synthetic directory whose entries "0", "1", ... are
/// the exports in JobSpec order (FUSE_ROOT_ID).
inline constexpr uint64_t k_root_nodeid = 1;

// ---- shared shapes -------------------------------------------------------

/// struct stat as the head node sees it; times in s + ns since the epoch.
struct Attr {
  uint64_t ino = 0, size = 0, blocks = 0, rdev = 0;  // blocks: 512-byte units
  uint32_t mode = 0, nlink = 0, uid = 0, gid = 0, blksize = 0;
  int64_t atime_s = 0, mtime_s = 0, ctime_s = 0;
  uint32_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  template <class V> void visit(V& v) {
    v(ino); v(size); v(blocks); v(rdev); v(mode); v(nlink); v(uid); v(gid); v(blksize);
    v(atime_s); v(atime_ns); v(mtime_s); v(mtime_ns); v(ctime_s); v(ctime_ns);
  }
};

/// A looked-up inode: counts as one lookup the client must FORGET.
struct Entry {
  uint64_t nodeid = 0, generation = 0;
  Attr attr;
  template <class V> void visit(V& v) { v(nodeid); v(generation); v(attr); }
};

struct Empty {
  template <class V> void visit(V&) {}
};

// ---- requests and replies -----------------------------------------------

struct NodeReq {  // Getattr, Readlink, Statfs, Opendir
  uint64_t nodeid = 0;
  template <class V> void visit(V& v) { v(nodeid); }
};
struct NameReq {  // Lookup, Unlink, Rmdir
  uint64_t parent = 0;
  std::string name;
  template <class V> void visit(V& v) { v(parent); v(name); }
};
struct FhReq {  // Releasedir, Flush, Release
  uint64_t fh = 0;
  template <class V> void visit(V& v) { v(fh); }
};

/// Setattr `valid` bits: the values of libfuse's FUSE_SET_ATTR_*.
enum SetattrBits : uint32_t {
  k_set_mode = 1 << 0, k_set_uid = 1 << 1, k_set_gid = 1 << 2, k_set_size = 1 << 3,
  k_set_atime = 1 << 4, k_set_mtime = 1 << 5, k_set_atime_now = 1 << 7,
  k_set_mtime_now = 1 << 8,
};
struct SetattrReq {
  uint64_t nodeid = 0, fh = 0;  // fh 0: none
  uint32_t valid = 0, mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t atime_s = 0, mtime_s = 0;
  uint32_t atime_ns = 0, mtime_ns = 0;
  template <class V> void visit(V& v) {
    v(nodeid); v(fh); v(valid); v(mode); v(uid); v(gid); v(size);
    v(atime_s); v(atime_ns); v(mtime_s); v(mtime_ns);
  }
};

/// FhRep/CreateRep flag: the client holds the file's exclusive write lease
/// while this fh is open, and may buffer writes (docs/design.md, "Write
/// leases"); the server recalls it (InvalKind::Recall) before any other
/// client touches the file.
inline constexpr uint32_t k_fh_write_lease = 1;

struct FhRep {  // Open, Opendir
  uint64_t fh = 0;
  uint32_t flags = 0;  // k_fh_*
  template <class V> void visit(V& v) { v(fh); v(flags); }
};

/// Requests on an open file or directory name it by `fh`, or by `nodeid`
/// with fh 0: the kernel opens without asking us (FUSE no_open), and the
/// server opens the inode itself when it needs a descriptor.
struct ReaddirReq {
  uint64_t fh = 0, offset = 0;  // offset: 0 or a previous next_offset
  uint32_t max_entries = 0;
  uint64_t nodeid = 0;  // when fh is 0
  template <class V> void visit(V& v) { v(fh); v(offset); v(max_entries); v(nodeid); }
};
/// One directory entry; entry.nodeid == 0 for "." and ".." (no lookup).
struct DirEntry {
  std::string name;
  uint64_t next_offset = 0;
  Entry entry;
  template <class V> void visit(V& v) { v(name); v(next_offset); v(entry); }
};
struct ReaddirRep {
  std::vector<DirEntry> entries;  // empty: end of directory
  uint8_t eof = 0;                // 1: the directory ends after these entries
  template <class V> void visit(V& v) { v(entries); v(eof); }
};

struct OpenReq {
  uint64_t nodeid = 0;
  uint32_t flags = 0;  // open(2) flags
  template <class V> void visit(V& v) { v(nodeid); v(flags); }
};
struct ReadReq {
  uint64_t fh = 0, offset = 0;
  uint32_t size = 0;    // bytes, at most 1 MiB
  uint64_t nodeid = 0;  // when fh is 0
  template <class V> void visit(V& v) { v(fh); v(offset); v(size); v(nodeid); }
};
struct DataRep {  // Read
  Bytes data;
  template <class V> void visit(V& v) { v(data); }
};
/// DataRep decoded in place (the data stays in the reply's frame).
struct DataRepView {
  ByteView data;
  template <class V>
  void visit(V& v) {
    v(data);
  }
};
struct WriteReq {
  uint64_t fh = 0, offset = 0;
  Bytes data;
  uint64_t nodeid = 0;  // when fh is 0
  template <class V> void visit(V& v) { v(fh); v(offset); v(data); v(nodeid); }
};
/// WriteReq's wire form with the data viewed, not owned: encoded gathered
/// by a sender (no copy of the data), decoded in place by the server.
struct WriteReqView {
  uint64_t fh = 0, offset = 0;
  ByteView data;
  uint64_t nodeid = 0;
  template <class V>
  void visit(V& v) {
    v(fh);
    v(offset);
    v(data);
    v(nodeid);
  }
};
struct WriteRep {
  uint32_t written = 0;  // bytes
  uint32_t flags = 0;    // k_fh_write_lease: from now on the client may buffer writes to the file
  template <class V> void visit(V& v) { v(written); v(flags); }
};
struct CreateReq {
  uint64_t parent = 0;
  std::string name;
  uint32_t mode = 0, flags = 0;  // mode already masked by the target's umask
  template <class V> void visit(V& v) { v(parent); v(name); v(mode); v(flags); }
};
struct CreateRep {
  Entry entry;
  uint64_t fh = 0;
  uint32_t flags = 0;  // k_fh_*
  template <class V> void visit(V& v) { v(entry); v(fh); v(flags); }
};
struct MknodReq {  // Mkdir too (rdev ignored)
  uint64_t parent = 0;
  std::string name;
  uint32_t mode = 0;
  uint64_t rdev = 0;
  template <class V> void visit(V& v) { v(parent); v(name); v(mode); v(rdev); }
};
struct RenameReq {
  uint64_t parent = 0, newparent = 0;
  std::string name, newname;
  uint32_t flags = 0;  // RENAME_NOREPLACE / RENAME_EXCHANGE
  template <class V> void visit(V& v) { v(parent); v(name); v(newparent); v(newname); v(flags); }
};
struct SymlinkReq {
  uint64_t parent = 0;
  std::string name, target;
  template <class V> void visit(V& v) { v(parent); v(name); v(target); }
};
struct ReadlinkRep {
  std::string target;
  template <class V> void visit(V& v) { v(target); }
};
struct LinkReq {
  uint64_t nodeid = 0, newparent = 0;
  std::string newname;
  template <class V> void visit(V& v) { v(nodeid); v(newparent); v(newname); }
};
struct StatfsRep {
  uint64_t bsize = 0, frsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0,
           favail = 0, namemax = 0;
  template <class V> void visit(V& v) {
    v(bsize); v(frsize); v(blocks); v(bfree); v(bavail); v(files); v(ffree); v(favail); v(namemax);
  }
};
/// What one invalidation drops in the client's kernel.
enum class InvalKind : uint8_t {
  Inode = 0,   ///< attributes and cached data (pages, readdir cache) of `nodeid`
  Entry = 1,   ///< the name `name` in directory `nodeid`, positive or negative
  Recall = 2,  ///< send the buffered writes of `nodeid`, then give up its write lease
  /// A hint, not coherence: drop the name `name` in directory `nodeid` if
  /// nothing uses it, so the inode is forgotten (the head is short of
  /// descriptors: it holds one per inode a client's kernel remembers).
  Forget = 3,
};
inline constexpr uint8_t k_inval_kind_last = 3;
struct InvalItem {
  uint8_t kind = 0;  // InvalKind
  uint64_t nodeid = 0;
  std::string name;  // Entry only; empty for Inode
  template <class V> void visit(V& v) { v(kind); v(nodeid); v(name); }
};
struct InvalidateReq {
  std::vector<InvalItem> items;  // applied in order
  template <class V> void visit(V& v) { v(items); }
};

struct FsyncReq {
  uint64_t fh = 0;
  uint8_t datasync = 0;
  uint64_t nodeid = 0;  // when fh is 0
  template <class V> void visit(V& v) { v(fh); v(datasync); v(nodeid); }
};

// ---- control messages ----------------------------------------------------

struct ExportSpec {
  std::string path;       // absolute, canonical on the head node
  uint8_t read_only = 0;  // 1: every mutation fails with EROFS
  template <class V> void visit(V& v) { v(path); v(read_only); }
};

/// What to run and how (Ctl::JobSpec).
struct JobSpec {
  std::vector<std::string> argv;  // argv[0] looked up in the job's PATH
  std::vector<std::string> env;   // "NAME=VALUE"; used as the whole environment
  uint8_t use_target_env = 0;     // 1 (--no-env): the target's own environment, `env` on top
  std::string cwd;                // head node's cwd
  std::vector<ExportSpec> exports;
  std::vector<std::string> keep_local;  // subtrees left to the target
  uint8_t pty = 0;                      // 1: run on a pseudo-terminal
  uint16_t rows = 0, cols = 0;
  uint32_t head_uid = 0, head_gid = 0;  // mapped to the target user in attrs
  int32_t verbosity = 0;                // the target's log level (-v count)
  int32_t zstd_level = 1;               // for frames the target sends; 0 = off
  uint32_t umask = 022;                 // the job's umask: the head user's
  uint32_t lease_ms = 30000;  // the client's lease term (DESIGN §4: 30 s, renewed every third)
  uint32_t grace_ms = 60000;  // a request unanswered this long fails with EIO (DESIGN §6)
  template <class V> void visit(V& v) {
    v(argv); v(env); v(use_target_env); v(cwd); v(exports); v(keep_local); v(pty); v(rows);
    v(cols); v(head_uid); v(head_gid); v(verbosity); v(zstd_level); v(umask); v(lease_ms);
    v(grace_ms);
  }
};

struct SignalMsg {
  int32_t signo = 0;
  template <class V> void visit(V& v) { v(signo); }
};
struct WinSizeMsg {
  uint16_t rows = 0, cols = 0;
  template <class V> void visit(V& v) { v(rows); v(cols); }
};

/// Stream ids of StreamData/StreamClose/StreamAck.
enum class Stream : uint8_t { Stdin = 0, Stdout = 1, Stderr = 2 };
inline constexpr uint8_t k_stream_last = 2;

struct StreamDataMsg {
  uint8_t stream = 0;
  Bytes data;
  template <class V> void visit(V& v) { v(stream); v(data); }
};
struct StreamCloseMsg {
  uint8_t stream = 0;
  template <class V> void visit(V& v) { v(stream); }
};
struct StreamAckMsg {
  uint8_t stream = 0;
  uint64_t bytes = 0;  // written out since the last ack
  template <class V> void visit(V& v) { v(stream); v(bytes); }
};

/// How the job ended: exited with `code`, or killed by signal `code`.
struct JobExitMsg {
  uint8_t signaled = 0;
  int32_t code = 0;
  template <class V> void visit(V& v) { v(signaled); v(code); }
};
struct FatalMsg {
  std::string message;
  template <class V> void visit(V& v) { v(message); }
};
struct ForgetItem {
  uint64_t nodeid = 0, nlookup = 0;
  template <class V> void visit(V& v) { v(nodeid); v(nlookup); }
};
struct ForgetMsg {
  std::vector<ForgetItem> items;
  template <class V> void visit(V& v) { v(items); }
};
struct AttachMsg {
  std::string name;        // the target, for messages ("local", "user@host:22")
  uint32_t lease_ms = 0;   // the target's lease term (JobSpec.lease_ms)
  uint32_t grace_ms = 0;   // a target silent this long is given up (JobSpec.grace_ms)
  int32_t zstd_level = 0;  // for frames the service sends the target
  std::vector<ExportSpec> exports;  // in JobSpec order; the fds follow the target link's
  /// Recursion: the invalidation socket of the mrc FUSE mount the exports
  /// live on ($MRC_UPSTREAM of the job that runs this mrc), or empty.
  std::string upstream;
  template <class V> void visit(V& v) {
    v(name); v(lease_ms); v(grace_ms); v(zstd_level); v(exports); v(upstream);
  }
};

struct UpstreamHelloMsg {
  uint64_t dev = 0;       // st_dev of the FUSE mount
  uint32_t lease_ms = 0;  // the mount's own lease term: answer within half of it
  template <class V> void visit(V& v) { v(dev); v(lease_ms); }
};

struct JobStartedMsg {
  int32_t pid = 0;  // the job's pid on the target
  template <class V> void visit(V& v) { v(pid); }
};

}  // namespace mrc::proto
