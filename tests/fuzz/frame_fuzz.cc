// libFuzzer target for the wire decoders (docs/protocol.md §1–5): a whole
// frame, every message struct and the handshake line. The encoding is
// canonical, so whatever decodes must re-encode to the very same bytes.
// Not a Connection test (that needs threads and sockets).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/messages.h"

namespace {

using namespace mrc::proto;

template <typename M>
void round_trip(std::span<const std::byte> in) {
  auto m = decode<M>(in);
  if (!m) return;
  mrc::Bytes again = encode(*m);
  if (again.size() != in.size() || !std::equal(again.begin(), again.end(), in.begin())) std::abort();
}

template <typename... M>
void every_message(std::span<const std::byte> in) {
  (round_trip<M>(in), ...);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  // A whole frame; an uncompressed one must re-encode byte for byte.
  if (auto f = decode_frame(in); f && size > 5 && (data[5] & k_flag_zstd) == 0) {
    mrc::Bytes again = encode_frame(*f, 0);
    if (again.size() != size || !std::equal(again.begin(), again.end(), in.begin())) std::abort();
  }

  // Every payload struct, on the same bytes.
  every_message<Attr, Entry, Empty, NodeReq, NameReq, FhReq, SetattrReq, FhRep, ReaddirReq, DirEntry,
                ReaddirRep, OpenReq, ReadReq, DataRep, WriteReq, WriteRep, CreateReq, CreateRep, MknodReq,
                RenameReq, SymlinkReq, ReadlinkRep, LinkReq, StatfsRep, FsyncReq, ExportSpec, JobSpec,
                SignalMsg, WinSizeMsg, StreamDataMsg, StreamCloseMsg, StreamAckMsg, JobExitMsg, FatalMsg,
                ForgetItem, ForgetMsg, JobStartedMsg>(in);

  // The handshake line (what a login shell might print instead).
  if (size <= 4 * mrc::proto::k_max_handshake) {
    auto caps = parse_handshake(std::string(reinterpret_cast<const char*>(data), size));
    (void)caps;
  }
  return 0;
}
