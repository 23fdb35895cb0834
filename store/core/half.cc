#include "store/core/half.h"

#include <cstring>

#include "format/half.h"

namespace embstore {

namespace {

void F32ToF16Portable(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}
void F16ToF32Portable(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}
void F32ToBF16Portable(const float* in, uint16_t* out, size_t n, uint16_t nan) {
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = FloatToBFloat16(in[i]);
    out[i] = b == 0xFFFFu && in[i] != in[i] ? nan : b;
  }
}
void BF16ToF32Portable(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = BFloat16ToFloat(in[i]);
}

void ToF32(Dtype from, const void* in, float* out, size_t n, Isa isa) {
  const auto* h = static_cast<const uint16_t*>(in);
  switch (from) {
    case Dtype::kFloat32: std::memcpy(out, in, n * 4); return;
    case Dtype::kFloat16:
      if (isa == Isa::kAvx512) return F16ToF32Avx512(h, out, n);
      if (isa == Isa::kAvx2) return F16ToF32Avx2(h, out, n);
      return F16ToF32Portable(h, out, n);
    case Dtype::kBFloat16:
      if (isa == Isa::kAvx512) return BF16ToF32Avx512(h, out, n);
      if (isa == Isa::kAvx2) return BF16ToF32Avx2(h, out, n);
      return BF16ToF32Portable(h, out, n);
  }
}

void FromF32(const float* in, Dtype to, void* out, size_t n, Isa isa, uint16_t bf16_nan) {
  auto* h = static_cast<uint16_t*>(out);
  switch (to) {
    case Dtype::kFloat32: std::memcpy(out, in, n * 4); return;
    case Dtype::kFloat16:
      if (isa == Isa::kAvx512) return F32ToF16Avx512(in, h, n);
      if (isa == Isa::kAvx2) return F32ToF16Avx2(in, h, n);
      return F32ToF16Portable(in, h, n);
    case Dtype::kBFloat16:
      if (isa == Isa::kAvx512) return F32ToBF16Avx512(in, h, n, bf16_nan);
      if (isa == Isa::kAvx2) return F32ToBF16Avx2(in, h, n, bf16_nan);
      return F32ToBF16Portable(in, h, n, bf16_nan);
  }
}

}  // namespace

void ConvertElements(Dtype from, const void* in, Dtype to, void* out, size_t n, Isa isa) {
  if (from == to) {
    std::memcpy(out, in, n * DtypeSize(from));
  } else if (from == Dtype::kFloat32) {
    FromF32(static_cast<const float*>(in), to, out, n, isa, 0xFFFFu);
  } else if (to == Dtype::kFloat32) {
    ToF32(from, in, static_cast<float*>(out), n, isa);
  } else {
    // float16 <-> bfloat16, through float32 a piece at a time.
    constexpr size_t kPiece = 1024;
    float buf[kPiece];
    const auto* src = static_cast<const uint16_t*>(in);
    auto* dst = static_cast<uint16_t*>(out);
    for (size_t i = 0; i < n; i += kPiece) {
      const size_t m = n - i < kPiece ? n - i : kPiece;
      ToF32(from, src + i, buf, m, isa);
      FromF32(buf, to, dst + i, m, isa, 0x7FC0u);
    }
  }
}

namespace {
const Isa kIsa = DetectIsa();
}  // namespace

void ConvertElements(Dtype from, const void* in, Dtype to, void* out, size_t n) {
  ConvertElements(from, in, to, out, n, kIsa);
}

void WidenStreaming(Dtype from, const void* in, float* out, size_t n) {
  const auto* h = static_cast<const uint16_t*>(in);
  if (kIsa == Isa::kAvx512 && from == Dtype::kFloat16) return F16ToF32StreamAvx512(h, out, n);
  if (kIsa == Isa::kAvx512 && from == Dtype::kBFloat16) return BF16ToF32StreamAvx512(h, out, n);
  ConvertElements(from, in, Dtype::kFloat32, out, n, kIsa);
}

void StoreFence() {
  if (kIsa == Isa::kAvx512) StoreFenceAvx512();
}

}  // namespace embstore
