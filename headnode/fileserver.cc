// FileServer: export setup, and the dispatch table that is the one place
// where read-only policy is enforced (openssh sftp-server style): each op
// is {op, name, handler, mutates}; a mutating op runs only after
// Ops::writable() approves every node it changes. Handlers are in ops.cc
// (namespace) and io.cc (handles).
#include "headnode/fileserver.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <exception>

#include "common/log.h"
#include "headnode/nodes.h"
#include "headnode/ops.h"
#include "headnode/sys.h"
#include "proto/codec.h"

namespace mrc::headnode {

namespace {

using proto::Op;

/// Whether an op changes the file system, for the read-only check.
enum class Mutates {
  No,
  Yes,
  WhenWriting,  // Open: only with a write access mode or O_TRUNC
};

// Reply bodies: Lookup/Mkdir/Mknod/Symlink/Link → Entry; Getattr/Setattr →
// Attr; Open/Opendir → FhRep; Unlink/Rmdir/Rename/Fsync/Flush/Release/
// Releasedir → Empty; the rest as their names say (proto/messages.h).
template <class F>
struct Signature;
template <class Req, class Rep>
struct Signature<Result<Rep> (Ops::*)(const Req&)> {
  using Request = Req;
};

bool opens_for_writing(const proto::OpenReq& r) {
  return (r.flags & O_ACCMODE) != O_RDONLY || (r.flags & O_TRUNC);
}
template <class Req>
bool opens_for_writing(const Req&) {
  return true;
}

/// Decodes exactly (EPROTO otherwise), applies the read-only policy, runs
/// the handler, encodes its reply.
template <auto Fn, Mutates M>
Result<Bytes> run(Ops& ops, std::span<const std::byte> in) {
  using Req = typename Signature<decltype(Fn)>::Request;
  auto req = proto::decode<Req>(in);
  if (!req) return tl::unexpected(req.error());
  if constexpr (M != Mutates::No) {
    if (M == Mutates::Yes || opens_for_writing(*req))
      if (auto w = ops.writable(*req); !w) return tl::unexpected(w.error());
  }
  auto rep = (ops.*Fn)(*req);
  if (!rep) return tl::unexpected(rep.error());
  if constexpr (std::is_same_v<std::decay_t<decltype(*rep)>, EncodedReply>)
    return std::move(rep->payload);
  else
    return proto::encode(*rep);
}

struct OpEntry {
  Op op;
  const char* name;
  Result<Bytes> (*handler)(Ops&, std::span<const std::byte>);
  Mutates mutates;
};

template <auto Fn, Mutates M>
constexpr OpEntry entry(Op op, const char* name) {
  return {op, name, &run<Fn, M>, M};
}

constexpr OpEntry k_ops[] = {
    entry<&Ops::lookup, Mutates::No>(Op::Lookup, "lookup"),
    entry<&Ops::getattr, Mutates::No>(Op::Getattr, "getattr"),
    entry<&Ops::setattr, Mutates::Yes>(Op::Setattr, "setattr"),
    entry<&Ops::opendir, Mutates::No>(Op::Opendir, "opendir"),
    entry<&Ops::readdirplus, Mutates::No>(Op::Readdirplus, "readdirplus"),
    entry<&Ops::releasedir, Mutates::No>(Op::Releasedir, "releasedir"),
    entry<&Ops::open, Mutates::WhenWriting>(Op::Open, "open"),
    entry<&Ops::read, Mutates::No>(Op::Read, "read"),
    entry<&Ops::write, Mutates::Yes>(Op::Write, "write"),
    entry<&Ops::create, Mutates::Yes>(Op::Create, "create"),
    entry<&Ops::mkdir, Mutates::Yes>(Op::Mkdir, "mkdir"),
    entry<&Ops::mknod, Mutates::Yes>(Op::Mknod, "mknod"),
    entry<&Ops::unlink, Mutates::Yes>(Op::Unlink, "unlink"),
    entry<&Ops::rmdir, Mutates::Yes>(Op::Rmdir, "rmdir"),
    entry<&Ops::rename, Mutates::Yes>(Op::Rename, "rename"),
    entry<&Ops::symlink, Mutates::Yes>(Op::Symlink, "symlink"),
    entry<&Ops::readlink, Mutates::No>(Op::Readlink, "readlink"),
    entry<&Ops::link, Mutates::Yes>(Op::Link, "link"),
    entry<&Ops::statfs, Mutates::No>(Op::Statfs, "statfs"),
    entry<&Ops::fsync, Mutates::No>(Op::Fsync, "fsync"),
    entry<&Ops::flush, Mutates::No>(Op::Flush, "flush"),
    entry<&Ops::release, Mutates::No>(Op::Release, "release"),
    entry<&Ops::renew, Mutates::No>(Op::Renew, "renew"),
};

/// The table indexed by op code; null for codes no entry serves.
const OpEntry* find_op(Op op) {
  static const auto index = [] {
    std::array<const OpEntry*, proto::k_op_last + 1> a{};
    for (const auto& e : k_ops) a.at(static_cast<uint16_t>(e.op)) = &e;
    return a;
  }();
  auto code = static_cast<uint16_t>(op);
  return code < index.size() ? index[code] : nullptr;
}

}  // namespace

FileServer::FileServer(Membership member)
    : m_nodes(std::make_unique<NodeTable>(member.coh, member.session)), m_log(logger("fileserver")) {}
// m_ops refers to m_nodes: it goes first.
FileServer::~FileServer() { m_ops.reset(); }

Result<std::unique_ptr<FileServer>> FileServer::create(const std::vector<proto::ExportSpec>& exports,
                                                       Membership member) {
  std::vector<UniqueFd> roots;
  for (const auto& e : exports) {
    if (e.path.empty() || e.path[0] != '/')
      return fail(EINVAL, "export " + e.path + ": path is not absolute");
    int fd = ::open(e.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail_errno("export " + e.path);
    roots.emplace_back(fd);
  }
  return create(exports, std::move(roots), member);
}

Result<std::unique_ptr<FileServer>> FileServer::create(const std::vector<proto::ExportSpec>& exports,
                                                       std::vector<UniqueFd> roots, Membership member) {
  if (roots.size() != exports.size()) return fail(EINVAL, "one root fd per export needed");
  std::unique_ptr<FileServer> fs(new FileServer(member));
  std::vector<Export> table;
  for (size_t i = 0; i < exports.size(); ++i) {
    const auto& path = exports[i].path;
    auto st = stat_fd(roots[i].get());
    if (!st) return fail(st.error().code, "export " + path + ": " + st.error().message);
    if (!S_ISDIR(st->st_mode)) return fail(ENOTDIR, "export " + path + ": not a directory");
    uint64_t id = fs->m_nodes->add_pinned(std::move(roots[i]), *st, static_cast<uint32_t>(i));
    table.push_back(Export{path, exports[i].read_only != 0, id});
  }
  fs->m_ops = std::make_unique<Ops>(std::move(table), *fs->m_nodes, member);
  return fs;
}

std::pair<int, Bytes> FileServer::handle(Op op, std::span<const std::byte> payload) {
  return serve(op, payload, 0);
}

std::pair<int, Bytes> FileServer::serve(Op op, std::span<const std::byte> payload, uint64_t id) {
  auto t0 = std::chrono::steady_clock::now();
  const OpEntry* e = find_op(op);
  if (e) m_served[static_cast<size_t>(op)].fetch_add(1, std::memory_order_relaxed);
  Result<Bytes> r = fail(ENOSYS, "op not served");
  if (e) {
    try {  // nothing may escape to the pool thread (bad_alloc, ...)
      r = e->handler(*m_ops, payload);
    } catch (const std::exception& ex) {
      r = fail(EIO, std::string("internal error: ") + ex.what());
    } catch (...) {
      r = fail(EIO, "internal error");
    }
  }
  int err = r ? 0 : (r.error().code != 0 ? r.error().code : EIO);
  if (m_log->should_log(spdlog::level::debug)) {
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    m_log->debug("req {} {} errno={} {} us{}{}", id, e ? e->name : "op?", err, us, err ? ": " : "",
                 err ? r.error().message : "");
  }
  if (err) return {err, {}};
  return {0, std::move(*r)};
}

void FileServer::forget(const proto::ForgetMsg& m) {
  for (const auto& item : m.items)
    if (auto gone = m_nodes->forget(item.nodeid, item.nlookup)) m_ops->forgotten(*gone);
}

Result<void> FileServer::sync() {
  for (const auto& ex : m_ops->exports()) {
    auto n = m_nodes->get(ex.nodeid);
    if (!n) return fail(n.error().code, "sync " + ex.path + ": " + n.error().message);
    auto fd = reopen_dir((*n)->fd.get());
    if (!fd) return fail(fd.error().code, "sync " + ex.path + ": " + fd.error().message);
    if (::syncfs(fd->get()) < 0) return fail_errno("syncfs " + ex.path);
  }
  return {};
}

void FileServer::close_descriptors() { m_ops->close_descriptors(); }

size_t FileServer::drop_idle_writers(std::chrono::steady_clock::duration idle) {
  return m_ops->drop_idle_writers(idle);
}

std::string FileServer::served_summary() const {
  uint64_t total = 0;
  std::string ops;
  for (uint16_t i = proto::k_op_first; i <= proto::k_op_last; ++i) {
    uint64_t n = m_served[i].load();
    if (n == 0) continue;
    total += n;
    ops += (ops.empty() ? "" : ", ") + std::string(proto::op_name(static_cast<proto::Op>(i))) + " " +
           std::to_string(n);
  }
  return std::to_string(total) + " requests" + (ops.empty() ? "" : ": " + ops);
}

size_t FileServer::node_count() const { return m_nodes->size(); }

std::vector<std::pair<uint64_t, std::string>> FileServer::victims(size_t n) { return m_nodes->victims(n); }

}  // namespace mrc::headnode
