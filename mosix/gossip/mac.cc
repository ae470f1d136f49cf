// HMAC-SHA256 through OpenSSL 3's EVP_MAC (one keyed context, re-initialised
// per packet), and the simulation's constant key tag.
#include "mosix/gossip/mac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <cassert>
#include <cstring>

namespace mosix::gossip {

struct Mac::Impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;  // keyed once; EVP_MAC_init(ctx, NULL, ...) reuses the key

  ~Impl() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

Mac::Mac(MacKind kind, std::unique_ptr<Impl> impl) : m_kind(kind), m_impl(std::move(impl)) {}
Mac::Mac(Mac&&) noexcept = default;
Mac& Mac::operator=(Mac&&) noexcept = default;
Mac::~Mac() = default;

mrc::Result<Mac> Mac::create(MacKind kind, std::string_view key) {
  if (key.size() < k_min_key_bytes)
    return mrc::fail(EINVAL, "gossip key of " + std::to_string(key.size()) + " bytes is shorter than " +
                                 std::to_string(k_min_key_bytes));
  if (kind == MacKind::sim_key_tag) {
    Mac m(kind, nullptr);
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(),
           reinterpret_cast<unsigned char*>(m.m_key_tag.data()));
    return m;
  }
  auto impl = std::make_unique<Impl>();
  impl->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (impl->mac) impl->ctx = EVP_MAC_CTX_new(impl->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  if (!impl->ctx ||
      EVP_MAC_init(impl->ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1)
    return mrc::fail(EIO, "OpenSSL cannot set up HMAC-SHA256");
  return Mac(kind, std::move(impl));
}

MacTag Mac::sign(std::span<const std::byte> data) {
  MacTag tag{};
  if (m_kind == MacKind::sim_key_tag) return m_key_tag;
  size_t len = 0;
  auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  // Cannot fail once the context was keyed in create() (a programmer error otherwise).
  [[maybe_unused]] bool ok =
      EVP_MAC_init(m_impl->ctx, nullptr, 0, nullptr) == 1 && EVP_MAC_update(m_impl->ctx, bytes, data.size()) == 1 &&
      EVP_MAC_final(m_impl->ctx, reinterpret_cast<unsigned char*>(tag.data()), &len, tag.size()) == 1;
  assert(ok && len == k_mac_bytes);
  return tag;
}

bool Mac::verify(std::span<const std::byte> data, std::span<const std::byte, k_mac_bytes> tag) {
  MacTag want = sign(data);
  return CRYPTO_memcmp(want.data(), tag.data(), k_mac_bytes) == 0;
}

}  // namespace mosix::gossip
