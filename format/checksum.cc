#include "format/checksum.h"

// The state struct is public only under XXH_STATIC_LINKING_ONLY.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include <cstdio>
#include <new>

namespace embstore {

// Debian's libxxhash exports the *_dispatch entry points, which pick the
// SSE2/AVX2/AVX-512 code path once at run time; the scalar XXH3_64bits would
// cap verify at SSE2 speed. The value is the same on every path.

uint64_t Hash64(const void* data, size_t size) {
  return XXH3_64bits_dispatch(data, size);
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Hex128(const void* data, size_t size) {
  const XXH128_hash_t h = XXH3_128bits(data, size);
  return Hex64(h.high64) + Hex64(h.low64);
}

struct StreamingHash::State {
  XXH3_state_t s;
};

StreamingHash::StreamingHash() : state_(std::make_unique<State>()) { Reset(); }
StreamingHash::~StreamingHash() = default;
StreamingHash::StreamingHash(StreamingHash&&) noexcept = default;
StreamingHash& StreamingHash::operator=(StreamingHash&&) noexcept = default;

void StreamingHash::Reset() { XXH3_64bits_reset(&state_->s); }

void StreamingHash::Update(const void* data, size_t size) {
  XXH3_64bits_update_dispatch(&state_->s, data, size);
}

uint64_t StreamingHash::Digest() const { return XXH3_64bits_digest(&state_->s); }

}  // namespace embstore
