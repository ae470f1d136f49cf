// The migration link (mosix/migrate/link.h, docs/migration-link.md) over
// socketpairs: frames round trip; a catalogue of bad input - an unknown
// type, an oversized length, a stream cut mid-header and mid-payload, a
// silent peer - each refused naming its cause; the handshake with the
// right key, the wrong key and a peer that is not an endpoint; image
// frames carrying an image stream and refusing anything else inside it.
#include "mosix/migrate/link.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/le.h"

namespace mosix::migrate {
namespace {

constexpr std::string_view k_key = "unit-test-cluster-key-0123456789";

struct Pair {
  mrc::UniqueFd a, b;
};

Pair pair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  return {mrc::UniqueFd(sv[0]), mrc::UniqueFd(sv[1])};
}

std::vector<std::byte> bytes(std::string_view s) {
  auto p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

void raw(int fd, uint32_t type, uint32_t len, std::string_view payload = {}) {
  std::byte h[8];
  mrc::put_le<uint32_t>(h, type);
  mrc::put_le<uint32_t>(h + 4, len);
  ASSERT_TRUE(mrc::write_all(fd, h));
  ASSERT_TRUE(mrc::write_all(fd, bytes(payload)));
}

TEST(MigrationLink, FramesRoundTripInOrder) {
  auto p = pair();
  ASSERT_TRUE(send_text(p.a.get(), FrameType::stdout_data, "hello"));
  ASSERT_TRUE(send_u32(p.a.get(), FrameType::exit, 0x0b00));
  ASSERT_TRUE(send_frame(p.a.get(), FrameType::commit));
  auto f1 = recv_frame(p.b.get(), 1000);
  ASSERT_TRUE(f1) << f1.error().message;
  EXPECT_EQ(f1->type, FrameType::stdout_data);
  EXPECT_EQ(f1->text(), "hello");
  auto f2 = recv_frame(p.b.get(), 1000);
  ASSERT_TRUE(f2);
  EXPECT_EQ(f2->type, FrameType::exit);
  EXPECT_EQ(frame_u32(*f2).value(), 0x0b00u);
  auto f3 = recv_frame(p.b.get(), 1000);
  ASSERT_TRUE(f3);
  EXPECT_EQ(f3->type, FrameType::commit);
  EXPECT_TRUE(f3->payload.empty());
  EXPECT_FALSE(frame_u32(*f3));  // not 4 bytes
  // The home files' two (docs/migration-link.md section 5a).
  ASSERT_TRUE(send_frame(p.a.get(), FrameType::home_files));
  ASSERT_TRUE(send_text(p.a.get(), FrameType::file_port, std::string(34, 'x')));
  auto f4 = recv_frame(p.b.get(), 1000), f5 = recv_frame(p.b.get(), 1000);
  ASSERT_TRUE(f4 && f5);
  EXPECT_EQ(f4->type, FrameType::home_files);
  EXPECT_EQ(f5->type, FrameType::file_port);
  EXPECT_EQ(f5->payload.size(), 34u);
}

TEST(MigrationLink, RefusesAnUnknownType) {
  for (uint32_t type : {0u, 18u, 0xffffffffu}) {
    auto p = pair();
    raw(p.a.get(), type, 0);
    auto f = recv_frame(p.b.get(), 1000);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, EPROTO);
    EXPECT_NE(f.error().message.find("unknown frame type " + std::to_string(type)), std::string::npos)
        << f.error().message;
  }
}

TEST(MigrationLink, RefusesAnOversizedFrameBeforeReadingIt) {
  auto p = pair();
  raw(p.a.get(), static_cast<uint32_t>(FrameType::image), static_cast<uint32_t>(k_max_frame + 1));
  auto f = recv_frame(p.b.get(), 1000);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, EPROTO);
  EXPECT_NE(f.error().message.find("bytes (at most"), std::string::npos) << f.error().message;
}

TEST(MigrationLink, AStreamCutMidHeaderOrMidPayloadIsAClosedLink) {
  {
    auto p = pair();
    ASSERT_TRUE(mrc::write_all(p.a.get(), bytes("\x09\x00\x00")));
    p.a.reset();
    auto f = recv_frame(p.b.get(), 1000);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, ECONNRESET);
  }
  {
    auto p = pair();
    raw(p.a.get(), static_cast<uint32_t>(FrameType::stdout_data), 10, "abc");
    p.a.reset();
    auto f = recv_frame(p.b.get(), 1000);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, ECONNRESET);
    EXPECT_NE(f.error().message.find("the link closed"), std::string::npos);
  }
}

TEST(MigrationLink, ASilentPeerTimesOut) {
  auto p = pair();
  auto f = recv_frame(p.b.get(), 50);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ETIMEDOUT);
}

TEST(MigrationLink, HandshakeAcceptsTheClusterKeyOnly) {
  for (bool right : {true, false}) {
    auto p = pair();
    std::string key = right ? std::string(k_key) : std::string("another-cluster-key-0123456789ab");
    std::thread home([&] {
      auto r = connect_handshake(
          p.a.get(), [&](std::span<const std::byte> nonce) { return auth_tag(key, nonce); }, 1000);
      EXPECT_TRUE(r) << r.error().message;
    });
    auto r = accept_handshake(p.b.get(), k_key, 1000);
    home.join();
    if (right) {
      EXPECT_TRUE(r) << r.error().message;
    } else {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, EACCES);
      EXPECT_NE(r.error().message.find("not signed with the cluster key"), std::string::npos) << r.error().message;
    }
  }
}

TEST(MigrationLink, EveryNonceIsFresh) {
  std::vector<std::vector<std::byte>> seen;
  for (int i = 0; i < 2; ++i) {
    auto p = pair();
    std::thread guest([&] { (void)accept_handshake(p.b.get(), k_key, 200); });
    auto hello = recv_frame(p.a.get(), 1000);
    ASSERT_TRUE(hello);
    ASSERT_EQ(hello->payload.size(), k_hello_text.size() + k_nonce_bytes);
    seen.push_back(hello->payload);
    p.a.reset();
    guest.join();
  }
  EXPECT_NE(seen[0], seen[1]);
}

TEST(MigrationLink, HandshakeRefusesAPeerThatIsNoEndpoint) {
  auto p = pair();
  ASSERT_TRUE(send_text(p.b.get(), FrameType::hello, "SSH-2.0-OpenSSH_9.2\n"));
  auto r = connect_handshake(
      p.a.get(), [](std::span<const std::byte> n) { return auth_tag(k_key, n); }, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find("not a MOSIX migration endpoint"), std::string::npos) << r.error().message;
}

TEST(MigrationLink, ImageFramesCarryAStreamAndEndWithAnEmptyFrame) {
  auto p = pair();
  std::vector<std::byte> stream(3 * ImageFrameSink::k_image_piece + 12345);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<std::byte>(i * 7 + (i >> 13));
  std::thread sender([&] {
    ImageFrameSink sink(p.a.get());
    for (size_t at = 0; at < stream.size(); at += 100'000)
      ASSERT_TRUE(sink.write(std::span(stream).subspan(at, std::min<size_t>(100'000, stream.size() - at))));
    ASSERT_TRUE(sink.end());
    ASSERT_TRUE(send_frame(p.a.get(), FrameType::ready));  // after the image: not part of it
  });
  ImageFrameSource src(p.b.get(), 1000);
  std::vector<std::byte> got, buf(77'777);
  for (;;) {
    auto n = src.read(buf);
    ASSERT_TRUE(n) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n));
  }
  sender.join();
  EXPECT_EQ(got, stream);
  auto after = recv_frame(p.b.get(), 1000);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->type, FrameType::ready);
}

TEST(MigrationLink, ImageSourceRefusesOtherFramesAndPassesOnTheSendersWords) {
  {
    auto p = pair();
    ASSERT_TRUE(send_text(p.a.get(), FrameType::image, "abc"));
    ASSERT_TRUE(send_text(p.a.get(), FrameType::stdout_data, "x"));
    ImageFrameSource src(p.b.get(), 1000);
    std::vector<std::byte> buf(16);
    ASSERT_EQ(src.read(buf).value(), 3u);
    auto r = src.read(buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EPROTO);
    EXPECT_NE(r.error().message.find("in the middle of an image"), std::string::npos);
  }
  {
    auto p = pair();
    ASSERT_TRUE(send_text(p.a.get(), FrameType::error, "cannot move: fd 3 is a socket"));
    ImageFrameSource src(p.b.get(), 1000);
    std::vector<std::byte> buf(16);
    auto r = src.read(buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ECONNABORTED);
    EXPECT_NE(r.error().message.find("fd 3 is a socket"), std::string::npos);
  }
}

TEST(MigrationLink, ConnectRefusesABadAddressAndNamesAClosedPort) {
  auto bad = connect_tcp("not-an-address", 100);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
  auto closed = connect_tcp("127.0.0.1:1", 1000);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, ECONNREFUSED) << closed.error().message;
  EXPECT_NE(closed.error().message.find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace mosix::migrate
