// Dispatcher over a real proto::Connection pair on a socketpair: many
// client threads call concurrently; forgets travel as control messages.
#include "tests/unit/headnode/fileserver_fixture.h"

namespace mrc::headnode {
namespace {

TEST_F(FileServerTest, DispatcherServesConcurrentCallsOverAConnection) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto server = std::make_unique<proto::Connection>(UniqueFd(sv[0]), UniqueFd(::dup(sv[0])), 1);
  auto client = std::make_unique<proto::Connection>(UniqueFd(sv[1]), UniqueFd(::dup(sv[1])), 1);
  auto dispatcher = std::make_unique<Dispatcher>(*m_fs, *server, 4);
  std::promise<void> server_closed;
  server->start({.on_request = [&](Op op, uint64_t id,
                                   Bytes p) { dispatcher->on_request(op, id, std::move(p)); },
                 .on_control =
                     [&](proto::Ctl op, Bytes p) {
                       if (op == proto::Ctl::Forget) dispatcher->on_forget(p);
                     },
                 .on_closed = [&](const std::string&) { server_closed.set_value(); }});
  client->start({});
  const size_t base = m_fs->node_count();

  constexpr int k_threads = 6, k_files = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      auto check = [&](bool ok) {
        if (!ok) failures++;
      };
      for (int i = 0; i < k_files; ++i) {
        std::string name = "t" + std::to_string(t) + "_" + std::to_string(i);
        std::string data(1000 + 97 * i, static_cast<char>('a' + t));  // some compressible
        auto c = client->call_as<proto::CreateRep>(
            Op::Create, proto::CreateReq{m_e0, name, 0644, O_RDWR | O_CREAT | O_EXCL}, 5s);
        if (!c) {
          failures++;
          continue;
        }
        auto w = client->call_as<proto::WriteRep>(Op::Write,
                                                  proto::WriteReq{c->fh, 0, to_bytes(data)}, 5s);
        check(w && w->written == data.size());
        auto r = client->call_as<proto::DataRep>(Op::Read, proto::ReadReq{c->fh, 0, 1 << 20}, 5s);
        check(r && to_string(r->data) == data);
        auto g = client->call_as<proto::Attr>(Op::Getattr, proto::NodeReq{c->entry.nodeid}, 5s);
        check(g && g->size == data.size());
        check(client->call_as<proto::Empty>(Op::Release, proto::FhReq{c->fh}, 5s).has_value());
        check(client->send(proto::Ctl::Forget, proto::ForgetMsg{{{c->entry.nodeid, 1}}}));
      }
      // Errors travel as errno.
      auto bad = client->call_as<proto::Entry>(Op::Lookup, proto::NameReq{m_e0, ".."}, 5s);
      check(!bad && bad.error().code == EINVAL);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < k_threads; ++t)
    EXPECT_EQ(read_file(m_rw + "/t" + std::to_string(t) + "_3").size(), 1000u + 97 * 3);

  // Forgets are control messages, in order after the replies: a final
  // round trip makes sure the server has applied them.
  ASSERT_TRUE(client->call_as<proto::Attr>(Op::Getattr, proto::NodeReq{m_e0}, 5s));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (m_fs->node_count() != base && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(m_fs->node_count(), base);

  // Shut down in an order where no callback outlives its target.
  client.reset();  // closes its end: the server reads EOF
  ASSERT_EQ(server_closed.get_future().wait_for(5s), std::future_status::ready);
  dispatcher.reset();
  server.reset();
}

}  // namespace
}  // namespace mrc::headnode
