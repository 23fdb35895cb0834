#include "store/embz/embz_codec.h"

#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "format/embz_format.h"
#include "format/endian.h"
#include "store/embz/embz_codec_avx512.h"

namespace embstore {

namespace {

// rANS with a 32-bit state and 16-bit renormalization (Duda's asymmetric
// numeral systems, after Giesen's public-domain rans_byte / rans_word), 12-bit
// probabilities. Section layout (FORMAT.md, ".embz frames"): u16 number of
// symbols present, then (u8 symbol, u16 frequency) for each in increasing
// symbol order, the u32 final states, the u32 stream sizes, then the streams
// of 16-bit words the decoder reads forwards.
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

// Eight floats per step (AVX2): two 12-byte groups side by side in the two
// 128-bit lanes.
__attribute__((target("avx2"))) void MergeAvx2(const uint8_t* exps, const uint8_t* rest, size_t n, uint8_t* dst) {
  const __m256i mant = _mm256_set1_epi32(0x7FFFFF);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i unpack3 = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,  //
                                           0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  size_t i = 0;
  for (; 3 * i + 28 <= 3 * n; i += 8) {  // the upper 16-byte load ends at byte 3i + 28
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rest + 3 * i));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rest + 3 * i + 12));
    const __m256i r = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1), unpack3);
    const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(exps + i)));
    const __m256i u = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(r, mant), _mm256_slli_epi32(e, 23)),
                                      _mm256_and_si256(_mm256_slli_epi32(r, 8), sign));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * i), u);
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
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return MergeAvx2(exps, rest, n, dst);
  static const bool ssse3 = __builtin_cpu_supports("ssse3");
  if (ssse3) return MergeSsse3(exps, rest, n, dst);
#endif
  MergeScalar(exps, rest, 0, n, dst);
}

// The filter for 2-byte elements (FORMAT.md, ".embz frames"): bfloat16 b ->
// exponent byte (b >> 7) & 0xFF and one byte (b & 0x7F) | sign << 7;
// float16 h -> its high byte (sign, 5 exponent bits, 2 mantissa bits) and
// its low byte. Merge16 may run in place as Merge does (element i is
// written to bytes [2i, 2i + 2) after rest[i] is read; rest sits at n..).
void Split16(Dtype dtype, const uint8_t* src, size_t n, uint8_t* exps, uint8_t* rest) {
  if (dtype == Dtype::kBFloat16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t b = LoadLE16(src + 2 * i);
      exps[i] = static_cast<uint8_t>(b >> 7);
      rest[i] = static_cast<uint8_t>((b & 0x7Fu) | (b >> 15) << 7);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      exps[i] = src[2 * i + 1];
      rest[i] = src[2 * i];
    }
  }
}

void Merge16(Dtype dtype, const uint8_t* exps, const uint8_t* rest, size_t n, uint8_t* dst) {
  if (dtype == Dtype::kBFloat16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t r = rest[i];
      StoreLE16(dst + 2 * i, static_cast<uint16_t>((r & 0x7Fu) | uint16_t{exps[i]} << 7 | (r >> 7) << 15));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t lo = rest[i];
      dst[2 * i + 1] = exps[i];
      dst[2 * i] = lo;
    }
  }
}

// Interleaving (FORMAT.md, ".embz frames"): symbol i is coded by lane
// i % L, and lanes are split evenly over S word streams, lane j writing to
// stream j / (L / S) in lane order. Codec 1: L = 4, S = 4 (four scalar
// chains). Codec 2: L = 32, S = 2 (two 16-lane vectors, each its own chain).
// The encoder runs backwards so the decoder reads forwards.
// Codec 1 stores all four final states; codec 2 only those of the lanes a
// frame of n symbols uses, min(n, 32) (the others stay at their start).
struct Layout {
  int lanes, streams;
  int StoredStates(uint64_t n) const {
    return lanes == 4 ? 4 : static_cast<int>(std::min<uint64_t>(n, static_cast<uint64_t>(lanes)));
  }
};

Layout LayoutOf(uint32_t codec) {
  return codec == kEmbzCodecSplitRans ? Layout{4, 4} : Layout{32, 2};
}

constexpr int kMaxLanes = 32, kMaxStreams = 4;

void EncodeSymbols(std::span<const uint8_t> symbols, Layout lay, std::vector<uint8_t>* out) {
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
  // Each stream is written backwards; a symbol emits at most one 16-bit word.
  const int per_stream = lay.lanes / lay.streams;
  thread_local std::vector<uint8_t> buf[kMaxStreams];
  uint8_t* ptr[kMaxStreams];
  uint8_t* buf_end[kMaxStreams];
  for (int k = 0; k < lay.streams; ++k) {
    buf[k].resize(2 * (n / lay.streams + per_stream) + 8);
    buf_end[k] = ptr[k] = buf[k].data() + buf[k].size();
  }
  uint32_t x[kMaxLanes];
  for (int j = 0; j < lay.lanes; ++j) x[j] = kLow;
  auto put = [&enc](uint32_t& xs, uint8_t*& pp, uint8_t symbol) {
    const EncSymbol& e = enc[symbol];
    // Branch-free (the decision is a coin toss): the word is always stored,
    // the pointer moves only when it is kept (at most one word per symbol).
    StoreLE16(pp - 2, static_cast<uint16_t>(xs));
#if defined(__x86_64__)
    uint64_t keep = 0;  // all ones when no word is emitted (xs < x_max)
    asm("cmpq %[max], %[x64]\n\t"
        "cmovae %[shifted], %[x]\n\t"  // cmov leaves the flags alone
        "sbb %[k], %[k]"
        : [x] "+r"(xs), [k] "+r"(keep)
        : [x64] "r"(static_cast<uint64_t>(xs)), [max] "r"(e.x_max), [shifted] "r"(xs >> 16)
        : "cc");
    pp -= ~keep & 2;
#else
    const uint64_t emit = 0 - static_cast<uint64_t>(xs >= e.x_max);
    pp -= emit & 2;
    xs = (xs & ~static_cast<uint32_t>(emit)) | ((xs >> 16) & static_cast<uint32_t>(emit));
#endif
    // shift is 32 + s with s < 13: the high part, then a short shift.
    const uint32_t q =
        static_cast<uint32_t>(static_cast<uint64_t>((static_cast<Uint128>(xs) * e.rcp) >> 32) >> (e.shift - 32));
    xs = xs + e.bias + q * e.cmpl_freq;
  };
  const uint64_t lanes = static_cast<uint64_t>(lay.lanes);
  uint64_t i = n;
  for (; i % lanes != 0; --i) {  // the partial last group first
    const int j = static_cast<int>((i - 1) % lanes);
    put(x[j], ptr[j / per_stream], symbols[i - 1]);
  }
  if (lay.lanes == 4) {
    for (; i > 0; i -= 4) {
      put(x[3], ptr[3], symbols[i - 1]);
      put(x[2], ptr[2], symbols[i - 2]);
      put(x[1], ptr[1], symbols[i - 3]);
      put(x[0], ptr[0], symbols[i - 4]);
    }
  } else {
    uint8_t* p0 = ptr[0];  // in registers: the pointer is each stream's chain
    uint8_t* p1 = ptr[1];
    for (; i > 0; i -= 32) {
      const uint8_t* g = symbols.data() + i - 32;
      for (int j = 15; j >= 0; --j) {
        put(x[j + 16], p1, g[j + 16]);
        put(x[j], p0, g[j]);
      }
    }
    ptr[0] = p0;
    ptr[1] = p1;
  }
  int present = 0;
  for (int s = 0; s < 256; ++s) present += freq[s] != 0;
  const size_t table = 2 + 3 * static_cast<size_t>(present);
  size_t streams = 0;
  for (int k = 0; k < lay.streams; ++k) streams += static_cast<size_t>(buf_end[k] - ptr[k]);
  const size_t base = out->size();
  const int stored = lay.StoredStates(n);
  out->resize(base + table + 4 * static_cast<size_t>(stored + lay.streams) + streams);
  uint8_t* o = out->data() + base;
  StoreLE16(o, static_cast<uint16_t>(present));
  o += 2;
  for (int s = 0; s < 256; ++s) {
    if (freq[s] == 0) continue;
    o[0] = static_cast<uint8_t>(s);
    StoreLE16(o + 1, static_cast<uint16_t>(freq[s]));
    o += 3;
  }
  for (int j = 0; j < stored; ++j, o += 4) StoreLE32(o, x[j]);
  for (int k = 0; k < lay.streams; ++k, o += 4) StoreLE32(o, static_cast<uint32_t>(buf_end[k] - ptr[k]));
  for (int k = 0; k < lay.streams; ++k) {
    const size_t len = static_cast<size_t>(buf_end[k] - ptr[k]);
    std::memcpy(o, ptr[k], len);
    o += len;
  }
}

// One decoding step (FORMAT.md): the slot table entry is packed in 32 bits,
// symbol | bias << 8 | (freq - 1) << 20 with bias = slot - cum, so that
// x' = freq * (x >> 12) + bias.
inline uint32_t Advance(uint32_t e, uint32_t xs) {
  const uint32_t q = xs >> kScaleBits;
  return (e >> 20) * q + q + ((e >> 8) & (kTotal - 1));
}

// Renormalization with the next word, which the caller has checked is in
// bounds. It must not be a branch: whether a state needs a word is a coin
// toss the predictor loses, and GCC compiles a ?: here into one (measured:
// half the speed on real data). On x86-64 a cmov and an sbb do it.
inline void Renorm(uint32_t& xs, const uint8_t*& pp) {
  const uint32_t renormed = (xs << 16) | LoadLE16(pp);
#if defined(__x86_64__)
  uint64_t below = 0;  // all ones when xs < kLow
  asm("cmpl %[low], %[x]\n\t"
      "cmovb %[r], %[x]\n\t"  // cmov leaves the flags alone
      "sbb %[b], %[b]"
      : [x] "+r"(xs), [b] "+r"(below)
      : [r] "r"(renormed), [low] "i"(kLow)
      : "cc");
  pp += below & 2;
#else
  const uint32_t m = 0u - static_cast<uint32_t>(xs < kLow);
  pp += m & 2;
  xs = (renormed & m) | (xs & ~m);
#endif
}

struct DecodeState {
  uint32_t x[kMaxLanes];
  const uint8_t* p[kMaxStreams];
  const uint8_t* end[kMaxStreams];
};

// Decodes symbols [i, n) lane by lane, checking every stream read.
// Returns false when a stream ends early.
bool DecodeChecked(const uint32_t* slots, Layout lay, DecodeState& st, uint8_t* out, size_t i, size_t n) {
  const int per_stream = lay.lanes / lay.streams;
  bool overrun = false;
  for (; i < n; ++i) {
    const int j = static_cast<int>(i % static_cast<size_t>(lay.lanes));
    uint32_t& xs = st.x[j];
    const uint8_t*& pp = st.p[j / per_stream];
    const uint32_t e = slots[xs & (kTotal - 1)];
    out[i] = static_cast<uint8_t>(e);
    xs = Advance(e, xs);
    if (xs < kLow) {  // the checked tail: a branch is fine here
      if (st.end[j / per_stream] - pp < 2) {
        overrun = true;
        xs <<= 16;
      } else {
        Renorm(xs, pp);
      }
    }
  }
  return !overrun;
}

// Codec 1's fast path: four scalar chains. In a chunk of G groups each state
// reads at most G words, so when every stream has that many left no bounds
// check is needed. Returns the number of symbols decoded.
size_t DecodeFast4(const uint32_t* slots, DecodeState& st, uint8_t* out, size_t n) {
  uint32_t x0 = st.x[0], x1 = st.x[1], x2 = st.x[2], x3 = st.x[3];
  const uint8_t *p0 = st.p[0], *p1 = st.p[1], *p2 = st.p[2], *p3 = st.p[3];
  auto step = [slots](uint32_t& xs, const uint8_t*& pp, uint8_t& o) {
    const uint32_t e = slots[xs & (kTotal - 1)];
    o = static_cast<uint8_t>(e);
    xs = Advance(e, xs);
    Renorm(xs, pp);
  };
  constexpr size_t kGroups = 256;
  constexpr ptrdiff_t kNeed = 2 * kGroups;
  size_t i = 0;
  while (i + 4 * kGroups <= n && st.end[0] - p0 >= kNeed && st.end[1] - p1 >= kNeed && st.end[2] - p2 >= kNeed &&
         st.end[3] - p3 >= kNeed) {
    for (size_t g = 0; g < kGroups; ++g, i += 4) {
      step(x0, p0, out[i]);
      step(x1, p1, out[i + 1]);
      step(x2, p2, out[i + 2]);
      step(x3, p3, out[i + 3]);
    }
  }
  st.x[0] = x0, st.x[1] = x1, st.x[2] = x2, st.x[3] = x3;
  st.p[0] = p0, st.p[1] = p1, st.p[2] = p2, st.p[3] = p3;
  return i;
}

// Codec 2's fast path, portable: 32 lanes over two streams.
size_t DecodeFast32(const uint32_t* slots, DecodeState& st, uint8_t* out, size_t n) {
  const uint8_t* p0 = st.p[0];
  const uint8_t* p1 = st.p[1];
  size_t i = 0;
  for (; i + 32 <= n && st.end[0] - p0 >= 32 && st.end[1] - p1 >= 32; i += 32) {
    for (int j = 0; j < 16; ++j) {
      const uint32_t e0 = slots[st.x[j] & (kTotal - 1)];
      const uint32_t e1 = slots[st.x[j + 16] & (kTotal - 1)];
      out[i + j] = static_cast<uint8_t>(e0);
      out[i + j + 16] = static_cast<uint8_t>(e1);
      st.x[j] = Advance(e0, st.x[j]);
      st.x[j + 16] = Advance(e1, st.x[j + 16]);
      Renorm(st.x[j], p0);
      Renorm(st.x[j + 16], p1);
    }
  }
  st.p[0] = p0, st.p[1] = p1;
  return i;
}

#if defined(__x86_64__)
size_t DecodeFast32Avx512(const uint32_t* slots, DecodeState& st, uint8_t* out, size_t n) {
  return RansDecode32Avx512(slots, st.x, st.p, st.end, out, n);
}
#endif

// Which decoder codec 2 uses; EMBSTORE_ISA=portable (or avx2) forces the
// portable one, as for the generation kernels.
bool UseAvx512() {
#if defined(__x86_64__)
  static const bool use = [] {
    const char* isa = std::getenv("EMBSTORE_ISA");
    if (isa && (std::strcmp(isa, "portable") == 0 || std::strcmp(isa, "avx2") == 0)) return false;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("popcnt");
  }();
  return use;
#else
  return false;
#endif
}

}  // namespace

void RansEncode(std::span<const uint8_t> symbols, uint32_t codec, std::vector<uint8_t>* out) {
  EncodeSymbols(symbols, LayoutOf(codec), out);
}

Status RansDecode(std::span<const uint8_t> coded, uint32_t codec, std::span<uint8_t> symbols) {
  const Layout lay = LayoutOf(codec);
  if (coded.size() < 2) return Corrupt("rANS section is " + std::to_string(coded.size()) + " bytes");
  const size_t present = LoadLE16(coded.data());
  const size_t table = 2 + 3 * present;
  const int stored = lay.StoredStates(symbols.size());
  const size_t fixed = table + 4 * static_cast<size_t>(stored + lay.streams);
  if (present > 256 || coded.size() < fixed) {
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
    return present == 0 && coded.size() == fixed ? Status::OK() : Corrupt("rANS section for no symbols");
  }
  if (cum[256] != kTotal) return Corrupt("rANS frequencies sum to " + std::to_string(cum[256]));
  alignas(64) uint32_t slots[kTotal];
  for (int s = 0; s < 256; ++s)
    for (uint32_t k = cum[s]; k < cum[s + 1]; ++k) slots[k] = s | (k - cum[s]) << 8 | (freq[s] - 1) << 20;
  DecodeState st;
  const uint8_t* at = coded.data() + table;
  for (int j = 0; j < lay.lanes; ++j) st.x[j] = kLow;
  for (int j = 0; j < stored; ++j, at += 4) {
    st.x[j] = LoadLE32(at);
    if (st.x[j] < kLow) return Corrupt("rANS state out of range");
  }
  const uint8_t* cursor = coded.data() + fixed;
  const uint8_t* coded_end = coded.data() + coded.size();
  for (int k = 0; k < lay.streams; ++k, at += 4) {
    const uint32_t len = LoadLE32(at);
    if (len > static_cast<size_t>(coded_end - cursor) || len % 2 != 0) {
      return Corrupt("rANS stream sizes do not fit the section");
    }
    st.p[k] = cursor;
    st.end[k] = cursor + len;
    cursor += len;
  }
  if (cursor != coded_end) return Corrupt("rANS section has trailing bytes");
  const size_t n = symbols.size();
  uint8_t* out = symbols.data();
  size_t i;
  if (lay.lanes == 4) {
    i = DecodeFast4(slots, st, out, n);
#if defined(__x86_64__)
  } else if (UseAvx512()) {
    i = DecodeFast32Avx512(slots, st, out, n);
#endif
  } else {
    i = DecodeFast32(slots, st, out, n);
  }
  if (!DecodeChecked(slots, lay, st, out, i, n)) return Corrupt("rANS stream ends early");
  // The encoder started every state at kLow and each stream is consumed whole.
  for (int j = 0; j < lay.lanes; ++j) {
    if (st.x[j] != kLow) return Corrupt("rANS stream does not end where it should");
  }
  for (int k = 0; k < lay.streams; ++k) {
    if (st.p[k] != st.end[k]) return Corrupt("rANS stream does not end where it should");
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
// mantissa, E - 1 bytes per element of E bytes, little-endian).
Status EncodeFrame(std::span<const uint8_t> rows, int level, std::vector<uint8_t>* out, uint32_t codec,
                   Dtype dtype) {
  const size_t esize = DtypeSize(dtype);
  if (esize == 0 || rows.size() % esize != 0) {
    return Status::InvalidArgument("frame of " + std::to_string(rows.size()) + " bytes of " + DtypeName(dtype));
  }
  const size_t n = rows.size() / esize, rest_bytes = (esize - 1) * n;
  thread_local std::vector<uint8_t> exps, rest;
  exps.resize(n + 4);
  rest.resize(rest_bytes + 4);  // slack: 3-byte groups are stored 4 bytes at a time
  if (esize == 4) {
    Split(rows.data(), n, exps.data(), rest.data());
  } else {
    Split16(dtype, rows.data(), n, exps.data(), rest.data());
  }
  const size_t base = out->size();
  out->resize(base + 4);
  RansEncode(std::span<const uint8_t>(exps).first(n), codec, out);
  StoreLE32(out->data() + base, static_cast<uint32_t>(out->size() - base - 4));
  // The sign and mantissa bytes go through zstd; when that does not shrink
  // them (noise, the usual case) they are stored as they are, which the
  // decoder then reads in place.
  const size_t mode_at = out->size();
  out->push_back(kRestZstd);
  EMB_RETURN_IF_ERROR(ZstdCompress(std::span<const uint8_t>(rest).first(rest_bytes), level, out));
  if (out->size() - mode_at - 1 >= rest_bytes) {
    out->resize(mode_at);
    out->push_back(kRestRaw);
    out->insert(out->end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(rest_bytes));
  }
  return Status::OK();
}

Status DecodeFrame(std::span<const uint8_t> coded, std::span<uint8_t> out, uint32_t codec, Dtype dtype) {
  const size_t esize = DtypeSize(dtype);
  if (esize == 0 || out.size() % esize != 0) {
    return Status::InvalidArgument("frame of " + std::to_string(out.size()) + " bytes of " + DtypeName(dtype));
  }
  if (coded.size() < 4) return Corrupt(std::to_string(coded.size()) + " bytes");
  const uint32_t rans_size = LoadLE32(coded.data());
  if (rans_size > coded.size() - 4) {
    return Corrupt("rANS section of " + std::to_string(rans_size) + " bytes in a frame of " +
                   std::to_string(coded.size()));
  }
  const size_t n = out.size() / esize, rest_bytes = (esize - 1) * n;
  // The only scratch is the exponent bytes (1/E of the frame): sign and
  // mantissa bytes are read in place (raw) or inflated into the last
  // (E - 1)/E of `out`, and Merge then fills `out` from the front. That is
  // safe in place: element i is written to bytes [Ei, Ei + E), below the
  // bytes n + (E - 1)i.. it and every later element read (i < n), and each
  // step of every Merge loads before it stores.
  thread_local std::vector<uint8_t> exps;
  exps.resize(n + 4);
  EMB_RETURN_IF_ERROR(RansDecode(coded.subspan(4, rans_size), codec, std::span<uint8_t>(exps).first(n)));
  const auto tail = coded.subspan(4 + rans_size);
  if (tail.empty()) return Corrupt("no sign and mantissa section");
  const uint8_t* rest;
  if (tail[0] == kRestRaw) {
    if (tail.size() - 1 != rest_bytes) {
      return Corrupt("raw sign and mantissa section of " + std::to_string(tail.size() - 1) + " bytes, expected " +
                     std::to_string(rest_bytes));
    }
    rest = tail.data() + 1;  // read in place
  } else if (tail[0] == kRestZstd) {
    EMB_RETURN_IF_ERROR(ZstdDecompress(tail.subspan(1), out.subspan(n, rest_bytes)));
    rest = out.data() + n;
  } else {
    return Corrupt("unknown sign and mantissa mode " + std::to_string(tail[0]));
  }
  if (esize == 4) {
    Merge(exps.data(), rest, n, out.data());
  } else {
    Merge16(dtype, exps.data(), rest, n, out.data());
  }
  return Status::OK();
}

}  // namespace embstore
