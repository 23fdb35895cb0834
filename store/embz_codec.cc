#include "store/embz_codec.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "format/endian.h"

namespace embstore {

namespace {

// rANS with a 32-bit state and 16-bit renormalization (Duda's asymmetric
// numeral systems, after Giesen's public-domain rans_byte / rans_word), 12-bit
// probabilities. Section layout (FORMAT.md, ".embz frames"): u16 number of
// symbols present, then (u8 symbol, u16 frequency) for each in increasing
// symbol order, the u32 final state, then the bytes the decoder reads forwards.
constexpr uint32_t kScaleBits = 12;
constexpr uint32_t kTotal = 1u << kScaleBits;
// The state lives in [kLow, 2^32) and is renormalized 16 bits at a time:
// with 12-bit probabilities one 16-bit word always suffices, so decoding
// needs no loop and no unpredictable branch.
constexpr uint32_t kLow = 1u << 16;

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

// Encoding divides by multiplying with a precomputed reciprocal: q = floor(x
// / freq) = (x * ceil(2^(32+s) / freq)) >> (32 + s), s = ceil(log2 freq),
// exact for every 32-bit x (Granlund and Montgomery); the product needs 65
// bits, so it is taken in 128.
__extension__ typedef unsigned __int128 Uint128;  // GCC/Clang: one MUL gives all 128 bits

struct EncSymbol {
  uint64_t x_max;  // 64 bits: for a symbol with all 4096 slots it is 2^32
  uint64_t rcp;
  uint32_t shift, bias, cmpl_freq;
};

EncSymbol MakeEncSymbol(uint32_t start, uint32_t freq) {
  EncSymbol e{};
  if (freq == 0) return e;  // never encoded
  e.x_max = (uint64_t{kLow >> kScaleBits} << 16) * freq;
  e.cmpl_freq = kTotal - freq;
  e.bias = start;
  uint32_t s = 0;
  while ((1u << s) < freq) ++s;
  e.shift = 32 + s;
  e.rcp = static_cast<uint64_t>(((static_cast<Uint128>(1) << e.shift) + freq - 1) / freq);
  return e;
}

Status Corrupt(const std::string& what) { return Status::Corruption("corrupt frame: " + what); }

// How a frame stores its sign and mantissa bytes (FORMAT.md, ".embz frames").
constexpr uint8_t kRestRaw = 0;
constexpr uint8_t kRestZstd = 1;

// The filter (FORMAT.md, ".embz frames"): float u -> exponent byte u >> 23
// and 3 bytes (u & 0x7FFFFF) | sign << 23. Split writes each 3-byte group as
// 4 bytes (its buffer has slack); Merge never reads past the 3n bytes.
void SplitScalar(const uint8_t* src, size_t from, size_t n, uint8_t* exps, uint8_t* rest) {
  for (size_t i = from; i < n; ++i) {
    const uint32_t u = LoadLE32(src + 4 * i);
    exps[i] = static_cast<uint8_t>(u >> 23);
    StoreLE32(rest + 3 * i, (u & 0x7FFFFFu) | ((u >> 31) << 23));
  }
}

// rest holds exactly 3n bytes here (no slack): groups are read 3 bytes at a time.
void MergeScalar(const uint8_t* exps, const uint8_t* rest, size_t from, size_t n, uint8_t* dst) {
  for (size_t i = from; i < n; ++i) {
    const uint32_t r = rest[3 * i] | uint32_t{rest[3 * i + 1]} << 8 | uint32_t{rest[3 * i + 2]} << 16;
    StoreLE32(dst + 4 * i, (r & 0x7FFFFFu) | uint32_t{exps[i]} << 23 | (r >> 23) << 31);
  }
}

#if defined(__x86_64__)
// Four floats per step with byte shuffles (SSSE3: every x86-64 CPU since 2006
// bar a few; checked at run time). Same bytes as the scalar loops.
__attribute__((target("ssse3"))) void SplitSsse3(const uint8_t* src, size_t n, uint8_t* exps, uint8_t* rest) {
  const __m128i mant = _mm_set1_epi32(0x7FFFFF);
  const __m128i pack3 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const __m128i pack1 = _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * i));
    const __m128i r = _mm_or_si128(_mm_and_si128(u, mant), _mm_slli_epi32(_mm_srli_epi32(u, 31), 23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(rest + 3 * i), _mm_shuffle_epi8(r, pack3));
    const uint32_t e = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_shuffle_epi8(_mm_srli_epi32(u, 23), pack1)));
    std::memcpy(exps + i, &e, 4);
  }
  SplitScalar(src, i, n, exps, rest);
}

__attribute__((target("ssse3"))) void MergeSsse3(const uint8_t* exps, const uint8_t* rest, size_t n, uint8_t* dst) {
  const __m128i mant = _mm_set1_epi32(0x7FFFFF);
  const __m128i unpack3 = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  const __m128i unpack1 = _mm_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1);
  size_t i = 0;
  for (; 3 * i + 16 <= 3 * n; i += 4) {  // a 16-byte load must stay inside the 3n bytes
    const __m128i r =
        _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rest + 3 * i)), unpack3);
    uint32_t e4;
    std::memcpy(&e4, exps + i, 4);
    const __m128i e = _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(e4)), unpack1);
    const __m128i u = _mm_or_si128(_mm_or_si128(_mm_and_si128(r, mant), _mm_slli_epi32(e, 23)),
                                   _mm_slli_epi32(_mm_srli_epi32(r, 23), 31));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * i), u);
  }
  MergeScalar(exps, rest, i, n, dst);
}
#endif

void Split(const uint8_t* src, size_t n, uint8_t* exps, uint8_t* rest) {
#if defined(__x86_64__)
  static const bool ssse3 = __builtin_cpu_supports("ssse3");
  if (ssse3) return SplitSsse3(src, n, exps, rest);
#endif
  SplitScalar(src, 0, n, exps, rest);
}

void Merge(const uint8_t* exps, const uint8_t* rest, size_t n, uint8_t* dst) {
#if defined(__x86_64__)
  static const bool ssse3 = __builtin_cpu_supports("ssse3");
  if (ssse3) return MergeSsse3(exps, rest, n, dst);
#endif
  MergeScalar(exps, rest, 0, n, dst);
}

}  // namespace

// Four interleaved states (symbol i uses state i % 4) break the decoder's
// dependency chain; the encoder runs backwards so the decoder reads forwards.
constexpr int kStates = 4;

void RansEncode(std::span<const uint8_t> symbols, std::vector<uint8_t>* out) {
  const uint64_t n = symbols.size();
  uint64_t count[4][256] = {};
  {
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      ++count[0][symbols[i]];
      ++count[1][symbols[i + 1]];
      ++count[2][symbols[i + 2]];
      ++count[3][symbols[i + 3]];
    }
    for (; i < n; ++i) ++count[0][symbols[i]];
    for (int s = 0; s < 256; ++s) count[0][s] += count[1][s] + count[2][s] + count[3][s];
  }
  uint32_t freq[256] = {};
  if (n > 0) Normalize(count[0], n, freq);
  EncSymbol enc[256];
  uint32_t start = 0;
  for (int s = 0; s < 256; ++s) {
    enc[s] = MakeEncSymbol(start, freq[s]);
    start += freq[s];
  }
  // Each state writes its own stream of 16-bit words, backwards; a symbol
  // emits at most one word.
  thread_local std::vector<uint8_t> buf[kStates];
  uint8_t* ptr[kStates];
  uint8_t* buf_end[kStates];
  for (int k = 0; k < kStates; ++k) {
    buf[k].resize(2 * (n / kStates + 1) + 8);
    buf_end[k] = ptr[k] = buf[k].data() + buf[k].size();
  }
  uint32_t x[kStates] = {kLow, kLow, kLow, kLow};
  auto put = [&](int k, uint8_t symbol) {
    uint32_t& xs = x[k];
    const EncSymbol& e = enc[symbol];
    // Branch-free: the word is always stored, the pointer moves only when
    // it is kept (at most one word per symbol).
    const bool emit = xs >= e.x_max;
    StoreLE16(ptr[k] - 2, static_cast<uint16_t>(xs));
    ptr[k] -= emit ? 2 : 0;
    xs = emit ? xs >> 16 : xs;
    const uint32_t q = static_cast<uint32_t>((static_cast<Uint128>(xs) * e.rcp) >> e.shift);
    xs = xs + e.bias + q * e.cmpl_freq;
  };
  uint64_t i = n;
  for (; i % kStates != 0; --i) put(static_cast<int>((i - 1) % kStates), symbols[i - 1]);  // the odd tail first
  for (; i > 0; i -= kStates) {
    put(3, symbols[i - 1]);
    put(2, symbols[i - 2]);
    put(1, symbols[i - 3]);
    put(0, symbols[i - 4]);
  }
  int present = 0;
  for (int s = 0; s < 256; ++s) present += freq[s] != 0;
  const size_t table = 2 + 3 * static_cast<size_t>(present);
  size_t streams = 0;
  for (int k = 0; k < kStates; ++k) streams += static_cast<size_t>(buf_end[k] - ptr[k]);
  const size_t base = out->size();
  out->resize(base + table + 8 * kStates + streams);
  uint8_t* o = out->data() + base;
  StoreLE16(o, static_cast<uint16_t>(present));
  o += 2;
  for (int s = 0; s < 256; ++s) {
    if (freq[s] == 0) continue;
    o[0] = static_cast<uint8_t>(s);
    StoreLE16(o + 1, static_cast<uint16_t>(freq[s]));
    o += 3;
  }
  for (int k = 0; k < kStates; ++k) {
    StoreLE32(o + 4 * k, x[k]);
    StoreLE32(o + 4 * kStates + 4 * k, static_cast<uint32_t>(buf_end[k] - ptr[k]));
  }
  o += 8 * kStates;
  for (int k = 0; k < kStates; ++k) {
    const size_t len = static_cast<size_t>(buf_end[k] - ptr[k]);
    std::memcpy(o, ptr[k], len);
    o += len;
  }
}

Status RansDecode(std::span<const uint8_t> coded, std::span<uint8_t> symbols) {
  if (coded.size() < 2) return Corrupt("rANS section is " + std::to_string(coded.size()) + " bytes");
  const size_t present = LoadLE16(coded.data());
  const size_t table = 2 + 3 * present;
  if (present > 256 || coded.size() < table + 8 * kStates) {
    return Corrupt("rANS table of " + std::to_string(present) + " symbols in " + std::to_string(coded.size()) +
                   " bytes");
  }
  uint32_t freq[256] = {}, cum[257];
  for (size_t i = 0; i < present; ++i) {
    const uint8_t s = coded[2 + 3 * i];
    if (i > 0 && s <= coded[2 + 3 * (i - 1)]) return Corrupt("rANS symbols out of order");
    freq[s] = LoadLE16(coded.data() + 3 + 3 * i);
    if (freq[s] == 0) return Corrupt("rANS symbol with frequency 0");
  }
  cum[0] = 0;
  for (int s = 0; s < 256; ++s) cum[s + 1] = cum[s] + freq[s];
  if (symbols.empty()) {
    return present == 0 && coded.size() == table + 8 * kStates ? Status::OK() : Corrupt("rANS section for no symbols");
  }
  if (cum[256] != kTotal) return Corrupt("rANS frequencies sum to " + std::to_string(cum[256]));
  // slot -> (symbol, freq, cum): one lookup per decoded symbol.
  struct Slot {
    uint16_t freq, bias;  // bias = slot - cum, so x' = freq * (x >> 12) + bias
    uint8_t symbol;
  };
  Slot slots[kTotal];
  for (int s = 0; s < 256; ++s)
    for (uint32_t k = cum[s]; k < cum[s + 1]; ++k)
      slots[k] = {static_cast<uint16_t>(freq[s]), static_cast<uint16_t>(k - cum[s]), static_cast<uint8_t>(s)};
  // Four states, four streams: independent chains the CPU runs side by side.
  uint32_t x[kStates];
  const uint8_t* p[kStates];
  const uint8_t* end[kStates];
  const uint8_t* cursor = coded.data() + table + 8 * kStates;
  const uint8_t* coded_end = coded.data() + coded.size();
  for (int k = 0; k < kStates; ++k) {
    x[k] = LoadLE32(coded.data() + table + 4 * k);
    const uint32_t len = LoadLE32(coded.data() + table + 4 * kStates + 4 * k);
    if (x[k] < kLow) return Corrupt("rANS state out of range");
    if (len > static_cast<size_t>(coded_end - cursor) || len % 2 != 0) {
      return Corrupt("rANS stream sizes do not fit the section");
    }
    p[k] = cursor;
    end[k] = cursor + len;
    cursor += len;
  }
  if (cursor != coded_end) return Corrupt("rANS section has trailing bytes");
  // Branch-free renormalization: at most one 16-bit word per symbol. A
  // stream that ends early reads zeros and marks the frame corrupt.
  bool overrun = false;
  auto step = [&slots, &overrun](uint32_t& xs, const uint8_t*& pp, const uint8_t* ee, uint8_t& out) {
    const Slot sl = slots[xs & (kTotal - 1)];
    out = sl.symbol;
    xs = sl.freq * (xs >> kScaleBits) + sl.bias;
    const bool need = xs < kLow;
    const bool have = ee - pp >= 2;
    const uint32_t w = need && have ? LoadLE16(pp) : 0;
    overrun |= need && !have;
    xs = need ? (xs << 16) | w : xs;
    pp += (need && have) ? 2 : 0;
  };
  uint32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
  const uint8_t *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
  const uint8_t *e0 = end[0], *e1 = end[1], *e2 = end[2], *e3 = end[3];
  const size_t n = symbols.size();
  uint8_t* out = symbols.data();
  size_t i = 0;
  // Fast path: in a chunk of G groups each state reads at most G words, so
  // when every stream has that many left no bounds check is needed.
  auto fast = [&slots](uint32_t& xs, const uint8_t*& pp, uint8_t& o) {
    const Slot sl = slots[xs & (kTotal - 1)];
    o = sl.symbol;
    xs = sl.freq * (xs >> kScaleBits) + sl.bias;
    const bool need = xs < kLow;
    uint16_t w;
    std::memcpy(&w, pp, 2);  // in bounds: checked for the whole chunk
    xs = need ? (xs << 16) | w : xs;
    pp += need ? 2 : 0;
  };
  constexpr size_t kGroups = 256;
  while (i + kStates * kGroups <= n && e0 - p0 >= 2 * static_cast<ptrdiff_t>(kGroups) &&
         e1 - p1 >= 2 * static_cast<ptrdiff_t>(kGroups) && e2 - p2 >= 2 * static_cast<ptrdiff_t>(kGroups) &&
         e3 - p3 >= 2 * static_cast<ptrdiff_t>(kGroups)) {
    for (size_t g = 0; g < kGroups; ++g, i += kStates) {
      fast(x0, p0, out[i]);
      fast(x1, p1, out[i + 1]);
      fast(x2, p2, out[i + 2]);
      fast(x3, p3, out[i + 3]);
    }
  }
  for (; i + kStates <= n; i += kStates) {
    step(x0, p0, e0, out[i]);
    step(x1, p1, e1, out[i + 1]);
    step(x2, p2, e2, out[i + 2]);
    step(x3, p3, e3, out[i + 3]);
  }
  if (i < n) step(x0, p0, e0, out[i++]);
  if (i < n) step(x1, p1, e1, out[i++]);
  if (i < n) step(x2, p2, e2, out[i++]);
  x[0] = x0, x[1] = x1, x[2] = x2, x[3] = x3;
  p[0] = p0, p[1] = p1, p[2] = p2, p[3] = p3;
  if (overrun) return Corrupt("rANS stream ends early");
  // The encoder started every state at kLow and each stream is consumed whole.
  for (int k = 0; k < kStates; ++k) {
    if (x[k] != kLow || p[k] != end[k]) return Corrupt("rANS stream does not end where it should");
  }
  return Status::OK();
}

Status ZstdCompress(std::span<const uint8_t> in, int level, std::vector<uint8_t>* out) {
  // A reused context and scratch buffer per thread: no allocation, no
  // zero-filling of the worst-case bound for every frame.
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  thread_local std::vector<uint8_t> scratch;
  const size_t bound = ZSTD_compressBound(in.size());
  if (scratch.size() < bound) scratch.resize(bound);
  const size_t r = ZSTD_compressCCtx(ctx.get(), scratch.data(), bound, in.data(), in.size(), level);
  if (ZSTD_isError(r)) return Status::InvalidArgument(std::string("zstd: ") + ZSTD_getErrorName(r));
  out->insert(out->end(), scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(r));
  return Status::OK();
}

Status ZstdDecompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  // Thread-local context: decompression runs on many threads at once.
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  // Exactly one frame: zstd would also decode frames appended after it.
  const size_t frame_size = ZSTD_findFrameCompressedSize(in.data(), in.size());
  if (ZSTD_isError(frame_size) || frame_size != in.size()) {
    return Corrupt("zstd section is not exactly one zstd frame");
  }
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

Status ZstdDecompressStream(std::span<const uint8_t> in, uint64_t size,
                            const std::function<Status(std::span<const uint8_t>)>& sink) {
  const size_t frame_size = ZSTD_findFrameCompressedSize(in.data(), in.size());
  if (ZSTD_isError(frame_size) || frame_size != in.size()) return Corrupt("not exactly one zstd frame");
  const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared != size) return Corrupt("zstd frame does not declare " + std::to_string(size) + " bytes");
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<uint8_t> buf(64 * 1024);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  uint64_t total = 0;
  for (;;) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    const size_t r = ZSTD_decompressStream(ctx.get(), &output, &input);
    if (ZSTD_isError(r)) return Corrupt(std::string("zstd: ") + ZSTD_getErrorName(r));
    total += output.pos;
    if (total > size) return Corrupt("zstd frame inflates past " + std::to_string(size) + " bytes");
    if (output.pos > 0) EMB_RETURN_IF_ERROR(sink(std::span<const uint8_t>(buf.data(), output.pos)));
    if (r == 0) break;  // frame complete
    if (input.pos == input.size && output.pos < output.size) return Corrupt("zstd frame ends early");
  }
  if (total != size) return Corrupt("zstd frame inflates to " + std::to_string(total) + " bytes, expected " +
                                    std::to_string(size));
  return Status::OK();
}

// Frame: u32 size of the rANS section | rANS(exponent bytes) | zstd(sign +
// mantissa, 3 bytes per float, little-endian).
Status EncodeFrame(std::span<const uint8_t> floats, int level, std::vector<uint8_t>* out) {
  if (floats.size() % 4 != 0) return Status::InvalidArgument("frame of " + std::to_string(floats.size()) + " bytes");
  const size_t n = floats.size() / 4;
  thread_local std::vector<uint8_t> exps, rest;
  exps.resize(n + 4);
  rest.resize(3 * n + 4);  // slack: groups are stored 4 bytes at a time
  Split(floats.data(), n, exps.data(), rest.data());
  const size_t base = out->size();
  out->resize(base + 4);
  RansEncode(std::span<const uint8_t>(exps).first(n), out);
  StoreLE32(out->data() + base, static_cast<uint32_t>(out->size() - base - 4));
  // The sign and mantissa bytes go through zstd; when that does not shrink
  // them (noise, the usual case) they are stored as they are, which the
  // decoder then reads in place.
  const size_t mode_at = out->size();
  out->push_back(kRestZstd);
  EMB_RETURN_IF_ERROR(ZstdCompress(std::span<const uint8_t>(rest).first(3 * n), level, out));
  if (out->size() - mode_at - 1 >= 3 * n) {
    out->resize(mode_at);
    out->push_back(kRestRaw);
    out->insert(out->end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(3 * n));
  }
  return Status::OK();
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
  thread_local std::vector<uint8_t> exps, rest;
  exps.resize(n + 4);
  rest.resize(3 * n);
  EMB_RETURN_IF_ERROR(RansDecode(coded.subspan(4, rans_size), std::span<uint8_t>(exps).first(n)));
  const auto tail = coded.subspan(4 + rans_size);
  if (tail.empty()) return Corrupt("no sign and mantissa section");
  if (tail[0] == kRestRaw) {
    if (tail.size() - 1 != 3 * n) {
      return Corrupt("raw sign and mantissa section of " + std::to_string(tail.size() - 1) + " bytes, expected " +
                     std::to_string(3 * n));
    }
    Merge(exps.data(), tail.data() + 1, n, out.data());  // read in place
    return Status::OK();
  }
  if (tail[0] != kRestZstd) return Corrupt("unknown sign and mantissa mode " + std::to_string(tail[0]));
  EMB_RETURN_IF_ERROR(ZstdDecompress(tail.subspan(1), std::span<uint8_t>(rest).first(3 * n)));
  Merge(exps.data(), rest.data(), n, out.data());
  return Status::OK();
}

}  // namespace embstore
