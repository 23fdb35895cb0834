// The one checksum of the format: XXH3-64 with seed 0 (FORMAT.md,
// "Checksums"), from Debian's libxxhash using its run-time dispatch to the
// widest vector unit the CPU has. All bits are identical on every CPU.
//
// Hash64 is a pure function, safe from any thread. A StreamingHash is a
// plain value: one thread at a time.

#ifndef EMBSTORE_FORMAT_CHECKSUM_H_
#define EMBSTORE_FORMAT_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace embstore {

uint64_t Hash64(const void* data, size_t size);
// A checksum as metadata records it: 16 lowercase hex digits.
std::string Hex64(uint64_t v);
// XXH3-128 (seed 0) as 32 lowercase hex digits, high half first (as
// xxhsum -H2 prints it): for ids, not for checking bytes.
std::string Hex128(const void* data, size_t size);

// Hashes bytes fed in pieces; Digest() equals Hash64 of their concatenation.
class StreamingHash {
 public:
  StreamingHash();
  ~StreamingHash();
  StreamingHash(StreamingHash&&) noexcept;
  StreamingHash& operator=(StreamingHash&&) noexcept;

  void Reset();
  void Update(const void* data, size_t size);
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_CHECKSUM_H_
