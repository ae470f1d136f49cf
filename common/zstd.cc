// zstd one-shot helpers; the only file that includes <zstd.h>.
#include "common/zstd.h"

#include <zstd.h>

#include <memory>
#include <string>

namespace mrc {

std::optional<Bytes> zstd_compress_if_smaller(std::span<const std::byte> in, int level) {
  // One context per thread: creating one costs more than compressing 4 KiB.
  thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx* cctx = ctx.get();
  Bytes out(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(cctx, out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n) || n > in.size() - in.size() / 8) return std::nullopt;
  out.resize(n);
  return out;
}

Result<Bytes> zstd_decompress(std::span<const std::byte> in, size_t max_size) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    return fail(EPROTO, "zstd: corrupt frame or no content size");
  if (size > max_size)
    return fail(EPROTO, "zstd: frame declares " + std::to_string(size) + " bytes, limit " +
                            std::to_string(max_size));
  thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_DCtx* dctx = ctx.get();
  Bytes out(size);
  size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n) || n != size)
    return fail(EPROTO, std::string("zstd: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame"));
  return out;
}

}  // namespace mrc
