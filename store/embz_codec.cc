#include "store/embz_codec.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "format/endian.h"

namespace embstore {

namespace {

// rANS with a 32-bit state and byte-wise renormalization (Duda's asymmetric
// numeral systems, in the form of Giesen's public-domain rans_byte), 12-bit
// probabilities. Section layout (FORMAT.md, ".embz frames"): u16 number of
// symbols present, then (u8 symbol, u16 frequency) for each in increasing
// symbol order, the u32 final state, then the bytes the decoder reads forwards.
constexpr uint32_t kScaleBits = 12;
constexpr uint32_t kTotal = 1u << kScaleBits;
constexpr uint32_t kLow = 1u << 23;  // the state lives in [kLow, kLow << 8)

// Frequencies summing to kTotal, every symbol that occurs at least 1.
void Normalize(const uint64_t* count, uint64_t n, uint32_t* freq) {
  int64_t sum = 0;
  int top = 0;
  for (int s = 0; s < 256; ++s) {
    freq[s] = count[s] ? std::max<uint32_t>(1, static_cast<uint32_t>(count[s] * kTotal / n)) : 0;
    sum += freq[s];
    if (count[s] > count[top]) top = s;
  }
  freq[top] += static_cast<uint32_t>(static_cast<int64_t>(kTotal) - std::min<int64_t>(sum, kTotal));
  sum = std::max<int64_t>(sum, kTotal);
  // Rounding symbols up to 1 can overshoot: take the excess from the largest.
  while (sum > kTotal) {
    int big = 0;
    for (int s = 1; s < 256; ++s)
      if (freq[s] > freq[big]) big = s;
    const uint32_t take = std::min<uint32_t>(freq[big] - 1, static_cast<uint32_t>(sum - kTotal));
    freq[big] -= take;
    sum -= take;
  }
}

// Encoding by multiplication with a precomputed reciprocal instead of a
// division (Giesen's RansEncSymbol).
struct EncSymbol {
  uint32_t x_max, rcp_freq, bias;
  uint32_t cmpl_freq, rcp_shift;
};

EncSymbol MakeEncSymbol(uint32_t start, uint32_t freq) {
  EncSymbol e;
  e.x_max = ((kLow >> kScaleBits) << 8) * freq;
  e.cmpl_freq = kTotal - freq;
  if (freq < 2) {
    // x / 1 = x: a reciprocal of 2^32 - 1 with shift 0 gives x - 1, which
    // the bias corrects (see rans_byte.h).
    e.rcp_freq = ~0u;
    e.rcp_shift = 0;
    e.bias = start + kTotal - 1;
  } else {
    uint32_t shift = 0;
    while (freq > (1u << shift)) ++shift;
    e.rcp_freq = static_cast<uint32_t>(((uint64_t{1} << (shift + 31)) + freq - 1) / freq);
    e.rcp_shift = shift - 1;
    e.bias = start;
  }
  return e;
}

Status Corrupt(const std::string& what) { return Status::Corruption("corrupt frame: " + what); }

}  // namespace

void RansEncode(std::span<const uint8_t> symbols, std::vector<uint8_t>* out) {
  const uint64_t n = symbols.size();
  uint64_t count[256] = {};
  for (uint8_t s : symbols) ++count[s];
  uint32_t freq[256] = {};
  if (n > 0) Normalize(count, n, freq);
  EncSymbol enc[256];
  uint32_t start = 0;
  for (int s = 0; s < 256; ++s) {
    enc[s] = MakeEncSymbol(start, freq[s]);
    start += freq[s];
  }
  // Each symbol emits at most 2 bytes (freq >= 1 of 4096: 12 bits).
  std::vector<uint8_t> buf(2 * n + 8);
  uint8_t* ptr = buf.data() + buf.size();
  uint32_t x = kLow;
  for (uint64_t i = n; i-- > 0;) {
    const EncSymbol& e = enc[symbols[i]];
    while (x >= e.x_max) {
      *--ptr = static_cast<uint8_t>(x);
      x >>= 8;
    }
    const uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(x) * e.rcp_freq) >> 32) >> e.rcp_shift;
    x = x + e.bias + q * e.cmpl_freq;
  }
  int present = 0;
  for (int s = 0; s < 256; ++s) present += freq[s] != 0;
  const size_t table = 2 + 3 * static_cast<size_t>(present);
  const size_t base = out->size();
  const size_t stream = static_cast<size_t>(buf.data() + buf.size() - ptr);
  out->resize(base + table + 4 + stream);
  uint8_t* o = out->data() + base;
  StoreLE16(o, static_cast<uint16_t>(present));
  o += 2;
  for (int s = 0; s < 256; ++s) {
    if (freq[s] == 0) continue;
    o[0] = static_cast<uint8_t>(s);
    StoreLE16(o + 1, static_cast<uint16_t>(freq[s]));
    o += 3;
  }
  StoreLE32(o, x);
  std::memcpy(o + 4, ptr, stream);
}

Status RansDecode(std::span<const uint8_t> coded, std::span<uint8_t> symbols) {
  if (coded.size() < 2) return Corrupt("rANS section is " + std::to_string(coded.size()) + " bytes");
  const size_t present = LoadLE16(coded.data());
  const size_t table = 2 + 3 * present;
  if (present > 256 || coded.size() < table + 4) {
    return Corrupt("rANS table of " + std::to_string(present) + " symbols in " + std::to_string(coded.size()) +
                   " bytes");
  }
  uint32_t freq[256] = {}, cum[257];
  for (size_t i = 0; i < present; ++i) {
    const uint8_t s = coded[2 + 3 * i];
    if (i > 0 && s <= coded[2 + 3 * (i - 1)]) return Corrupt("rANS symbols out of order");
    freq[s] = LoadLE16(coded.data() + 3 + 3 * i);
  }
  cum[0] = 0;
  for (int s = 0; s < 256; ++s) cum[s + 1] = cum[s] + freq[s];
  if (symbols.empty()) return present == 0 && coded.size() == table + 4 ? Status::OK() : Corrupt("rANS section for no symbols");
  if (cum[256] != kTotal) return Corrupt("rANS frequencies sum to " + std::to_string(cum[256]));
  uint8_t slot_symbol[kTotal];
  for (int s = 0; s < 256; ++s) std::fill(slot_symbol + cum[s], slot_symbol + cum[s + 1], static_cast<uint8_t>(s));
  uint32_t x = LoadLE32(coded.data() + table);
  const uint8_t* p = coded.data() + table + 4;
  const uint8_t* end = coded.data() + coded.size();
  if (x < kLow) return Corrupt("rANS state out of range");
  for (uint8_t& out : symbols) {
    const uint32_t slot = x & (kTotal - 1);
    const uint8_t s = slot_symbol[slot];
    out = s;
    x = freq[s] * (x >> kScaleBits) + slot - cum[s];
    while (x < kLow) {
      if (p == end) return Corrupt("rANS stream ends early");
      x = (x << 8) | *p++;
    }
  }
  // The encoder started from kLow and consumed every byte: anything else is damage.
  if (x != kLow || p != end) return Corrupt("rANS stream does not end where it should");
  return Status::OK();
}

Status ZstdCompress(std::span<const uint8_t> in, int level, std::vector<uint8_t>* out) {
  const size_t base = out->size();
  out->resize(base + ZSTD_compressBound(in.size()));
  const size_t r = ZSTD_compress(out->data() + base, out->size() - base, in.data(), in.size(), level);
  if (ZSTD_isError(r)) return Status::InvalidArgument(std::string("zstd: ") + ZSTD_getErrorName(r));
  out->resize(base + r);
  return Status::OK();
}

Status ZstdDecompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  // Thread-local context: decompression runs on many threads at once.
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared != out.size()) {
    return Corrupt("zstd frame declares " +
                   (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN
                        ? std::string("no valid size")
                        : std::to_string(declared) + " bytes") +
                   ", expected " + std::to_string(out.size()));
  }
  const size_t r = ZSTD_decompressDCtx(ctx.get(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(r)) return Corrupt(std::string("zstd: ") + ZSTD_getErrorName(r));
  if (r != out.size()) return Corrupt("zstd frame inflates to " + std::to_string(r) + " bytes, expected " +
                                      std::to_string(out.size()));
  return Status::OK();
}

// Frame: u32 size of the rANS section | rANS(exponent bytes) | zstd(sign +
// mantissa, 3 bytes per float, little-endian).
Status EncodeFrame(std::span<const uint8_t> floats, int level, std::vector<uint8_t>* out) {
  if (floats.size() % 4 != 0) return Status::InvalidArgument("frame of " + std::to_string(floats.size()) + " bytes");
  const size_t n = floats.size() / 4;
  std::vector<uint8_t> exps(n), rest(3 * n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = LoadLE32(floats.data() + 4 * i);
    exps[i] = static_cast<uint8_t>(u >> 23);
    const uint32_t r = (u & 0x7FFFFFu) | ((u >> 31) << 23);
    rest[3 * i] = static_cast<uint8_t>(r);
    rest[3 * i + 1] = static_cast<uint8_t>(r >> 8);
    rest[3 * i + 2] = static_cast<uint8_t>(r >> 16);
  }
  const size_t base = out->size();
  out->resize(base + 4);
  RansEncode(exps, out);
  StoreLE32(out->data() + base, static_cast<uint32_t>(out->size() - base - 4));
  return ZstdCompress(rest, level, out);
}

Status DecodeFrame(std::span<const uint8_t> coded, std::span<uint8_t> out) {
  if (out.size() % 4 != 0) return Status::InvalidArgument("frame of " + std::to_string(out.size()) + " bytes");
  if (coded.size() < 4) return Corrupt(std::to_string(coded.size()) + " bytes");
  const uint32_t rans_size = LoadLE32(coded.data());
  if (rans_size > coded.size() - 4) {
    return Corrupt("rANS section of " + std::to_string(rans_size) + " bytes in a frame of " +
                   std::to_string(coded.size()));
  }
  const size_t n = out.size() / 4;
  std::vector<uint8_t> exps(n), rest(3 * n);
  EMB_RETURN_IF_ERROR(RansDecode(coded.subspan(4, rans_size), exps));
  EMB_RETURN_IF_ERROR(ZstdDecompress(coded.subspan(4 + rans_size), rest));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rest[3 * i] | uint32_t{rest[3 * i + 1]} << 8 | uint32_t{rest[3 * i + 2]} << 16;
    const uint32_t u = (r & 0x7FFFFFu) | uint32_t{exps[i]} << 23 | (r >> 23) << 31;
    StoreLE32(out.data() + 4 * i, u);
  }
  return Status::OK();
}

}  // namespace embstore
