// The real UDP network on loopback: datagrams in and out with their
// sender's address, oversized ones cut so the Node counts them, bind
// errors as values, and two Nodes on real sockets learning each other.
#include "mosix/gossip/udp.h"

#include <gtest/gtest.h>
#include <poll.h>

#include "mosix/gossip/node.h"
#include "tests/unit/mosix/gossip/helpers.h"

namespace mosix::gossip {
namespace {

constexpr Address k_loopback_any_port{0x7F000001, 0};

/// Waits up to 2 s for `s` to be readable, then reads everything.
std::vector<std::pair<std::vector<std::byte>, Address>> drain(UdpSocket& s) {
  std::vector<std::pair<std::vector<std::byte>, Address>> got;
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return got;
  auto n = s.receive_all([&](std::span<const std::byte> b, const Address& from) {
    got.push_back({{b.begin(), b.end()}, from});
  });
  EXPECT_TRUE(n) << n.error().message;
  return got;
}

TEST(GossipUdp, SendsAndReceivesWithTheSendersAddress) {
  auto a = UdpSocket::bind(k_loopback_any_port, 1500);
  auto b = UdpSocket::bind(k_loopback_any_port, 1500);
  ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
  EXPECT_NE(a->local_address().port, 0);
  std::vector<std::byte> msg(300, std::byte{7});
  ASSERT_TRUE(a->send(b->local_address(), msg));
  auto got = drain(*b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, msg);
  EXPECT_EQ(got[0].second, a->local_address());
  EXPECT_EQ(*b->receive_all([](auto, auto) {}), 0u) << "nothing more waits";
}

TEST(GossipUdp, HandsOnOversizedDatagramsCutSoTheyAreCounted) {
  auto a = UdpSocket::bind(k_loopback_any_port, 100);
  auto b = UdpSocket::bind(k_loopback_any_port, 100);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->send(b->local_address(), std::vector<std::byte>(5000, std::byte{1})));
  auto got = drain(*b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first.size(), 101u) << "max + 1: longer than the Node accepts";
}

TEST(GossipUdp, ReportsBindErrors) {
  auto a = UdpSocket::bind(k_loopback_any_port, 100);
  ASSERT_TRUE(a);
  auto again = UdpSocket::bind(a->local_address(), 100);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EADDRINUSE);
  auto foreign = UdpSocket::bind({0xC0000201, 7000}, 100);  // 192.0.2.1: not ours
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, EADDRNOTAVAIL);
}

TEST(GossipUdp, TwoNodesLearnEachOtherOverRealSockets) {
  SystemClock clock;
  auto sa = UdpSocket::bind(k_loopback_any_port, k_default_max_packet_bytes);
  auto sb = UdpSocket::bind(k_loopback_any_port, k_default_max_packet_bytes);
  ASSERT_TRUE(sa && sb);
  Config ca = test::config(1, 1, {{2, sb->local_address(), 1}});
  ca.address = sa->local_address();
  Config cb = test::config(2, 1, {{1, sa->local_address(), 1}});
  cb.address = sb->local_address();
  auto a = Node::create(ca, clock, *sa);
  auto b = Node::create(cb, clock, *sb);
  ASSERT_TRUE(a && b);
  Resources r;
  r.load = 123;
  (*b)->set_local(r);
  for (int i = 0; i < 3; ++i) {
    (*a)->step();
    (*b)->step();
    for (auto [s, n] : {std::pair{&*sa, a->get()}, std::pair{&*sb, b->get()}})
      for (auto& [bytes, from] : drain(*s)) n->receive(bytes, from);
  }
  auto snap = (*a)->snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[1].id, 2u);
  EXPECT_EQ(snap[1].resources.load, 123u);
  EXPECT_EQ(snap[1].address, sb->local_address());
  EXPECT_EQ((*b)->snapshot().size(), 2u);
  EXPECT_EQ((*a)->stats().drops_total(), 0u);
}

}  // namespace
}  // namespace mosix::gossip
