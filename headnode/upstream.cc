// Upstream: the subscription socket and the invalidation relay.
#include "headnode/upstream.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/log.h"
#include "proto/codec.h"

namespace mrc::headnode {

Result<std::unique_ptr<Upstream>> Upstream::connect(Coherence& coh, const std::string& address) {
  if (address.size() < 2 || address[0] != '@' || address.size() > sizeof(sockaddr_un::sun_path))
    return fail(EINVAL, "bad upstream address " + address);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return fail_errno("socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, address.data() + 1, address.size() - 1);
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return fail_errno("connect " + address);
  int fd = s.get();
  auto conn = std::make_unique<proto::Connection>(UniqueFd(::dup(fd)), std::move(s), 0);
  std::unique_ptr<Upstream> u(new Upstream(coh, std::move(conn)));
  u->m_conn->start({.on_request = [p = u.get()](proto::Op op, uint64_t id, Bytes b) { p->on_request(op, id, std::move(b)); },
                    .on_control =
                        [p = u.get()](proto::Ctl op, Bytes b) {
                          if (op != proto::Ctl::UpstreamHello) return;
                          if (auto m = proto::decode<proto::UpstreamHelloMsg>(b)) p->m_dev = m->dev;
                        },
                    .on_closed = {}});
  return u;
}

Upstream::Upstream(Coherence& coh, std::unique_ptr<proto::Connection> conn) : m_coh(coh), m_conn(std::move(conn)) {}

Upstream::~Upstream() {
  m_conn->close("file service going away");
  m_conn->join();
}

void Upstream::on_request(proto::Op op, uint64_t id, Bytes payload) {
  if (op != proto::Op::Invalidate) return m_conn->reply(op, id, ENOSYS, {});
  auto req = proto::decode<proto::InvalidateReq>(payload);
  dev_t dev = static_cast<dev_t>(m_dev.load());
  if (!req || dev == 0) return m_conn->reply(op, id, EPROTO, {});
  // The mount's nodeids are the inode numbers our nodes saw there.
  std::vector<Change> changes;
  for (const auto& i : req->items) {
    if (i.kind > proto::k_inval_kind_last) return m_conn->reply(op, id, EPROTO, {});
    if (i.kind == static_cast<uint8_t>(proto::InvalKind::Forget)) continue;  // the mount's own business
    if (i.kind == static_cast<uint8_t>(proto::InvalKind::Recall)) {
      // Someone up there wants the file: what our clients buffered goes first.
      m_coh.recall(dev, static_cast<ino_t>(i.nodeid));
      continue;
    }
    changes.push_back(Change{static_cast<proto::InvalKind>(i.kind), dev, static_cast<ino_t>(i.nodeid), i.name});
  }
  // On the reader thread: invalidations from one mount are applied in
  // order, and the acks of our own clients come in on their connections.
  m_coh.changed({}, changes);
  m_conn->reply(op, id, 0, {});
}

}  // namespace mrc::headnode
