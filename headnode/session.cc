// Session: a FileServer + Dispatcher on one Connection, joined to the
// shared Coherence through a Sink that sends Invalidate requests.
#include "headnode/session.h"

#include <atomic>

#include "proto/codec.h"

namespace mrc::headnode {

/// Invalidations as Invalidate requests on the session's Connection; the
/// reply is the acknowledgement.
class Session::ConnSink : public Sink {
 public:
  ConnSink(proto::Connection& conn, std::function<void(const std::string&)> on_revoked)
      : m_conn(conn), m_on_revoked(std::move(on_revoked)) {}

  std::function<bool(std::chrono::steady_clock::time_point)> send(
      const proto::InvalidateReq& req) override {
    auto call = m_conn.start_call(proto::Op::Invalidate, proto::encode(req));
    return [this, call](std::chrono::steady_clock::time_point deadline) {
      auto r = m_conn.await(*call, deadline);
      // A closed connection counts as acknowledged: that client is gone.
      return r || r.error().code != ETIMEDOUT;
    };
  }

  void revoke(const std::string& why) override {
    if (m_revoked.exchange(true)) return;
    if (m_on_revoked) m_on_revoked(why);
    m_conn.close(why);
  }

 private:
  proto::Connection& m_conn;
  std::function<void(const std::string&)> m_on_revoked;
  std::atomic<bool> m_revoked{false};
};

Result<std::unique_ptr<Session>> Session::create(Coherence& coh, proto::Connection& conn,
                                                 const std::vector<proto::ExportSpec>& exports,
                                                 std::vector<UniqueFd> roots, Options opts) {
  std::unique_ptr<Session> s(new Session());
  s->m_coh = &coh;
  s->m_conn = &conn;
  s->m_sink = std::make_unique<ConnSink>(conn, std::move(opts.on_revoked));
  s->m_id = coh.join(*s->m_sink, opts.name, opts.lease);
  Membership m{&coh, s->m_id, opts.lease, opts.write_leases};
  auto fs = roots.empty() ? FileServer::create(exports, m) : FileServer::create(exports, std::move(roots), m);
  if (!fs) return tl::unexpected(fs.error());  // ~Session leaves the Coherence
  s->m_fs = std::move(*fs);
  s->m_disp = std::make_unique<Dispatcher>(*s->m_fs, conn, opts.threads);
  return s;
}

Session::~Session() {
  m_disp.reset();
  m_fs.reset();
  if (m_coh && m_id) m_coh->leave(m_id);
}

void Session::on_request(proto::Op op, uint64_t id, Bytes payload) {
  m_disp->on_request(op, id, std::move(payload));
}

void Session::on_forget(std::span<const std::byte> payload) { m_disp->on_forget(payload); }

void Session::hint_forget(size_t n) {
  auto victims = m_fs->victims(n);
  if (victims.empty()) return;
  proto::InvalidateReq req;
  for (auto& [parent, name] : victims)
    req.items.push_back(proto::InvalItem{static_cast<uint8_t>(proto::InvalKind::Forget), parent, std::move(name)});
  (void)m_conn->start_call(proto::Op::Invalidate, proto::encode(req));  // a hint: the reply is not awaited
}

}  // namespace mrc::headnode
