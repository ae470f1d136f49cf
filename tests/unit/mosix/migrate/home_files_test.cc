// The guest end's file link (mosix/migrate/home_files.h) up to the point
// where the namespace would be entered: the port and token it offers on
// the migration link, a connection with the wrong token or none at all,
// and a file service that never sends the JobSpec - each refused naming
// its cause, over real TCP on loopback. The mounts themselves are the
// e2e's (tests/e2e/test_mosix_migrate.py).
#include "mosix/migrate/home_files.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>

#include "common/fd.h"
#include "common/le.h"
#include "mosix/migrate/link.h"

namespace mosix::migrate {
namespace {

/// A connected TCP pair on 127.0.0.1: (home end, guest end).
std::pair<mrc::UniqueFd, mrc::UniqueFd> tcp_pair() {
  mrc::UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(l.get(), 1), 0);
  EXPECT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto home = connect_tcp("127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 1000);
  EXPECT_TRUE(home);
  mrc::UniqueFd guest(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return {mrc::UniqueFd(home.value_or(-1)), std::move(guest)};
}

/// The file_port frame's port and token, read on the home end.
std::pair<uint16_t, std::vector<std::byte>> read_port(int home) {
  auto f = recv_frame(home, 5000);
  EXPECT_TRUE(f) << (f ? "" : f.error().message);
  if (!f) return {};
  EXPECT_EQ(f->type, FrameType::file_port);
  EXPECT_EQ(f->payload.size(), 34u);
  if (f->payload.size() != 34) return {};
  uint16_t port = mrc::get_le<uint16_t>(f->payload.data());
  return {port, std::vector<std::byte>(f->payload.begin() + 2, f->payload.end())};
}

TEST(HomeFiles, OffersAFreshPortAndTokenAndRefusesTheWrongToken) {
  auto [home, guest] = tcp_pair();
  auto opened = std::async(std::launch::async, [g = guest.get()] { return HomeFiles::open(g, 3000); });
  auto [port, token] = read_port(home.get());
  ASSERT_NE(port, 0);
  ASSERT_EQ(token.size(), 32u);
  // A second offer would give another token: this one is random, not zero.
  EXPECT_NE(token, std::vector<std::byte>(32));
  auto files = connect_tcp("127.0.0.1:" + std::to_string(port), 1000);
  ASSERT_TRUE(files) << files.error().message;
  mrc::UniqueFd f(*files);
  token[7] ^= std::byte{1};
  ASSERT_TRUE(mrc::write_all(f.get(), token));
  auto r = opened.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EACCES);
  EXPECT_NE(r.error().message.find("token"), std::string::npos) << r.error().message;
}

TEST(HomeFiles, NoConnectionWithinTheTimeoutIsETIMEDOUT) {
  auto [home, guest] = tcp_pair();
  auto opened = std::async(std::launch::async, [g = guest.get()] { return HomeFiles::open(g, 300); });
  auto [port, token] = read_port(home.get());
  ASSERT_NE(port, 0);
  auto r = opened.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_NE(r.error().message.find("the file link"), std::string::npos) << r.error().message;
}

TEST(HomeFiles, AServiceThatSendsNoJobSpecIsETIMEDOUTAndOneThatClosesIsNamed) {
  for (bool close_it : {false, true}) {
    auto [home, guest] = tcp_pair();
    auto opened = std::async(std::launch::async, [g = guest.get()] { return HomeFiles::open(g, 400); });
    auto [port, token] = read_port(home.get());
    auto files = connect_tcp("127.0.0.1:" + std::to_string(port), 1000);
    ASSERT_TRUE(files) << files.error().message;
    mrc::UniqueFd f(*files);
    ASSERT_TRUE(mrc::write_all(f.get(), token));
    if (close_it) f.reset();
    auto r = opened.get();
    ASSERT_FALSE(r);
    if (close_it) {
      EXPECT_EQ(r.error().code, ECONNABORTED) << r.error().message;
      EXPECT_NE(r.error().message.find("file service"), std::string::npos) << r.error().message;
    } else {
      EXPECT_EQ(r.error().code, ETIMEDOUT) << r.error().message;
    }
  }
}

}  // namespace
}  // namespace mosix::migrate
