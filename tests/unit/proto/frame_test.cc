// Frame layer tests (docs/protocol.md §2): header layout, the limits and
// validity checks applied before any allocation, whole-frame truncation and
// trailing bytes, zstd payloads (corrupt, over the limit) and the rule for
// when a payload is sent compressed.
#include "proto/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "proto/messages.h"
#include "tests/unit/proto/alloc_probe.h"

namespace mrc::proto {
namespace {

using test::AllocProbe;

std::array<std::byte, k_header_size> raw_header(uint32_t length, uint8_t type, uint8_t flags, uint16_t op,
                                                uint64_t id) {
  std::array<std::byte, k_header_size> h{};
  for (int i = 0; i < 4; ++i) h[i] = static_cast<std::byte>(length >> (8 * i));
  h[4] = static_cast<std::byte>(type);
  h[5] = static_cast<std::byte>(flags);
  for (int i = 0; i < 2; ++i) h[6 + i] = static_cast<std::byte>(op >> (8 * i));
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<std::byte>(id >> (8 * i));
  return h;
}

Bytes frame_bytes(const std::array<std::byte, k_header_size>& h, const Bytes& body) {
  Bytes out(h.begin(), h.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes text(size_t n) {
  std::string line = "the quick brown fox jumps over the lazy dog 0123456789\n";
  Bytes out;
  while (out.size() < n) out.push_back(static_cast<std::byte>(line[out.size() % line.size()]));
  return out;
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

void expect_eproto(const Result<Header>& r, const std::string& needle) {
  ASSERT_FALSE(r) << "accepted a header that must be rejected (" << needle << ")";
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

void expect_eproto(const Result<Frame>& r, const std::string& needle) {
  ASSERT_FALSE(r) << "accepted a frame that must be rejected (" << needle << ")";
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

// ---- header layout ---------------------------------------------------------

TEST(FrameHeader, EncodesLittleEndianAtDocumentedOffsets) {
  Header h{0x04030201, FrameType::Reply, k_flag_zstd, 0x0a09, 0x1211100f0e0d0c0b};
  auto raw = encode_header(h);
  EXPECT_EQ(raw, raw_header(0x04030201, 2, 1, 0x0a09, 0x1211100f0e0d0c0b));
}

TEST(FrameHeader, DecodesWhatItEncodes) {
  Header h{123, FrameType::Control, 0, static_cast<uint16_t>(Ctl::StreamAck), 0};
  auto back = decode_header(encode_header(h));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->length, 123u);
  EXPECT_EQ(back->type, FrameType::Control);
  EXPECT_EQ(back->flags, 0);
  EXPECT_EQ(back->op, static_cast<uint16_t>(Ctl::StreamAck));
  EXPECT_EQ(back->id, 0u);
}

TEST(FrameHeader, AcceptsLengthExactlyAtMax) {
  auto h = decode_header(raw_header(k_max_payload, 1, 0, 1, 7));
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->length, k_max_payload);
}

TEST(FrameHeader, RejectsFrameLongerThanMax) {
  expect_eproto(decode_header(raw_header(k_max_payload + 1, 1, 0, 1, 7)), "exceeds the limit");
  expect_eproto(decode_header(raw_header(0xffffffff, 1, 0, 1, 7)), "exceeds the limit");
}

TEST(FrameHeader, RejectsOversizedLengthBeforeLookingForThePayload) {
  // Only the 16 header bytes: a decoder that allocated or waited for the
  // announced 4 GiB would report truncation (or run out of memory) instead.
  auto raw = raw_header(0xffffffff, 1, 0, 1, 7);
  AllocProbe probe(1 << 20);
  expect_eproto(decode_frame(raw), "exceeds the limit");
  EXPECT_LT(probe.largest(), 4096u);
}

TEST(FrameHeader, RejectsUnknownFrameType) {
  for (int t : {0, 4, 0x7f, 0xff}) expect_eproto(decode_header(raw_header(0, t, 0, 1, 1)), "unknown frame type");
}

TEST(FrameHeader, RejectsEveryUnknownFlagBit) {
  for (int bit = 1; bit < 8; ++bit)
    expect_eproto(decode_header(raw_header(0, 1, static_cast<uint8_t>(1 << bit), 1, 1)), "unknown frame flags");
  expect_eproto(decode_header(raw_header(0, 1, 0xff, 1, 1)), "unknown frame flags");
}

TEST(FrameHeader, RejectsUnknownRequestAndReplyOps) {
  for (uint8_t type : {1, 2})
    for (int op : {0, k_op_last + 1, 99, static_cast<int>(Ctl::JobSpec), 0xffff})
      expect_eproto(decode_header(raw_header(0, type, 0, static_cast<uint16_t>(op), 1)), "unknown op");
}

TEST(FrameHeader, RejectsRetiredOpTwoForRequestAndReply) {
  expect_eproto(decode_header(raw_header(0, 1, 0, 2, 1)), "unknown op 2");
  expect_eproto(decode_header(raw_header(0, 2, 0, 2, 1)), "unknown op 2");
}

TEST(FrameHeader, RejectsUnknownControlOps) {
  for (int op : {0, 1, static_cast<int>(Op::Release), k_ctl_first - 1, k_ctl_last + 1, 0xffff})
    expect_eproto(decode_header(raw_header(0, 3, 0, static_cast<uint16_t>(op), 0)), "unknown op");
}

TEST(FrameHeader, AcceptsEveryKnownOpOnlyWithItsFrameTypes) {
  for (int op = k_op_first; op <= k_op_last; ++op) {
    if (op == 2) continue;
    EXPECT_TRUE(decode_header(raw_header(0, 1, 0, static_cast<uint16_t>(op), 1))) << "request op " << op;
    EXPECT_TRUE(decode_header(raw_header(0, 2, 0, static_cast<uint16_t>(op), 1))) << "reply op " << op;
    EXPECT_FALSE(decode_header(raw_header(0, 3, 0, static_cast<uint16_t>(op), 0))) << "control op " << op;
  }
  for (int op = k_ctl_first; op <= k_ctl_last; ++op) {
    EXPECT_TRUE(decode_header(raw_header(0, 3, 0, static_cast<uint16_t>(op), 0))) << "control op " << op;
    EXPECT_FALSE(decode_header(raw_header(0, 1, 0, static_cast<uint16_t>(op), 1))) << "request op " << op;
  }
}

// ---- whole frames ------------------------------------------------------------

TEST(FrameDecode, RoundTripsTypeOpIdAndPayload) {
  Frame f{FrameType::Request, static_cast<uint16_t>(Op::Write), 0xfedcba9876543210, text(100)};
  Bytes wire = encode_frame(f, 0);
  ASSERT_EQ(wire.size(), k_header_size + 100);
  auto back = decode_frame(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->type, f.type);
  EXPECT_EQ(back->op, f.op);
  EXPECT_EQ(back->id, f.id);
  EXPECT_EQ(back->payload, f.payload);
}

TEST(FrameDecode, AcceptsEmptyPayload) {
  Bytes wire = encode_frame(Frame{FrameType::Control, static_cast<uint16_t>(Ctl::StreamClose), 0, {}}, 1);
  EXPECT_EQ(wire.size(), k_header_size);
  auto back = decode_frame(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back->payload.empty());
}

TEST(FrameDecode, RejectsFrameTruncatedAtEveryCutPoint) {
  for (int level : {0, 1}) {
    Bytes wire = encode_frame(Frame{FrameType::Reply, 9, 5, text(2000)}, level);
    for (size_t cut = 0; cut < wire.size(); ++cut)
      expect_eproto(decode_frame(std::span(wire).first(cut)), "truncated");
  }
}

TEST(FrameDecode, RejectsTrailingBytesAfterFrame) {
  Bytes wire = encode_frame(Frame{FrameType::Reply, 9, 5, text(10)}, 0);
  wire.push_back(std::byte{0});
  expect_eproto(decode_frame(wire), "trailing bytes");
  Bytes two = encode_frame(Frame{FrameType::Reply, 9, 5, {}}, 0);
  Bytes second = two;
  two.insert(two.end(), second.begin(), second.end());
  expect_eproto(decode_frame(two), "trailing bytes");
}

TEST(FrameDecode, RejectsCorruptZstdPayload) {
  Bytes wire = encode_frame(Frame{FrameType::Request, 9, 5, text(64 * 1024)}, 1);
  ASSERT_EQ(static_cast<uint8_t>(wire[5]) & k_flag_zstd, k_flag_zstd);
  // Garbage in the middle of the compressed blocks.
  Bytes mid = wire;
  for (size_t i = k_header_size + 20; i < mid.size() - 4; i += 7) mid[i] ^= std::byte{0x5a};
  expect_eproto(decode_frame(mid), "zstd");
  // Not a zstd frame at all, and an empty body with the flag set.
  expect_eproto(decode_frame(frame_bytes(raw_header(8, 1, k_flag_zstd, 9, 5), text(8))), "zstd");
  expect_eproto(decode_frame(frame_bytes(raw_header(0, 1, k_flag_zstd, 9, 5), {})), "zstd");
  // Cut short inside the compressed body (header length adjusted to match).
  Bytes body(wire.begin() + k_header_size, wire.end() - 10);
  expect_eproto(decode_frame(frame_bytes(raw_header(static_cast<uint32_t>(body.size()), 1, k_flag_zstd, 9, 5), body)),
                "zstd");
}

TEST(FrameDecode, RejectsZstdFrameDeclaringMoreThanTheLimitBeforeAllocating) {
  Bytes zeros(k_max_payload + 1);
  auto packed = zstd_compress_if_smaller(zeros, 1);
  ASSERT_TRUE(packed);
  ASSERT_LT(packed->size(), k_max_payload);
  Bytes wire = frame_bytes(raw_header(static_cast<uint32_t>(packed->size()), 1, k_flag_zstd, 10, 5), *packed);
  AllocProbe probe;
  expect_eproto(decode_frame(wire), "declares");
  EXPECT_LT(probe.largest(), k_max_payload) << "allocated the declared size before refusing it";
}

TEST(FrameDecode, AcceptsZstdFrameDeclaringExactlyTheLimit) {
  Bytes zeros(k_max_payload);
  auto packed = zstd_compress_if_smaller(zeros, 1);
  ASSERT_TRUE(packed);
  auto back = decode_frame(frame_bytes(raw_header(static_cast<uint32_t>(packed->size()), 1, k_flag_zstd, 10, 5), *packed));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->payload, zeros);
}

// ---- when payloads are compressed -----------------------------------------------

TEST(FrameCompression, CompressiblePayloadIsSentCompressedAndRoundTrips) {
  Frame f{FrameType::Reply, static_cast<uint16_t>(Op::Read), 77, text(256 * 1024)};
  Bytes wire = encode_frame(f, 1);
  auto h = decode_header(std::span(wire).first<k_header_size>());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->flags, k_flag_zstd);
  EXPECT_LT(h->length, f.payload.size() / 4);
  EXPECT_EQ(wire.size(), k_header_size + h->length);
  auto back = decode_frame(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->payload, f.payload);
}

TEST(FrameCompression, RandomPayloadIsSentUncompressed) {
  Frame f{FrameType::Reply, static_cast<uint16_t>(Op::Read), 77, random_bytes(256 * 1024, 1)};
  Bytes wire = encode_frame(f, 1);
  auto h = decode_header(std::span(wire).first<k_header_size>());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->flags, 0);
  EXPECT_EQ(h->length, f.payload.size());
  auto back = decode_frame(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->payload, f.payload);
}

TEST(FrameCompression, PayloadBelowMinimumIsNeverCompressed) {
  Bytes wire = encode_frame(Frame{FrameType::Reply, 9, 1, Bytes(k_min_compress - 1)}, 1);
  EXPECT_EQ(static_cast<uint8_t>(wire[5]), 0);
  EXPECT_EQ(wire.size(), k_header_size + k_min_compress - 1);
  Bytes at_min = encode_frame(Frame{FrameType::Reply, 9, 1, Bytes(k_min_compress)}, 1);
  EXPECT_EQ(static_cast<uint8_t>(at_min[5]), k_flag_zstd) << "512 zero bytes compress well; the minimum is inclusive";
}

TEST(FrameCompression, LevelZeroNeverCompresses) {
  Bytes wire = encode_frame(Frame{FrameType::Reply, 9, 1, text(64 * 1024)}, 0);
  EXPECT_EQ(static_cast<uint8_t>(wire[5]), 0);
  EXPECT_EQ(wire.size(), k_header_size + 64 * 1024);
}

TEST(FrameCompression, PayloadSavingLessThanAnEighthIsSentUncompressed) {
  // 15/16 random bytes: even if the text sixteenth vanished, the saving
  // stays under the 1/8 that compression must earn.
  Bytes p = random_bytes(60 * 1024, 2);
  Bytes t = text(4 * 1024);
  p.insert(p.end(), t.begin(), t.end());
  Bytes wire = encode_frame(Frame{FrameType::Reply, 9, 1, p}, 1);
  EXPECT_EQ(static_cast<uint8_t>(wire[5]), 0);
  EXPECT_EQ(wire.size(), k_header_size + p.size());
}

}  // namespace
}  // namespace mrc::proto
