// FUSE low-level callbacks → mrc protocol calls, and the session's
// lifecycle (mount, multithreaded loop, unmount). The only file that
// includes libfuse. Callbacks block on Connection::call (the MT loop gives
// each its own thread), never throw, and never call fuse_lowlevel_notify_*
// (the Invalidator's thread does). What they hand the kernel is cached for
// as long as the lease allows, unless an invalidation raced with it.
// Not the pure translations (convert.h) nor mount(2) itself (kmount.h).
#define FUSE_USE_VERSION 312
#include "fusefs/client.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "fusefs/attrs.h"
#include "fusefs/convert.h"
#include "fusefs/dirahead.h"
#include "fusefs/downstream.h"
#include "fusefs/kmount.h"
#include "fusefs/lease.h"
#include "fusefs/writeback.h"

namespace mrc::fusefs {
namespace {

// Cached sequential reads: 397 → 1661 MB/s going from 128 KiB to 1 MiB here.
constexpr unsigned k_read_ahead_kb = 1024;
// Async requests (readahead, writes of other threads) the kernel keeps in
// flight; the default of 12 stalls 1 MiB readahead behind a ~100 µs RTT.
constexpr unsigned k_max_background = 64;
// Loop threads at most: each handler blocks for a round trip, so this bounds
// requests in flight to the server; ≥ k_max_background so background
// requests never starve foreground ones.
constexpr unsigned k_max_threads = 64;
// Largest ForgetMsg, items (16 bytes each: far under the frame limit).
constexpr size_t k_forget_batch = 65536;

static_assert(FUSE_SET_ATTR_MODE == proto::k_set_mode && FUSE_SET_ATTR_UID == proto::k_set_uid &&
                  FUSE_SET_ATTR_GID == proto::k_set_gid && FUSE_SET_ATTR_SIZE == proto::k_set_size &&
                  FUSE_SET_ATTR_ATIME == proto::k_set_atime && FUSE_SET_ATTR_MTIME == proto::k_set_mtime &&
                  FUSE_SET_ATTR_ATIME_NOW == proto::k_set_atime_now &&
                  FUSE_SET_ATTR_MTIME_NOW == proto::k_set_mtime_now,
              "proto::SetattrBits must equal libfuse's FUSE_SET_ATTR_*");
static_assert(FUSE_ROOT_ID == proto::k_root_nodeid);

}  // namespace

/// The libfuse session and everything its callbacks need. Threads: the
/// owner calls mount/start/unmount; libfuse's loop threads run the
/// callbacks, which only read the fields set before start().
class Session {
 public:
  Session(proto::Connection& conn, MountOptions opts)
      : m_conn(conn), m_opts(std::move(opts)), m_log(logger("fusefs")), m_lease(conn, m_opts.lease),
        m_inval(conn), m_wb(conn, m_opts.timeout),
        m_ahead([this](uint64_t nodeid, uint32_t max) { return fetch_ahead(nodeid, max); },
                [this](const std::vector<proto::DirEntry>& es) { forget(forgets_from(es, 0)); }) {
    m_ids = IdMap{m_opts.head_uid, m_opts.head_gid, static_cast<uint32_t>(::getuid()),
                  static_cast<uint32_t>(::getgid())};
  }
  ~Session() { unmount(); }

  Result<void> mount();
  void start();
  void unmount();

  /// One round trip, logged at debug with op, nodeid and latency.
  template <typename Rep, typename Req>
  Result<Rep> call(proto::Op op, uint64_t nodeid, const Req& req) {
    auto raw = call_raw(op, nodeid, req);
    if (!raw) return tl::unexpected(raw.error());
    auto r = proto::decode<Rep>(*raw);
    if (!r) m_log->warn("{} node {}: {}", proto::op_name(op), nodeid, r.error().message);
    return r;
  }
  /// The same, the reply body undecoded (for views into it).
  template <typename Req>
  Result<proto::ReplyBody> call_raw(proto::Op op, uint64_t nodeid, const Req& req) {
    auto t0 = std::chrono::steady_clock::now();
    auto c = m_conn.start_call(op, proto::encode_gathered(req));  // req outlives the send
    auto r = m_conn.await(*c, t0 + m_opts.timeout);
    if (m_log->should_log(spdlog::level::debug)) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      m_log->debug("{} node {}: {} in {} us", proto::op_name(op), nodeid, r ? "ok" : r.error().message, us.count());
    }
    // Timeouts and malformed replies are worth a warning; a closed connection
    // fails every call and is reported once by whoever owns it.
    if (!r && (r.error().code == ETIMEDOUT || r.error().code == EPROTO))
      m_log->warn("{} node {}: {}", proto::op_name(op), nodeid, r.error().message);
    return r;
  }

  /// Tells the server the kernel dropped lookups. Never throws.
  void forget(const std::vector<proto::ForgetItem>& items) noexcept {
    try {
      for (size_t i = 0; i < items.size(); i += k_forget_batch) {
        size_t n = std::min(k_forget_batch, items.size() - i);
        proto::ForgetMsg m{{items.begin() + i, items.begin() + i + n}};
        m_conn.send(proto::Ctl::Forget, m);
      }
    } catch (...) {
      // Out of memory: the server keeps a few inodes longer; harmless.
    }
  }

  /// What a handler reads before sending its request: the invalidation
  /// generation (timeout_for) and the attribute cache's epoch (AttrCache::put).
  struct Gen {
    uint64_t inval, attrs;
  };
  Gen generation() const { return {m_inval.generation(), m_attrs.epoch()}; }
  /// How long the kernel may cache what a request sent at generation
  /// `gen` returned: 0 if an invalidation arrived since (it may be stale),
  /// else what the lease allows. Call under the reply guard.
  double timeout_for(Gen gen) const {
    return m_inval.generation() == gen.inval ? m_lease.cache_timeout() : 0.0;
  }
  /// Held (shared) from timeout_for() until the reply is in the kernel.
  std::shared_lock<std::shared_mutex> reply_guard() { return std::shared_lock(m_inval.reply_guard()); }
  bool lease_valid() const { return m_lease.valid(); }
  /// How long one request may take (MountOptions::timeout).
  std::chrono::milliseconds request_timeout() const { return m_opts.timeout; }
  std::chrono::milliseconds since_renewal() const { return m_started ? m_lease.since_renewal() : std::chrono::milliseconds(0); }
  Result<std::string> serve_downstream() {
    unsigned maj = 0, min = 0;
    if (m_dev.empty() || std::sscanf(m_dev.c_str(), "%u:%u", &maj, &min) != 2)
      return fail(ENODEV, "the mount's device is unknown");
    if (m_down_owner) return m_down_owner->address();
    auto d = Downstream::create(makedev(maj, min), m_opts.lease);
    if (!d) return tl::unexpected(d.error());
    m_down_owner = std::move(*d);
    m_down = m_down_owner.get();
    return m_down_owner->address();
  }

  fuse_entry_param entry_param(const proto::Entry& e, double timeout) const {
    fuse_entry_param p{};
    p.ino = e.nodeid;
    p.generation = e.generation;
    p.attr = to_stat(e.attr, e.nodeid, m_ids);
    p.attr_timeout = timeout;
    p.entry_timeout = timeout;
    return p;
  }

  /// A name `req`'s caller just made is the caller's (allow_other only:
  /// the head made it as the file service's user): chowned there, and
  /// `e`'s attributes updated. A failure leaves it the service's (logged).
  void own_new(fuse_req_t req, proto::Entry& e) {
    if (!m_opts.allow_other) return;
    const fuse_ctx* c = fuse_req_ctx(req);
    if (c->uid == ::getuid() && c->gid == ::getgid()) return;
    proto::SetattrReq q;
    q.nodeid = e.nodeid;
    q.valid = proto::k_set_uid | proto::k_set_gid;
    q.uid = m_ids.uid_to_head(c->uid);
    q.gid = m_ids.gid_to_head(c->gid);
    auto r = call<proto::Attr>(proto::Op::Setattr, e.nodeid, q);
    if (r) e.attr = *r;
    else m_log->warn("new node {} stays the file service's: chown: {}", e.nodeid, r.error().message);
  }

  /// Replies with a looked-up entry; if the kernel refused the reply (the
  /// request was aborted) it never took the lookup: give it back.
  void reply_entry(fuse_req_t req, const proto::Entry& e, Gen gen) {
    auto guard = reply_guard();
    auto p = entry_param(e, timeout_for(gen));
    if (p.attr_timeout > 0) m_attrs.put(e.nodeid, e.attr, gen.attrs);
    if (fuse_reply_entry(req, &p) != 0) forget({{e.nodeid, 1}});
  }

  /// Replies "no such name" so the kernel keeps a negative dentry while
  /// the lease lasts; the server invalidates it when the name appears.
  void reply_negative(fuse_req_t req, Gen gen) {
    auto guard = reply_guard();
    fuse_entry_param p{};
    p.entry_timeout = timeout_for(gen);
    if (p.entry_timeout > 0)
      fuse_reply_entry(req, &p);
    else
      fuse_reply_err(req, ENOENT);
  }

  void reply_attr(fuse_req_t req, const proto::Attr& a, uint64_t nodeid, Gen gen) {
    auto guard = reply_guard();
    auto st = stat_of(a, nodeid);
    double timeout = timeout_for(gen);
    if (timeout > 0) m_attrs.put(nodeid, a, gen.attrs);
    fuse_reply_attr(req, &st, timeout);
  }

  /// Takes a write lease the head granted in the reply to a request sent at
  /// `gen`, unless an invalidation came since: a recall that overtook the
  /// reply would otherwise leave us buffering under a lease the head took
  /// back. (The head still counts it then, and recalls it when needed.)
  void accept_lease(uint64_t nodeid, uint64_t fh, Gen gen) {
    auto guard = reply_guard();
    if (m_inval.generation() == gen.inval) m_wb.leased(nodeid, fh);
  }

  /// Where the head said directory `nodeid`'s listing ends (call under the
  /// reply guard, with a fresh reply); taken back by the next call at that
  /// offset, and dropped when the directory changes.
  void note_eof(uint64_t nodeid, uint64_t offset) {
    std::lock_guard lk(m_eof_mu);
    if (m_eof.size() > 4096) m_eof.clear();
    m_eof[nodeid] = offset;
  }
  bool take_eof(uint64_t nodeid, uint64_t offset) {
    std::lock_guard lk(m_eof_mu);
    auto it = m_eof.find(nodeid);
    if (it == m_eof.end() || it->second != offset) return false;
    m_eof.erase(it);
    return true;
  }
  void dir_changed(uint64_t nodeid) {
    m_ahead.drop(nodeid);
    std::lock_guard lk(m_eof_mu);
    m_eof.erase(nodeid);
  }
  /// DirAhead's request: the listing of `nodeid` from offset 0 through the
  /// server's own descriptor (no_opendir), with the generation before it.
  Result<std::pair<proto::ReaddirRep, DirAhead::Token>> fetch_ahead(uint64_t nodeid, uint32_t max) {
    auto gen = generation();
    auto r = call<proto::ReaddirRep>(proto::Op::Readdirplus, nodeid, proto::ReaddirReq{0, 0, max, nodeid});
    if (!r) return tl::unexpected(r.error());
    return std::pair{std::move(*r), DirAhead::Token{gen.inval, gen.attrs}};
  }

  /// Answers a GETATTR from what we handed the kernel last, if that still
  /// holds (AttrCache). Returns false if the head must be asked.
  bool reply_cached_attr(fuse_req_t req, uint64_t nodeid) {
    auto guard = reply_guard();
    double timeout = m_lease.cache_timeout();
    if (timeout <= 0) return false;
    auto a = m_attrs.get(nodeid);
    if (!a) return false;
    auto st = stat_of(*a, nodeid);
    fuse_reply_attr(req, &st, timeout);
    return true;
  }

  /// A READ the kernel sent has been answered: the kernel then marks the
  /// file's atime stale, so the next stat() of it — a later pass of grep
  /// or make over warm files — would wait for a GETATTR. If we hold its
  /// attributes, expire them in the kernel now (attributes only: no page
  /// is dropped, no sleeping lock taken): the reader's own end-of-file
  /// check then asks us at once, we answer from the copy, and the fresh
  /// reply clears the stale mark while the file is still being read.
  void refresh_after_read(uint64_t nodeid) {
    if (!m_se || m_lease.cache_timeout() <= 0 || !m_attrs.get(nodeid)) return;
    (void)fuse_lowlevel_notify_inval_inode(m_se, nodeid, -1, 0);
  }

  void on_invalidate(uint64_t id, Bytes payload) { m_inval.on_request(id, std::move(payload)); }
  void set_expire_only(bool on) { m_expire_only = on; }
  void set_no_open(bool files, bool dirs) {
    m_no_open = files;
    m_no_opendir = dirs;
  }
  bool no_open() const { return m_no_open; }
  bool no_opendir() const { return m_no_opendir; }
  /// Drops one invalidated item in the kernel (on the Invalidator's
  /// threads): the full form may block on kernel locks, the quick one not.
  int apply(const proto::InvalItem& item);
  int apply_quick(const proto::InvalItem& item);
  int increment_epoch();

  /// Marks `nodeid` as having a request of ours in flight that holds its
  /// kernel lock (a directory we create or remove in, a file we write), for
  /// as long as the guard lives. Invalidations of it then take the quick form.
  class Busy {
   public:
    Busy(Session& s, uint64_t nodeid) : m_s(s), m_id(nodeid) {
      std::lock_guard lk(m_s.m_busy_mu);
      m_s.m_busy[m_id]++;
    }
    ~Busy() {
      m_s.dir_changed(m_id);  // done: a listing of it may have grown or shrunk
      std::lock_guard lk(m_s.m_busy_mu);
      if (--m_s.m_busy[m_id] == 0) m_s.m_busy.erase(m_id);
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    Session& m_s;
    uint64_t m_id;
  };
  bool busy(uint64_t nodeid) {
    std::lock_guard lk(m_busy_mu);
    return m_busy.count(nodeid) != 0;
  }

  struct stat stat_of(const proto::Attr& a, uint64_t nodeid) const {
    return to_stat(a, nodeid, m_ids);
  }
  const IdMap& ids() const { return m_ids; }

 private:
  proto::Connection& m_conn;
  const MountOptions m_opts;
  IdMap m_ids;
  std::shared_ptr<spdlog::logger> m_log;

  Lease m_lease;
  Invalidator m_inval;
 public:
  WriteBack m_wb;     // writes buffered under write leases; used by the callbacks
  AttrCache m_attrs;  // what the kernel was told last; used by the callbacks
  DirAhead m_ahead;   // listings of subdirectories asked for ahead; used by the callbacks

 private:
  bool m_started = false;      // start() ran: the lease clock is running
  bool m_expire_only = false;  // set in INIT: the kernel can expire an entry without detaching mounts
  bool m_no_open = false, m_no_opendir = false;  // set in INIT: open/opendir answered ENOSYS
  std::unique_ptr<Downstream> m_down_owner;  // set once by serve_downstream()
  std::atomic<Downstream*> m_down{nullptr};  // read by the Invalidator's thread
  std::mutex m_eof_mu;  // guards m_eof
  std::unordered_map<uint64_t, uint64_t> m_eof;  // directory nodeid → offset where its listing ends
  std::mutex m_busy_mu;  // guards m_busy
  std::unordered_map<uint64_t, int> m_busy;  // nodeid → requests in flight holding its kernel lock

  std::string m_mountpoint;  // canonical
  std::string m_dev;         // "maj:min" of our mount, "" if unknown
  fuse_session* m_se = nullptr;
  UniqueFd m_root;  // O_PATH on the mount root: a request through it wakes the loop at unmount
  std::thread m_loop;
};

namespace {

Session& self(fuse_req_t req) { return *static_cast<Session*>(fuse_req_userdata(req)); }

void reply_err(fuse_req_t req, const Error& e) { fuse_reply_err(req, reply_errno(e)); }

/// Runs a callback body; an exception (out of memory) becomes EIO. Bodies
/// reply last, so nothing can throw after a reply was sent.
template <typename F>
void guard(fuse_req_t req, F&& body) noexcept {
  try {
    body();
  } catch (...) {
    fuse_reply_err(req, EIO);
  }
}

uint64_t fh_of(const fuse_file_info* fi) { return fi ? fi->fh : 0; }

const fuse_lowlevel_ops& ops_table();  // at the end of this file

// ---- callbacks ---------------------------------------------------------------

void op_init(void* userdata, fuse_conn_info* conn) {
  // Only ask for what the kernel offers: libfuse aborts INIT otherwise.
  // AUTO_INVAL_DATA: a read checks the attributes once their timeout (never
  // past the lease) ran out, and drops pages if mtime or size moved; so
  // cached pages are never trusted past the lease either.
  unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS |
                  FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_EXPIRE_ONLY;
  conn->want |= want & conn->capable;
  // Always READDIRPLUS: our replies carry the attributes anyway, and in
  // "auto" mode the kernel asks for plain entries after the first page
  // of a listing, then looks every later name up on its own (`ls -l`,
  // `find -ls`: one round trip per file).
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_READDIRPLUS_AUTO);
  // The kernel would trust its own size/mtime over the server's even after
  // invalidation (DESIGN §4); small writes are batched by us later instead.
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  conn->max_write = k_max_write;
  conn->max_readahead = k_read_ahead_kb * 1024;  // the bdi was raised to match in mount()
  conn->max_background = k_max_background;
  auto* s = static_cast<Session*>(userdata);
  s->set_expire_only((conn->want & FUSE_CAP_EXPIRE_ONLY) != 0);
  // Zero-message opens: the kernel opens files and directories itself and
  // keeps their pages (our invalidations drop them), so a warm open, read
  // and close never waits for the head. Requests then carry the nodeid.
  s->set_no_open((conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0,
                 (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guard(req, [&] {
    Session& s = self(req);
    auto gen = s.generation();
    auto r = s.call<proto::Entry>(proto::Op::Lookup, parent, proto::NameReq{parent, name});
    if (!r && r.error().code == ENOENT) return s.reply_negative(req, gen);
    if (!r) return reply_err(req, r.error());
    s.reply_entry(req, *r, gen);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  try {
    self(req).m_attrs.evict(ino);
    self(req).m_ahead.drop(ino);
    self(req).m_wb.forget(ino);  // buffered writes name the node: before the head drops it
    self(req).forget({{ino, nlookup}});
  } catch (...) {
  }
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  try {
    std::vector<proto::ForgetItem> items(count);
    for (size_t i = 0; i < count; ++i) {
      items[i] = {forgets[i].ino, forgets[i].nlookup};
      self(req).m_wb.forget(forgets[i].ino);
      self(req).m_attrs.evict(forgets[i].ino);
      self(req).m_ahead.drop(forgets[i].ino);
    }
    self(req).forget(items);
  } catch (...) {
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  guard(req, [&] {
    self(req).m_wb.drain(ino);  // its size and mtime include our buffered writes
    if (self(req).reply_cached_attr(req, ino)) return;
    auto gen = self(req).generation();
    auto r = self(req).call<proto::Attr>(proto::Op::Getattr, ino, proto::NodeReq{ino});
    if (!r) return reply_err(req, r.error());
    self(req).reply_attr(req, *r, ino, gen);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  guard(req, [&] {
    Session::Busy busy(self(req), ino);
    self(req).m_wb.drain(ino);  // a truncate or chmod comes after our buffered writes
    auto q = to_setattr(ino, fh_of(fi), *attr, static_cast<uint32_t>(to_set), self(req).ids());
    auto gen = self(req).generation();
    auto r = self(req).call<proto::Attr>(proto::Op::Setattr, ino, q);
    self(req).m_attrs.drop(ino);
    if (!r) return reply_err(req, r.error());
    gen.attrs = self(req).m_attrs.epoch();  // what we got is newer than the drop
    self(req).reply_attr(req, *r, ino, gen);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guard(req, [&] {
    auto r = self(req).call<proto::ReadlinkRep>(proto::Op::Readlink, ino, proto::NodeReq{ino});
    if (!r) return reply_err(req, r.error());
    fuse_reply_readlink(req, r->target.c_str());
  });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    auto gen = self(req).generation();
    auto r =
        self(req).call<proto::Entry>(proto::Op::Mknod, parent, proto::MknodReq{parent, name, mode, rdev});
    if (!r) return reply_err(req, r.error());
    self(req).own_new(req, *r);
    self(req).m_attrs.drop(parent);          // its mtime moved; before the reply frees req
    gen.attrs = self(req).m_attrs.epoch();  // the entry we got is newer than the drop
    self(req).reply_entry(req, *r, gen);
  });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    auto gen = self(req).generation();
    auto r = self(req).call<proto::Entry>(proto::Op::Mkdir, parent, proto::MknodReq{parent, name, mode, 0});
    if (!r) return reply_err(req, r.error());
    self(req).own_new(req, *r);
    self(req).m_attrs.drop(parent);          // its mtime moved; before the reply frees req
    gen.attrs = self(req).m_attrs.epoch();  // the entry we got is newer than the drop
    self(req).reply_entry(req, *r, gen);
  });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    auto r = self(req).call<proto::Empty>(proto::Op::Unlink, parent, proto::NameReq{parent, name});
    self(req).m_attrs.clear();  // the victim's nlink and ctime, whoever it is
    fuse_reply_err(req, r ? 0 : reply_errno(r.error()));
  });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    auto r = self(req).call<proto::Empty>(proto::Op::Rmdir, parent, proto::NameReq{parent, name});
    self(req).m_attrs.clear();
    fuse_reply_err(req, r ? 0 : reply_errno(r.error()));
  });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    auto gen = self(req).generation();
    auto r = self(req).call<proto::Entry>(proto::Op::Symlink, parent, proto::SymlinkReq{parent, name, link});
    if (!r) return reply_err(req, r.error());
    self(req).own_new(req, *r);
    self(req).m_attrs.drop(parent);          // its mtime moved; before the reply frees req
    gen.attrs = self(req).m_attrs.epoch();  // the entry we got is newer than the drop
    self(req).reply_entry(req, *r, gen);
  });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    Session::Busy busy2(self(req), newparent);
    proto::RenameReq q;
    q.parent = parent;
    q.name = name;
    q.newparent = newparent;
    q.newname = newname;
    q.flags = flags;  // RENAME_NOREPLACE / RENAME_EXCHANGE, honoured by the server
    auto r = self(req).call<proto::Empty>(proto::Op::Rename, parent, q);
    self(req).m_attrs.clear();
    fuse_reply_err(req, r ? 0 : reply_errno(r.error()));
  });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  guard(req, [&] {
    Session::Busy busy(self(req), newparent);
    Session::Busy busy2(self(req), ino);
    auto gen = self(req).generation();
    auto r = self(req).call<proto::Entry>(proto::Op::Link, ino, proto::LinkReq{ino, newparent, newname});
    if (!r) return reply_err(req, r.error());
    self(req).m_attrs.drop(newparent);
    gen.attrs = self(req).m_attrs.epoch();
    self(req).reply_entry(req, *r, gen);
  });
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guard(req, [&] {
    if (self(req).no_open()) return (void)fuse_reply_err(req, ENOSYS);  // "opened": the kernel does it from now on
    auto gen = self(req).generation();
    auto r = self(req).call<proto::FhRep>(proto::Op::Open, ino,
                                          proto::OpenReq{ino, static_cast<uint32_t>(fi->flags)});
    if (!r) return reply_err(req, r.error());
    fi->fh = r->fh;
    // Pages cached under the lease stay: the server invalidates them when
    // the file changes. Without a lease, drop them (close-to-open).
    fi->keep_cache = self(req).lease_valid() ? 1 : 0;
    Session& s = self(req);  // req is gone once replied to
    if (r->flags & proto::k_fh_write_lease) s.accept_lease(ino, r->fh, gen);
    if (fuse_reply_open(req, fi) != 0) {  // aborted: the kernel never opened it
      s.m_wb.released(ino, r->fh);
      (void)s.call<proto::Empty>(proto::Op::Release, ino, proto::FhReq{r->fh});
    }
  });
}

/// Times a READ (or READDIRPLUS) is asked again because an invalidation
/// arrived while it was on the way; then the last reply is delivered.
constexpr int k_max_reasks = 8;

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  guard(req, [&] {
    Session& s = self(req);  // req is gone once answered
    s.m_wb.drain(ino);       // the head must have our buffered writes first
    proto::ReadReq q{fi->fh, static_cast<uint64_t>(off),
                     static_cast<uint32_t>(std::min<size_t>(size, k_max_read)), ino};
    for (int attempt = 0;; ++attempt) {
      auto gen = s.generation();
      auto raw = s.call_raw(proto::Op::Read, ino, q);
      if (!raw) return reply_err(req, raw.error());
      auto r = proto::decode<proto::DataRepView>(*raw);  // the data stays in `raw`
      if (!r) return reply_err(req, r.error());
      if (r->data.size() > q.size) {  // the server overran what we asked for
        fuse_reply_err(req, EIO);
        return;
      }
      // An invalidation that arrived meanwhile may be of this file, and its
      // full form waits for the page we fill: if it gave up (the quick form
      // after k_block) and was acknowledged, these bytes may predate the
      // change that caused it — the kernel would keep them. Ask again.
      auto lk = s.reply_guard();
      if (s.generation().inval != gen.inval && attempt < k_max_reasks) continue;
      bool at_end = r->data.size() < size;  // a short read: the file ends here
      int rc = fuse_reply_buf(req, reinterpret_cast<const char*>(r->data.data()), r->data.size());
      lk.unlock();
      if (rc == 0 && at_end) s.refresh_after_read(ino);
      return;
    }
  });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  guard(req, [&] {
    Session::Busy busy(self(req), ino);
    auto p = reinterpret_cast<const std::byte*>(buf);
    Session& s = self(req);
    if (s.m_wb.is_leased(ino)) {  // buffered: answered now, sent in batches
      int rc = s.m_wb.write(ino, fi->fh, static_cast<uint64_t>(off), p, size, (fi->flags & O_APPEND) != 0);
      if (rc != WriteBack::k_not_leased) {  // else recalled meanwhile: written through below
        s.m_attrs.drop(ino);  // size and mtime move (a getattr drains the buffer first)
        if (rc) return (void)fuse_reply_err(req, rc);
        fuse_reply_write(req, size);
        return;
      }
    }
    proto::WriteReqView q{fi->fh, static_cast<uint64_t>(off), ByteView(p, size), ino};
    auto gen = s.generation();
    auto r = self(req).call<proto::WriteRep>(proto::Op::Write, ino, q);
    s.m_attrs.drop(ino);
    if (!r) return reply_err(req, r.error());
    if (r->flags & proto::k_fh_write_lease) s.accept_lease(ino, 0, gen);  // later writes are buffered
    if (r->written > size) {
      fuse_reply_err(req, EIO);
      return;
    }
    fuse_reply_write(req, r->written);
  });
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guard(req, [&] {
    (void)fi;
    // The head has nothing to do at close, and a round trip per close costs
    // more than the rest of a warm open-read-close: ENOSYS tells the kernel
    // never to send FLUSH again. Buffered writes still reach the head within
    // WriteBack::k_max_delay, before anyone else sees the file, at fsync,
    // and before the job's exit status; a failure is reported by the next
    // write or fsync, and by mrc at the end.
    int err = self(req).m_wb.flush(ino);
    fuse_reply_err(req, err ? err : ENOSYS);
  });
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guard(req, [&] {
    self(req).m_wb.flush(ino);  // an error was reported by the flush of close() already
    self(req).m_wb.released(ino, fi->fh);
    auto r = self(req).call<proto::Empty>(proto::Op::Release, ino, proto::FhReq{fi->fh});
    fuse_reply_err(req, r ? 0 : reply_errno(r.error()));  // the kernel ignores it
  });
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  guard(req, [&] {
    int buffered = self(req).m_wb.flush(ino);
    auto r = self(req).call<proto::Empty>(proto::Op::Fsync, ino,
                                          proto::FsyncReq{fi->fh, static_cast<uint8_t>(datasync ? 1 : 0), ino});
    fuse_reply_err(req, buffered ? buffered : r ? 0 : reply_errno(r.error()));
  });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guard(req, [&] {
    if (self(req).no_opendir()) return (void)fuse_reply_err(req, ENOSYS);
    auto r = self(req).call<proto::FhRep>(proto::Op::Opendir, ino, proto::NodeReq{ino});
    if (!r) return reply_err(req, r.error());
    fi->fh = r->fh;
    fi->keep_cache = fi->cache_readdir = self(req).lease_valid() ? 1 : 0;
    fuse_reply_open(req, fi);
  });
}

/// READDIR and READDIRPLUS both read the server's readdirplus data; what the
/// kernel does not take (plain mode: every entry; plus mode: what did not
/// fit) had a lookup counted by the server, which we give back.
void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                    DirMode mode) {
  guard(req, [&] {
    Session& s = self(req);
    // The head said the listing ended here: the kernel's last call, which
    // would come back empty, needs no round trip.
    if (s.take_eof(ino, static_cast<uint64_t>(off))) return (void)fuse_reply_buf(req, nullptr, 0);
    proto::ReaddirReq q{fi->fh, static_cast<uint64_t>(off), readdir_max_entries(size, mode), ino};
    auto gen = s.generation();
    Result<proto::ReaddirRep> r = fail(EAGAIN, "not asked yet");
    // Asked ahead when its parent was listed (DirAhead): valid as if asked
    // then, since any change of the directory since would have dropped it.
    if (off == 0 && mode == DirMode::Plus && fi->fh == 0 && s.lease_valid()) {
      if (auto got = s.m_ahead.take(ino, std::chrono::steady_clock::now() + s.request_timeout())) {
        r = std::move(got->first);
        gen = Session::Gen{got->second.a, got->second.b};
      }
    }
    std::shared_lock<std::shared_mutex> guard;
    for (int attempt = 0;; ++attempt) {
      if (!r) {
        gen = s.generation();
        r = s.call<proto::ReaddirRep>(proto::Op::Readdirplus, ino, q);
      }
      if (!r) return reply_err(req, r.error());
      guard = s.reply_guard();
      // As for READ: an invalidation that arrived meanwhile may be of this
      // directory, and the kernel keeps a listing it is given (cache_readdir).
      if (s.generation().inval == gen.inval || attempt >= k_max_reasks) break;
      guard.unlock();
      s.forget(forgets_from(r->entries, 0));
      r = fail(EAGAIN, "asked again");
    }
    const auto& es = r->entries;
    size_t fit = entries_that_fit(es, size, mode);
    std::vector<char> buf(size);
    size_t used = 0;
    double timeout = s.timeout_for(gen);
    for (size_t i = 0; i < fit; ++i) {
      const auto& d = es[i];
      auto p = s.entry_param(d.entry, timeout);
      if (timeout > 0 && d.entry.nodeid != 0 && mode == DirMode::Plus)
        s.m_attrs.put(d.entry.nodeid, d.entry.attr, gen.attrs);
      if (d.entry.nodeid == 0 && d.name == ".") p.attr.st_ino = ino;
      auto next = static_cast<off_t>(d.next_offset);
      size_t n = mode == DirMode::Plus
                     ? fuse_add_direntry_plus(req, buf.data() + used, size - used, d.name.c_str(), &p, next)
                     : fuse_add_direntry(req, buf.data() + used, size - used, d.name.c_str(), &p.attr, next);
      assert(n <= size - used && "entries_that_fit disagrees with libfuse");
      used += n;
    }
    // An empty reply means end of directory: never send one while the server
    // still had entries (cannot happen: buffers ≥ 4 KiB, records ≤ 408 bytes).
    if (fit == 0 && !es.empty()) {
      s.forget(forgets_from(es, 0));
      fuse_reply_err(req, EIO);
      return;
    }
    s.forget(forgets_from(es, mode == DirMode::Plus ? fit : 0));
    // Not if anything changed since we asked: a remote change (timeout 0)
    // or one of ours (the attribute epoch moved).
    if (r->eof && fit == es.size() && !es.empty() && timeout > 0 && gen.attrs == s.m_attrs.epoch())
      s.note_eof(ino, es.back().next_offset);
    std::vector<uint64_t> subdirs;
    if (mode == DirMode::Plus && timeout > 0 && s.no_opendir())
      for (size_t i = 0; i < fit; ++i)
        if (S_ISDIR(es[i].entry.attr.mode) && es[i].entry.nodeid != 0 && es[i].name != "." && es[i].name != "..")
          subdirs.push_back(es[i].entry.nodeid);
    if (fuse_reply_buf(req, buf.data(), used) != 0) {
      if (mode == DirMode::Plus) {
        std::vector<proto::DirEntry> sent(es.begin(), es.begin() + static_cast<ptrdiff_t>(fit));
        s.forget(forgets_from(sent, 0));
      }
      return;
    }
    guard.unlock();
    // The traversal will list these next: ask for them now, side by side.
    if (!subdirs.empty()) s.m_ahead.want(subdirs, q.max_entries);
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  readdir_common(req, ino, size, off, fi, DirMode::Plain);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  readdir_common(req, ino, size, off, fi, DirMode::Plus);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guard(req, [&] {
    auto r = self(req).call<proto::Empty>(proto::Op::Releasedir, ino, proto::FhReq{fi->fh});
    fuse_reply_err(req, r ? 0 : reply_errno(r.error()));
  });
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  guard(req, [&] {
    auto r = self(req).call<proto::StatfsRep>(proto::Op::Statfs, ino, proto::NodeReq{ino});
    if (!r) return reply_err(req, r.error());
    auto v = to_statvfs(*r);
    fuse_reply_statfs(req, &v);
  });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  guard(req, [&] {
    Session::Busy busy(self(req), parent);
    Session& s = self(req);
    proto::CreateReq q{parent, name, mode, static_cast<uint32_t>(fi->flags)};
    auto gen = s.generation();
    auto r = s.call<proto::CreateRep>(proto::Op::Create, parent, q);
    if (!r) return reply_err(req, r.error());
    s.own_new(req, r->entry);
    fi->fh = r->fh;
    fi->keep_cache = s.lease_valid() ? 1 : 0;
    // A file created write-only (a job's output: dd of=, cp, a compiler's
    // object) is written with FUSE direct I/O: write() goes from the
    // caller's buffer to us, without first being copied into pages of
    // this kernel's cache that nobody here reads (the largest single
    // cost of a 1 GiB write on the target). Pages other opens of the
    // file cached are invalidated by the kernel around each direct write;
    // a later open for reading fetches from the head.
    if ((fi->flags & O_ACCMODE) == O_WRONLY) fi->direct_io = 1;
    if (r->flags & proto::k_fh_write_lease) s.accept_lease(r->entry.nodeid, r->fh, gen);
    auto guard = s.reply_guard();
    auto p = s.entry_param(r->entry, s.timeout_for(gen));
    if (p.attr_timeout > 0) s.m_attrs.put(r->entry.nodeid, r->entry.attr, gen.attrs);
    int rc = fuse_reply_create(req, &p, fi);
    guard.unlock();
    s.m_attrs.drop(parent);
    if (rc != 0) {  // aborted: the kernel holds neither
      s.m_wb.released(r->entry.nodeid, r->fh);
      s.forget({{r->entry.nodeid, 1}});
      (void)s.call<proto::Empty>(proto::Op::Release, r->entry.nodeid, proto::FhReq{r->fh});
    }
  });
}

}  // namespace

// ---- lifecycle -------------------------------------------------------------

Result<void> Session::mount() {
  if (m_se) return fail(EBUSY, "already mounted at " + m_mountpoint);
  char* real = ::realpath(m_opts.mountpoint.c_str(), nullptr);
  if (!real) return fail_errno("mount point " + m_opts.mountpoint);
  m_mountpoint = real;
  std::free(real);

  // A session with no options: we mount ourselves below and hand it the fd.
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  if (fuse_opt_add_arg(&args, "mrc") != 0) return fail(ENOMEM, "fuse_opt_add_arg");
  fuse_session* se = fuse_session_new(&args, &ops_table(), sizeof(fuse_lowlevel_ops), this);
  fuse_opt_free_args(&args);
  if (!se) return fail(EIO, "fuse_session_new failed (see stderr)");

  auto fd = mount_fuse(m_mountpoint, m_opts.fsname, "mrc", m_opts.allow_other);
  if (!fd) {
    fuse_session_destroy(se);
    return tl::unexpected(fd.error());
  }
  if (auto top = current_mount_at(m_mountpoint); top && top->fstype == "fuse.mrc") m_dev = top->dev;
  // Pins the mount root so unmount() can send one request to wake the loop.
  // O_PATH crosses into the mount without a FUSE request (INIT is not
  // answered until start()).
  m_root = UniqueFd(::open(m_mountpoint.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!m_root)
    m_log->warn("cannot pin {}: {}; unmount will abort via fusectl", m_mountpoint, std::strerror(errno));
  std::string devfd = "/dev/fd/" + std::to_string(fd->get());
  if (fuse_session_mount(se, devfd.c_str()) != 0) {
    if (!m_dev.empty()) (void)detach_if_ours(m_mountpoint, m_dev);
    m_root.reset();
    fuse_session_destroy(se);
    return fail(EIO, "fuse_session_mount " + devfd + " failed (see stderr)");
  }
  fd->release();  // the session owns it now; fuse_session_destroy closes it
  m_se = se;

  // Before INIT is answered: the kernel then takes min(bdi, our max_readahead).
  if (m_dev.empty()) {
    m_log->warn("mounted {} but cannot find it in /proc/self/mountinfo", m_mountpoint);
  } else if (auto r = set_bdi_read_ahead(m_dev, k_read_ahead_kb); !r) {
    m_log->info("read-ahead stays at the kernel default: {}", r.error().message);
  }
  m_log->debug("mounted {} (dev {})", m_mountpoint, m_dev);
  return {};
}

int Session::apply_quick(const proto::InvalItem& item) {
  if (item.kind == static_cast<uint8_t>(proto::InvalKind::Inode)) m_attrs.drop(item.nodeid);
  if (item.kind == static_cast<uint8_t>(proto::InvalKind::Inode) ||
      item.kind == static_cast<uint8_t>(proto::InvalKind::Entry))
    dir_changed(item.nodeid);  // a listing of it may have changed
  switch (static_cast<proto::InvalKind>(item.kind)) {
    case proto::InvalKind::Forget:
      return 0;  // a hint; the next one will do
    case proto::InvalKind::Recall:
      m_wb.recall(item.nodeid);  // takes no kernel lock: waits for the head only
      return 0;
    case proto::InvalKind::Inode:
      // Attributes only: takes no sleeping lock. With AUTO_INVAL_DATA the
      // next read fetches the attributes and drops pages if mtime or size moved.
      return fuse_lowlevel_notify_inval_inode(m_se, item.nodeid, -1, 0);
    case proto::InvalKind::Entry:
      return increment_epoch();
  }
  return -EINVAL;
}

int Session::increment_epoch() {
  // FUSE_NOTIFY_INC_EPOCH (Linux 6.16, not in libfuse 3.14): the kernel
  // bumps the connection's epoch and revalidates every dentry stamped with
  // an older one at its next use (lazily, like expire_entry: mounts stay).
  constexpr int32_t k_notify_inc_epoch = 8;
  struct {
    uint32_t len;
    int32_t error;
    uint64_t unique;
  } out{16, k_notify_inc_epoch, 0};
  ssize_t n = ::write(fuse_session_fd(m_se), &out, sizeof(out));
  return n == static_cast<ssize_t>(sizeof(out)) ? 0 : -errno;
}

int Session::apply(const proto::InvalItem& item) {
  if (item.kind == static_cast<uint8_t>(proto::InvalKind::Inode)) m_attrs.drop(item.nodeid);
  if (item.kind == static_cast<uint8_t>(proto::InvalKind::Inode) ||
      item.kind == static_cast<uint8_t>(proto::InvalKind::Entry))
    dir_changed(item.nodeid);  // a listing of it may have changed
  switch (static_cast<proto::InvalKind>(item.kind)) {
    case proto::InvalKind::Forget:
      // Dropped, not expired: an unused dentry goes, and with it the inode
      // (FORGET). Only files are asked for, so no mount is detached.
      return fuse_lowlevel_notify_inval_entry(m_se, item.nodeid, item.name.c_str(), item.name.size());
    case proto::InvalKind::Recall:
      m_wb.recall(item.nodeid);
      return 0;
    case proto::InvalKind::Inode:
      return fuse_lowlevel_notify_inval_inode(m_se, item.nodeid, 0, 0);
    case proto::InvalKind::Entry:
      // Expiring keeps what is mounted on the entry (keep-local subtrees,
      // the job's own mounts); the next walk through it asks the server.
      if (m_expire_only)
        return fuse_lowlevel_notify_expire_entry(m_se, item.nodeid, item.name.c_str(), item.name.size(),
                                                 FUSE_LL_EXPIRE_ONLY);
      return fuse_lowlevel_notify_inval_entry(m_se, item.nodeid, item.name.c_str(), item.name.size());
  }
  return -EINVAL;
}

void Session::start() {
  assert(m_se && !m_loop.joinable() && "start() needs a mount() and runs once");
  m_inval.start({[this](const proto::InvalItem& item) { return apply(item); },
                  [this](const proto::InvalItem& item) { return apply_quick(item); },
                  [this](const proto::InvalItem& item) { return busy(item.nodeid); },
                  [this](const proto::InvalidateReq& req) {
                    // Within ¾ of our lease, so we still answer our head in time.
                    if (auto* d = m_down.load()) d->forward(req, std::chrono::steady_clock::now() + m_opts.lease * 3 / 4);
                  }});
  if (!m_lease.start()) m_log->info("no lease from the head node yet: caching nothing until it renews");
  m_started = true;
  m_wb.start();
  m_ahead.start();
  m_loop = std::thread([this] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_idle_threads(cfg, static_cast<unsigned>(std::max(1, m_opts.threads)));
    fuse_loop_cfg_set_max_threads(cfg, std::max(k_max_threads, static_cast<unsigned>(m_opts.threads)));
    int rc = fuse_session_loop_mt(m_se, cfg);
    fuse_loop_cfg_destroy(cfg);
    if (rc != 0) m_log->warn("FUSE session loop ended: {}", std::strerror(rc < 0 ? -rc : rc));
  });
}

void Session::unmount() {
  if (!m_se) return;
  // 0. Coherence first, while the loop still serves: an invalidation
  // waiting on a page lock needs the READ in flight to be answered.
  m_ahead.stop();
  auto st = m_ahead.stats();
  if (st.asked) m_log->debug("readdir-ahead: {} listings asked, {} taken, {} discarded", st.asked, st.taken, st.discarded);
  m_wb.flush_all();
  m_wb.stop();
  m_lease.stop();
  m_inval.stop();
  // 1. Loop threads stop taking requests.
  fuse_session_exit(m_se);
  // 2. Lazy unmount: new opens fail at once, open files keep working.
  if (m_dev.empty()) {
    m_log->warn("not unmounting {}: our mount was never identified", m_mountpoint);
  } else if (auto r = detach_if_ours(m_mountpoint, m_dev); !r) {
    m_log->warn("{}", r.error().message);
  } else if (!*r) {
    m_log->warn("not unmounting {}: another mount is on top of ours", m_mountpoint);
  }
  // 3. Wake the loop: its threads block in read(/dev/fuse) and only look at
  // the exit flag once a request arrives; the first one to see it ends the
  // loop (libfuse cancels the others). The request itself is dropped, so the
  // poke blocks until step 4 closes /dev/fuse (ENOTCONN). Without a pinned
  // root, abort the connection through fusectl instead.
  std::thread poke;
  if (m_loop.joinable() && !m_root && !m_dev.empty()) {
    if (auto r = abort_connection(m_dev); !r) m_log->warn("{}", r.error().message);
  } else if (m_loop.joinable()) {
    poke = std::thread([fd = m_root.get()] {
      struct statfs sfs;
      (void)::fstatfs(fd, &sfs);
    });
  }
  if (m_loop.joinable()) m_loop.join();
  // 4. Closing /dev/fuse aborts the connection: anything still using the
  // detached mount gets ENOTCONN instead of hanging.
  fuse_session_destroy(m_se);
  m_se = nullptr;
  if (poke.joinable()) poke.join();
  m_root.reset();
  m_log->debug("unmounted {}", m_mountpoint);
}

// ---- Client ------------------------------------------------------------------

Client::Client(proto::Connection& conn, MountOptions opts)
    : m_session(std::make_unique<Session>(conn, std::move(opts))) {}
Client::~Client() { unmount(); }
Result<void> Client::mount() { return m_session->mount(); }
void Client::start() { m_session->start(); }
void Client::unmount() { m_session->unmount(); }
void Client::on_invalidate(uint64_t id, Bytes payload) { m_session->on_invalidate(id, std::move(payload)); }
std::chrono::milliseconds Client::since_renewal() const { return m_session->since_renewal(); }
Result<std::string> Client::serve_downstream() { return m_session->serve_downstream(); }
int Client::flush_all() { return m_session->m_wb.flush_all(); }

// ---- the ops table -------------------------------------------------------------

namespace {

const fuse_lowlevel_ops& ops_table() {
  static const fuse_lowlevel_ops k_ops = [] {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = op_lookup;
    o.forget = op_forget;
    o.forget_multi = op_forget_multi;
    o.getattr = op_getattr;
    o.setattr = op_setattr;
    o.readlink = op_readlink;
    o.mknod = op_mknod;
    o.mkdir = op_mkdir;
    o.unlink = op_unlink;
    o.rmdir = op_rmdir;
    o.symlink = op_symlink;
    o.rename = op_rename;
    o.link = op_link;
    o.open = op_open;
    o.read = op_read;
    o.write = op_write;
    o.flush = op_flush;
    o.release = op_release;
    o.fsync = op_fsync;
    o.opendir = op_opendir;
    o.readdir = op_readdir;
    o.readdirplus = op_readdirplus;
    o.releasedir = op_releasedir;
    o.statfs = op_statfs;
    o.create = op_create;
    return o;
  }();
  return k_ops;
}

}  // namespace
}  // namespace mrc::fusefs
