// Pure translations between the mrc protocol's shapes and the kernel's:
// attributes and uid/gid mapping, setattr requests, statfs, errno policy,
// and the readdir packing arithmetic. No libfuse, no I/O: unit-testable.
// Not the FUSE callbacks themselves (fusefs/client.cc).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"
#include "proto/messages.h"

namespace mrc::fusefs {

/// Largest READ we ask of the server, bytes: the kernel's 1 MiB request
/// size (256 pages) and what proto::ReadReq allows.
inline constexpr uint32_t k_max_read = 1024 * 1024;
/// Largest WRITE the kernel sends us (conn->max_write), bytes.
inline constexpr uint32_t k_max_write = 1024 * 1024;

/// Maps the head node's owner to the local (target) user and back. Only the
/// head user's uid/gid are mapped; every other id is shown as is.
struct IdMap {
  uint32_t head_uid = 0, head_gid = 0;
  uint32_t local_uid = 0, local_gid = 0;

  uint32_t uid_to_local(uint32_t uid) const { return uid == head_uid ? local_uid : uid; }
  uint32_t gid_to_local(uint32_t gid) const { return gid == head_gid ? local_gid : gid; }
  uint32_t uid_to_head(uint32_t uid) const { return uid == local_uid ? head_uid : uid; }
  uint32_t gid_to_head(uint32_t gid) const { return gid == local_gid ? head_gid : gid; }
};

/// The kernel-facing struct stat of a server inode. st_ino is the nodeid
/// (unique within this one mount, shared by hard links) rather than the
/// head's st_ino, which collides across exports on different devices;
/// nodeid 0 ("." / ".." in readdir) falls back to the head's ino.
struct stat to_stat(const proto::Attr& a, uint64_t nodeid, const IdMap& ids);

/// Builds a Setattr request from what the kernel asked: `to_set` holds
/// FUSE_SET_ATTR_* bits (equal to proto::SetattrBits); bits the protocol
/// does not carry (ctime, kill-suid, ...) are dropped. chown ids are mapped
/// back to the head node's.
proto::SetattrReq to_setattr(uint64_t nodeid, uint64_t fh, const struct stat& attr, uint32_t to_set,
                             const IdMap& ids);

/// statvfs for the kernel from the server's reply.
struct statvfs to_statvfs(const proto::StatfsRep& s);

/// The errno a FUSE caller gets for a failed call. Server errnos pass
/// through; transport failures (EIO: connection closed, ETIMEDOUT: no
/// reply within the time limit, EPROTO: malformed reply) and anything out
/// of errno range become EIO, so a caller never sees a bogus code.
int reply_errno(const Error& e);

// ---- readdir packing -------------------------------------------------------
// Kernel ABI (include/uapi/linux/fuse.h): a fuse_dirent is 24 bytes then the
// name; a fuse_direntplus is a 128-byte fuse_entry_out then a fuse_dirent;
// each record is padded to 8 bytes.

/// Reply-buffer bytes of one READDIR record with a `name_len`-byte name.
size_t dirent_size(size_t name_len);
/// Reply-buffer bytes of one READDIRPLUS record.
size_t direntplus_size(size_t name_len);

/// Whether the kernel asked for READDIRPLUS (entries with attributes) or
/// plain READDIR.
enum class DirMode { Plain, Plus };

/// How many entries to ask the server for so a `bufsize`-byte kernel buffer
/// is about full, assuming names of k_typical_name bytes: asking for more
/// makes the server look up entries we then have to forget.
inline constexpr size_t k_typical_name = 16;  // bytes
uint32_t readdir_max_entries(size_t bufsize, DirMode mode);

/// How many of `entries`, in order, fit in `bufsize` bytes.
size_t entries_that_fit(const std::vector<proto::DirEntry>& entries, size_t bufsize, DirMode mode);

/// Forgets owed for entries [from, end): the server counted a lookup for
/// each with nodeid != 0 that the kernel never received.
std::vector<proto::ForgetItem> forgets_from(const std::vector<proto::DirEntry>& entries, size_t from);

}  // namespace mrc::fusefs
