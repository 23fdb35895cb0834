// Built with -ffp-contract=off (CMakeLists.txt): every product and sum is
// rounded where torch_half.h says, and the one fusion is an explicit fmaf.

#include "store/torch/torch_half.h"

#include <cmath>

#include "format/half.h"

namespace embstore {

namespace {

constexpr double kTwoPi = 2.0 * 3.14159265358979323846;  // 2.0f * c10::pi<double>

#include "store/torch/torch_half_tables.inc"

float RoundF16(float v) { return HalfToFloat(FloatToHalf(v)); }
// c10::BFloat16 turns NaN into 0x7FC0 (none arises here from finite input).
float RoundBF16(float v) { return std::isnan(v) ? BFloat16ToFloat(0x7FC0) : BFloat16ToFloat(FloatToBFloat16(v)); }

TorchHalfTables FromBits(const uint16_t* radius, const uint32_t* cos, const uint32_t* sin, size_t n, bool f16) {
  TorchHalfTables t;
  for (size_t k = 0; k < n; ++k) {
    t.radius.push_back(f16 ? HalfToFloat(radius[k]) : BFloat16ToFloat(radius[k]));
    t.cos.push_back(BitsFloat(cos[k]));
    t.sin.push_back(BitsFloat(sin[k]));
  }
  return t;
}

}  // namespace

const TorchHalfTables& CommittedHalfTables(Dtype dtype) {
  static const TorchHalfTables f16 = FromBits(kF16Radius, kF16Cos, kF16Sin, 2048, true);
  static const TorchHalfTables bf16 = FromBits(kBF16Radius, kBF16Cos, kBF16Sin, 256, false);
  return dtype == Dtype::kFloat16 ? f16 : bf16;
}

TorchHalfTables ComputeHalfTables(Dtype dtype) {
  TorchHalfTables t;
  const bool f16 = dtype == Dtype::kFloat16;
  const int n = f16 ? 2048 : 256;
  for (int k = 0; k < n; ++k) {
    const float x = static_cast<float>(k) / static_cast<float>(n);  // the stored uniform, exact
    float s, c;
    if (f16) {
      t.radius.push_back(RoundF16(std::sqrt(-2.0f * ::logf(RoundF16(1.0f - x)))));
      ::sincosf(RoundF16(static_cast<float>(static_cast<double>(x) * kTwoPi)), &s, &c);
    } else {
      t.radius.push_back(RoundBF16(std::sqrt(RoundBF16(-2.0f * RoundBF16(::logf(RoundBF16(1.0f - x)))))));
      ::sincosf(RoundBF16(static_cast<float>(static_cast<double>(x) * kTwoPi)), &s, &c);
      c = RoundBF16(c);
      s = RoundBF16(s);
    }
    t.cos.push_back(c);
    t.sin.push_back(s);
  }
  return t;
}

uint16_t RoundToHalfType(Dtype dtype, float v) {
  if (dtype == Dtype::kFloat16) return FloatToHalf(v);
  return std::isnan(v) ? uint16_t{0x7FC0} : FloatToBFloat16(v);
}

HalfNormalKernel::HalfNormalKernel(Dtype dtype, TorchKernel kernel, double mean, double std)
    : dtype_(dtype), fused_(kernel == TorchKernel::kAvx2), tables_(&CommittedHalfTables(dtype)), isa_(DetectIsa()) {
  const bool f16 = dtype == Dtype::kFloat16;
  mean_ = f16 ? RoundF16(static_cast<float>(mean)) : RoundBF16(static_cast<float>(mean));
  std_ = f16 ? RoundF16(static_cast<float>(std)) : RoundBF16(static_cast<float>(std));
  if (!f16) {  // 65,536 pairs: cheaper to tabulate once than to compute per element
    pairs_.resize(65536);
    for (uint32_t k1 = 0; k1 < 256; ++k1) {
      for (uint32_t k2 = 0; k2 < 256; ++k2) {
        pairs_[k1 << 8 | k2] = uint32_t{Out(k1, k2, false)} | uint32_t{Out(k1, k2, true)} << 16;
      }
    }
  }
}

uint16_t HalfNormalKernel::Out(uint32_t k1, uint32_t k2, bool sin_lane) const {
  const float r = tables_->radius[k1];
  const float t = sin_lane ? tables_->sin[k2] : tables_->cos[k2];
  if (dtype_ == Dtype::kFloat16) {
    const float p = r * t;
    return FloatToHalf(fused_ ? std::fmaf(p, std_, mean_) : p * std_ + mean_);
  }
  return RoundToHalfType(dtype_, RoundBF16(RoundBF16(r * t) * std_) + mean_);
}

void HalfNormalKernel::Blocks(const uint32_t* d, uint16_t* out, uint64_t nblocks) const {
  if (dtype_ == Dtype::kBFloat16) {
    if (isa_ == Isa::kAvx512) return BFloat16PairBlocksAvx512(pairs_.data(), d, out, nblocks);
    for (uint64_t b = 0; b < nblocks; ++b, d += 16, out += 16) {
      for (int j = 0; j < 8; ++j) {
        const uint32_t v = pairs_[(d[j] & 0xFFu) << 8 | (d[j + 8] & 0xFFu)];
        out[j] = static_cast<uint16_t>(v);
        out[j + 8] = static_cast<uint16_t>(v >> 16);
      }
    }
    return;
  }
  const float* radius = tables_->radius.data();
  const float* cos = tables_->cos.data();
  const float* sin = tables_->sin.data();
  const bool plain = mean_ == 0.0f && !std::signbit(mean_) && std_ == 1.0f;  // nn.Embedding: p * 1 + 0
  for (uint64_t b = 0; b < nblocks; ++b, d += 16, out += 16) {
    for (int j = 0; j < 8; ++j) {
      const float r = radius[d[j] & 0x7FFu];
      const uint32_t k2 = d[j + 8] & 0x7FFu;
      const float pc = r * cos[k2], ps = r * sin[k2];
      if (plain) {  // fmaf(p, 1, +0) and (p * 1) + 0 are both p + 0 (which turns -0 into +0)
        out[j] = FloatToHalf(pc + 0.0f);
        out[j + 8] = FloatToHalf(ps + 0.0f);
      } else if (fused_) {
        out[j] = FloatToHalf(std::fmaf(pc, std_, mean_));
        out[j + 8] = FloatToHalf(std::fmaf(ps, std_, mean_));
      } else {
        out[j] = FloatToHalf(pc * std_ + mean_);
        out[j + 8] = FloatToHalf(ps * std_ + mean_);
      }
    }
  }
}

void HalfUniform(Dtype dtype, const uint32_t* draws, uint16_t* out, uint64_t n, double low, double high) {
  const bool f16 = dtype == Dtype::kFloat16;
  const float from = f16 ? RoundF16(static_cast<float>(low)) : RoundBF16(static_cast<float>(low));
  const float to = f16 ? RoundF16(static_cast<float>(high)) : RoundBF16(static_cast<float>(high));
  const float w = f16 ? RoundF16(to - from) : RoundBF16(to - from);
  const uint32_t mask = f16 ? 0x7FFu : 0xFFu;
  const float scale = f16 ? 1.0f / 2048.0f : 1.0f / 256.0f;
  for (uint64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(draws[i] & mask) * scale;
    out[i] = RoundToHalfType(dtype, x * w + from);  // x * w is exact: fused or not, one rounding
  }
}

}  // namespace embstore
