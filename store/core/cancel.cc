#include "store/core/cancel.h"

#include <signal.h>

#include <algorithm>

#include "format/checksum.h"

namespace embstore {

Status CancelToken::Error() const {
  switch (signal()) {
    case 0: return Status::Cancelled("cancelled");
    case SIGINT: return Status::Cancelled("interrupted by SIGINT");
    case SIGTERM: return Status::Cancelled("interrupted by SIGTERM");
    default: return Status::Cancelled("interrupted by signal " + std::to_string(signal()));
  }
}

std::optional<uint64_t> Hash64Cancellable(const uint8_t* data, uint64_t size, const CancelToken* cancel) {
  constexpr uint64_t kPiece = uint64_t{64} << 20;
  if (size <= kPiece) return Hash64(data, size);
  StreamingHash hash;
  for (uint64_t at = 0; at < size; at += kPiece) {
    if (IsCancelled(cancel)) return std::nullopt;
    hash.Update(data + at, std::min(kPiece, size - at));
  }
  return hash.Digest();
}

}  // namespace embstore
