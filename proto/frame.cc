// Frame header codec and whole-frame encode/decode (docs/protocol.md §2).
#include "proto/frame.h"

#include <cstring>
#include <string>

#include "common/le.h"
#include "proto/messages.h"

namespace mrc::proto {

bool is_known_op(uint16_t op) { return op >= k_op_first && op <= k_op_last && op != 2; }
bool is_known_ctl(uint16_t op) { return op >= k_ctl_first && op <= k_ctl_last; }

namespace {
template <typename I>
void put(std::byte* p, I v) {
  put_le(p, v);
}
template <typename I>
I get(const std::byte* p) {
  return get_le<I>(p);
}
}  // namespace

std::array<std::byte, k_header_size> encode_header(const Header& h) {
  std::array<std::byte, k_header_size> raw{};
  put(raw.data(), h.length);
  raw[4] = static_cast<std::byte>(h.type);
  raw[5] = static_cast<std::byte>(h.flags);
  put(raw.data() + 6, h.op);
  put(raw.data() + 8, h.id);
  return raw;
}

Result<Header> decode_header(std::span<const std::byte, k_header_size> raw) {
  Header h;
  h.length = get<uint32_t>(raw.data());
  auto type = static_cast<uint8_t>(raw[4]);
  h.flags = static_cast<uint8_t>(raw[5]);
  h.op = get<uint16_t>(raw.data() + 6);
  h.id = get<uint64_t>(raw.data() + 8);
  if (h.length > k_max_payload)
    return fail(EPROTO, "frame of " + std::to_string(h.length) + " bytes exceeds the limit of " +
                            std::to_string(k_max_payload));
  if (type < 1 || type > 3) return fail(EPROTO, "unknown frame type " + std::to_string(type));
  h.type = static_cast<FrameType>(type);
  if (h.flags & ~k_flag_zstd) return fail(EPROTO, "unknown frame flags " + std::to_string(h.flags));
  bool known = h.type == FrameType::Control ? is_known_ctl(h.op) : is_known_op(h.op);
  if (!known) return fail(EPROTO, "unknown op " + std::to_string(h.op));
  return h;
}

Result<Frame> decode_frame(std::span<const std::byte> raw) {
  if (raw.size() < k_header_size)
    return fail(EPROTO, "truncated frame: " + std::to_string(raw.size()) + " bytes");
  auto h = decode_header(raw.first<k_header_size>());
  if (!h) return tl::unexpected(h.error());
  size_t rest = raw.size() - k_header_size;
  if (rest < h->length) return fail(EPROTO, "truncated frame payload");
  if (rest > h->length) return fail(EPROTO, "trailing bytes after frame");
  Frame f{h->type, h->op, h->id, {}};
  auto body = raw.subspan(k_header_size);
  if (h->flags & k_flag_zstd) {
    auto d = zstd_decompress(body, k_max_payload);
    if (!d) return tl::unexpected(d.error());
    f.payload = std::move(*d);
  } else {
    f.payload.assign(body.begin(), body.end());
  }
  return f;
}

Bytes encode_frame(const Frame& f, int zstd_level) {
  Header h{0, f.type, 0, f.op, f.id};
  std::optional<Bytes> packed;
  if (zstd_level > 0 && f.payload.size() >= k_min_compress)
    packed = zstd_compress_if_smaller(f.payload, zstd_level);
  const Bytes& body = packed ? *packed : f.payload;
  if (packed) h.flags |= k_flag_zstd;
  h.length = static_cast<uint32_t>(body.size());
  Bytes out(k_header_size + body.size());
  auto hdr = encode_header(h);
  std::memcpy(out.data(), hdr.data(), k_header_size);
  if (!body.empty()) std::memcpy(out.data() + k_header_size, body.data(), body.size());
  return out;
}

}  // namespace mrc::proto
