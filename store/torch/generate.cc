// Built with -ffp-contract=off (CMakeLists.txt): the serial path below must
// fuse exactly where PyTorch's build does, and only there.

#include "store/torch/generate.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <ctime>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "format/checksum.h"
#include "format/manifest.h"
#include "format/table_format.h"
#include "store/core/parallel.h"
#include "store/core/table_writer.h"
#include "store/core/version.h"
#include "store/torch/mt19937_jump.h"
#include "store/torch/torch_half.h"
#include "store/torch/torch_rng.h"

namespace embstore {

// The text Python's repr gives a float: the shortest digits that read back
// as the same double, positional for exponents in [-4, 16), else scientific
// with a signed two-digit exponent ("1e-05", "1.5e+16").
std::string PythonRepr(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string sci(buf, end);  // e.g. "-1.25e-05"
  const size_t e_pos = sci.find('e');
  std::string mant = sci.substr(0, e_pos);
  const int exp = std::stoi(sci.substr(e_pos + 1));
  std::string sign;
  if (mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  if (exp < -4 || exp >= 16) {
    std::string out = sign;
    out += digits[0];
    if (digits.size() > 1) out.append(".").append(digits, 1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out + e;
  }
  std::string out = sign;
  if (exp < 0) {
    out.append("0.").append(static_cast<size_t>(-exp - 1), '0').append(digits);
    return out;
  }
  const size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) {
    out.append(digits).append(int_len - digits.size(), '0').append(".0");
  } else {
    out.append(digits, 0, int_len).append(".").append(digits, int_len);
  }
  return out;
}

namespace {

std::string Get(const Metadata& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

bool ParseDoubleExact(const std::string& s, double* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && std::isfinite(*v);
}

bool ParseU64Exact(const std::string& s, uint64_t* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Elements per worker chunk: 16 KiB of floats, so drawing the uniforms,
// transforming and hashing them happen in L1.
constexpr uint64_t kChunk = 4096;
// Fresh pages are faulted in ahead of the writes 256 KiB at a time: few
// enough calls, and the kernel's zeroed lines are still in L2 when the rows
// overwrite them.
constexpr uint64_t kPrefaultElems = uint64_t{1} << 16;

// Copies n bytes with non-temporal stores where dst allows (16-byte
// aligned): the table is far larger than the caches and written once. src
// may be unaligned (a row range's first rows start inside a 16-element group
// drawn whole, so its part of the scratch buffer starts anywhere).
void StreamOut(uint8_t* dst, const uint8_t* src, uint64_t n) {
#if defined(__x86_64__)
  if ((reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
    uint64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    }
    std::memcpy(dst + i, src + i, n - i);
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

// Faults in the pages of [p, p + bytes) with one call instead of a trap per
// 4 KiB page (MADV_POPULATE_WRITE, Linux 5.14). A hint: errors are ignored.
void Prefault(uint8_t* p, uint64_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}

// Orders the streamed stores before the worker reports itself finished.
void StreamFence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace

const char* InitName(Init init) { return init == Init::kNormal ? "normal" : "uniform"; }

Result<std::string> CreatedFromEnvironment() {
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr || *env == '\0') return std::string();
  const std::string text(env);
  uint64_t secs = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
  if (ec != std::errc() || end != text.data() + text.size() || secs > uint64_t{253402300799}) {  // 9999-12-31
    return Status::InvalidArgument("SOURCE_DATE_EPOCH: '" + text + "' is not a usable time (whole seconds since 1970)");
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm;
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return Status::InvalidArgument("SOURCE_DATE_EPOCH: " + text + " is not a usable time");
  }
  return std::string(buf);
}

Result<Init> ParseInit(const std::string& name) {
  if (name == "normal") return Init::kNormal;
  if (name == "uniform") return Init::kUniform;
  return Status::InvalidArgument("unknown init '" + name + "' (known: normal, uniform)");
}

Result<TorchKernel> ParseTorchKernel(const std::string& name) {
  if (name == "avx2") return TorchKernel::kAvx2;
  if (name == "scalar" || name == "default") return TorchKernel::kScalar;
  return Status::InvalidArgument("unknown kernel '" + name + "' (known: avx2, scalar)");
}

uint64_t GenerateSpec::count() const { return row_count != 0 ? row_count : rows - std::min(rows, first_row); }

Status ValidateGenerateSpec(const GenerateSpec& spec) {
  if (spec.rows == 0) return Status::InvalidArgument("rows must be at least 1");
  if (spec.dim == 0) return Status::InvalidArgument("dim must be at least 1");
  if (spec.dim > kMaxDim) {
    return Status::InvalidArgument("dim " + std::to_string(spec.dim) + " is over the format's limit of " +
                                   std::to_string(kMaxDim));
  }
  if (spec.rows > kMaxShardedRows) {
    return Status::InvalidArgument("rows " + std::to_string(spec.rows) + " is over the limit of a sharded table, " +
                                   std::to_string(kMaxShardedRows));
  }
  if (spec.first_row >= spec.rows || spec.count() > spec.rows - spec.first_row) {
    return Status::InvalidArgument("rows [" + std::to_string(spec.first_row) + ", +" + std::to_string(spec.count()) +
                                   ") are not rows of the " + std::to_string(spec.rows) + "-row table");
  }
  if (spec.rows > (uint64_t{1} << 62) / (spec.dim * std::max<uint64_t>(1, DtypeSize(spec.dtype)))) {
    // The bytes of the whole table, as a sharded table's manifest takes them.
    return Status::InvalidArgument("rows x dim = " + std::to_string(spec.rows) + " x " + std::to_string(spec.dim) +
                                   " " + DtypeName(spec.dtype) + " is over 2^62 bytes");
  }
  if (spec.count() > kMaxRows) {
    return Status::InvalidArgument("rows " + std::to_string(spec.count()) + " is over the format's limit of " +
                                   std::to_string(kMaxRows) + " (a table file; larger tables are sharded)");
  }
  if (spec.init == Init::kNormal) {
    if (!std::isfinite(spec.mean)) return Status::InvalidArgument("mean must be a finite number");
    if (!std::isfinite(spec.std)) return Status::InvalidArgument("std must be a finite number");
    if (spec.std < 0) {
      return Status::InvalidArgument("std must be >= 0 (PyTorch: normal expects std >= 0.0), got " +
                                     PythonRepr(spec.std));
    }
  } else {
    if (!std::isfinite(spec.low) || !std::isfinite(spec.high)) {
      return Status::InvalidArgument("low and high must be finite numbers");
    }
    if (spec.low > spec.high) {
      return Status::InvalidArgument("low " + PythonRepr(spec.low) + " is greater than high " +
                                     PythonRepr(spec.high) + " (PyTorch: uniform_ expects from <= to)");
    }
    if (spec.high - spec.low > FLT_MAX) {
      return Status::InvalidArgument("high - low exceeds the float32 range (PyTorch: uniform_ expects "
                                     "to - from <= max float)");
    }
  }
  return Status::OK();
}

Metadata GenerateMetadata(const GenerateSpec& spec) {
  Metadata m = spec.extra_metadata;
  m["embstore.version"] = kEmbstoreVersion;
  m["generator"] = "torch";
  m["generator.init"] = InitName(spec.init);
  m["generator.kernel"] = TorchKernelName(spec.kernel);
  m["generator.seed"] = std::to_string(spec.seed);
  // float32 tables record no dtype (the header has it), so they keep the
  // bytes earlier versions wrote; half tables name the PyTorch path.
  if (spec.dtype != Dtype::kFloat32) m["generator.dtype"] = DtypeName(spec.dtype);
  if (spec.count() != spec.rows) {
    // Rows of a larger table: which ones (TorchReproduction slices them).
    m["generator.rows"] = std::to_string(spec.rows);
    m["generator.first_row"] = std::to_string(spec.first_row);
  }
  if (spec.init == Init::kNormal) {
    m["generator.mean"] = PythonRepr(spec.mean);
    m["generator.std"] = PythonRepr(spec.std);
  } else {
    m["generator.low"] = PythonRepr(spec.low);
    m["generator.high"] = PythonRepr(spec.high);
  }
  return m;
}

std::string TorchReproduction(const Metadata& m, uint64_t rows, uint64_t dim) {
  // Values are parsed and printed anew: a crafted file cannot put its own
  // text into lines a user may paste into Python.
  uint64_t seed = 0;
  if (Get(m, "generator") != "torch" || !ParseU64Exact(Get(m, "generator.seed"), &seed)) return "";
  const std::string init = Get(m, "generator.init"), kernel = Get(m, "generator.kernel");
  if (kernel != "avx2" && kernel != "scalar") return "";
  // A table of rows [first, first + rows) of a larger generated table.
  uint64_t total = rows, first = 0;
  if (m.count("generator.rows") &&
      (!ParseU64Exact(Get(m, "generator.rows"), &total) || !ParseU64Exact(Get(m, "generator.first_row"), &first) ||
       first > total || rows > total - first)) {
    return "";
  }
  const std::string shape = std::to_string(total) + ", " + std::to_string(dim);
  const std::string dtype = Get(m, "generator.dtype");
  if (!dtype.empty() && dtype != "float16" && dtype != "bfloat16") return "";
  const std::string typed = dtype.empty() ? shape : shape + ", dtype=torch." + dtype;
  std::string make;
  if (init == "normal") {
    double mean, std;
    if (!ParseDoubleExact(Get(m, "generator.mean"), &mean) || !ParseDoubleExact(Get(m, "generator.std"), &std)) {
      return "";
    }
    make = mean == 0.0 && std == 1.0 && !std::signbit(mean)
               ? "torch.nn.Embedding(" + typed + ").weight.detach()"
               : "torch.empty(" + typed + ").normal_(" + PythonRepr(mean) + ", " + PythonRepr(std) + ")";
  } else if (init == "uniform") {
    double low, high;
    if (!ParseDoubleExact(Get(m, "generator.low"), &low) || !ParseDoubleExact(Get(m, "generator.high"), &high)) {
      return "";
    }
    make = "torch.empty(" + typed + ").uniform_(" + PythonRepr(low) + ", " + PythonRepr(high) + ")";
  } else {
    return "";
  }
  if (total != rows) make += "[" + std::to_string(first) + ":" + std::to_string(first + rows) + "]";
  std::string out = "import torch\ntorch.manual_seed(" + std::to_string(seed) + ")\nweight = " + make + "\n";
  out += kernel == "avx2" ? "# PyTorch's AVX2 CPU kernel: the default on x86-64 CPUs with AVX2 and FMA\n"
                          : "# PyTorch's DEFAULT CPU kernel: run with ATEN_CPU_CAPABILITY=default (same C library)\n";
  return out;
}

namespace {

// Section 8 of torch-rng.md: fewer than 16 normals come from the serial
// double Box-Muller with the generator's one-value cache (empty after
// seeding). The AVX2 build fuses val*std + mean; the DEFAULT build does not.
void NormalSerial(const GenerateSpec& spec, uint64_t n, float* out) {
  constexpr double kTwoPi = 2.0 * 3.14159265358979323846;
  Mt19937 engine(spec.seed);
  double cache = 0;
  for (uint64_t i = 0; i < n; ++i) {
    double v;
    if (i % 2 == 1) {
      v = cache;
    } else {
      const double u1 = UniformDouble(engine.Next64());
      const double u2 = UniformDouble(engine.Next64());
      const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
      const double theta = kTwoPi * u1;
      cache = r * std::sin(theta);
      v = r * std::cos(theta);
    }
    out[i] = static_cast<float>(spec.kernel == TorchKernel::kAvx2 ? std::fma(v, spec.std, spec.mean)
                                                                 : v * spec.std + spec.mean);
  }
}

}  // namespace

namespace {
Status GenerateImpl(const GenerateSpec& spec, uint8_t* data, OutputMemory memory, const RowSink* sink,
                    uint64_t block_rows, uint64_t* block_hashes,
                    const std::function<void(uint64_t, uint64_t)>& progress);
}  // namespace

Status GenerateRows(const GenerateSpec& spec, std::span<float> out, OutputMemory memory, uint64_t block_rows,
                    uint64_t* block_hashes, const std::function<void(uint64_t, uint64_t)>& progress) {
  if (spec.dtype != Dtype::kFloat32) {
    return Status::InvalidArgument(std::string("generate: float32 output for a ") + DtypeName(spec.dtype) + " table");
  }
  return GenerateRows(spec, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size_bytes()), memory,
                      block_rows, block_hashes, progress);
}

Status GenerateRows(const GenerateSpec& spec, std::span<uint8_t> out, OutputMemory memory, uint64_t block_rows,
                    uint64_t* block_hashes, const std::function<void(uint64_t, uint64_t)>& progress) {
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(spec));
  const uint64_t want = spec.count() * spec.dim * DtypeSize(spec.dtype);  // capped: no overflow
  if (out.size() != want) {
    return Status::InvalidArgument("generate: output holds " + std::to_string(out.size()) + " bytes, the table " +
                                   std::to_string(want));
  }
  return GenerateImpl(spec, out.data(), memory, nullptr, block_rows, block_hashes, progress);
}

Status GenerateRowsTo(const GenerateSpec& spec, const RowSink& sink, uint64_t block_rows, uint64_t* block_hashes,
                      const std::function<void(uint64_t, uint64_t)>& progress) {
  return GenerateImpl(spec, nullptr, OutputMemory::kFresh, &sink, block_rows, block_hashes, progress);
}

namespace {

// A worker's rows for a sink, gathered to about this many bytes per write.
constexpr uint64_t kSinkBytes = uint64_t{1} << 20;

// Into memory at data, or (data null) to sink: rows [F, F + C) of the
// rows x dim table (F = spec.first_row, C = spec.count()). Positions in
// data, the sink and the checksum blocks are local (element 0 is the
// first of row F); the engine's draws are the whole table's.
Status GenerateImpl(const GenerateSpec& spec, uint8_t* data, OutputMemory memory, const RowSink* sink,
                    uint64_t block_rows, uint64_t* block_hashes,
                    const std::function<void(uint64_t, uint64_t)>& progress) {
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(spec));
  const uint64_t dim = spec.dim;
  const uint64_t rows = spec.count();     // rows made here
  const uint64_t n = spec.rows * dim;     // elements of the whole table (< 2^62)
  const uint64_t base = spec.first_row * dim;  // the whole table's element that is local element 0
  const uint64_t local_n = rows * dim;
  const Dtype dtype = spec.dtype;
  const uint64_t esize = DtypeSize(dtype);
  const bool half = dtype != Dtype::kFloat32;
  if (block_hashes != nullptr && block_rows == 0) return Status::InvalidArgument("generate: block_rows is 0");
  const uint64_t row_bytes = dim * esize;
  const uint64_t blocks = block_hashes ? (rows + block_rows - 1) / block_rows : 0;
  const bool normal = spec.init == Init::kNormal;
  // Section 5.4: with a partial last block, the last 16 outputs of the
  // whole table come from 16 fresh draws; blocks that touch them are
  // hashed after they are written.
  const bool tail = normal && n >= 16 && n % 16 != 0;
  const uint64_t whole = normal ? n - n % 16 : n;  // elements made by whole 16-blocks (or draws)
  auto block_final_early = [&](uint64_t b) {
    const uint64_t end_elem = base + std::min(rows, (b + 1) * block_rows) * dim;
    return !tail || end_elem <= n - 16;
  };
  // For blocks the tail rewrote: hashed from memory, or read back.
  auto hash_block = [&](uint64_t b) -> Status {
    const uint64_t first = b * block_rows, count = std::min(block_rows, rows - first);
    if (data != nullptr) {
      block_hashes[b] = Hash64(data + first * row_bytes, count * row_bytes);
      return Status::OK();
    }
    std::vector<uint8_t> back(count * row_bytes);
    EMB_RETURN_IF_ERROR(sink->read_back(first * dim, back));
    block_hashes[b] = Hash64(back.data(), back.size());
    return Status::OK();
  };

  if (normal && n < 16) {
    float v[16];
    uint8_t bytes[64];
    NormalSerial(spec, n, v);
    for (uint64_t i = 0; i < n; ++i) {
      if (half) {
        const uint16_t h = RoundToHalfType(dtype, v[i]);  // double -> float -> the type, as c10 casts
        std::memcpy(bytes + 2 * i, &h, 2);
      } else {
        std::memcpy(bytes + 4 * i, &v[i], 4);
      }
    }
    const std::span<const uint8_t> mine(bytes + base * esize, local_n * esize);
    if (data != nullptr) {
      std::memcpy(data, mine.data(), mine.size());
    } else {
      EMB_RETURN_IF_ERROR(sink->write(0, mine));
    }
    for (uint64_t b = 0; b < blocks; ++b) EMB_RETURN_IF_ERROR(hash_block(b));
    if (progress) progress(local_n, local_n);
    return Status::OK();
  }

  // Workers own whole units of rows: a unit starts on a 16-element boundary
  // of the whole table when the rows start on one (normal), and on a
  // checksum block boundary (when hashing). A worker whose rows start or
  // end inside a 16-element group draws the whole group and keeps its part.
  uint64_t unit = normal && base % 16 == 0 ? 16 / std::gcd(dim, uint64_t{16}) : 1;
  if (block_hashes) unit = std::lcm(unit, block_rows);
  const uint64_t units = (rows + unit - 1) / unit;
  // Elements the workers make (the rest, if any, come from the tail).
  const uint64_t made = std::min(base + local_n, whole) - std::min(base, whole);
  // At least ~1 MiB of work per thread, or threads cost more than they give.
  const unsigned threads = ResolveThreads(spec.threads, std::min(units, local_n / (uint64_t{1} << 18) + 1));
  const Isa isa = DetectIsa();
  const float mean = static_cast<float>(spec.mean), std_f = static_cast<float>(spec.std);
  const float low = static_cast<float>(spec.low), range = static_cast<float>(spec.high) - low;
  // Half types: PyTorch's generic kernels (store/torch/torch_half.h).
  std::unique_ptr<HalfNormalKernel> half_normal;
  if (half && normal) half_normal = std::make_unique<HalfNormalKernel>(dtype, spec.kernel, spec.mean, spec.std);
  // Draws for elements [e, e + m) (m a multiple of 16 for normal) into
  // `to`, m elements of the table's type; `draws` is scratch for half types.
  auto make = [&](Mt19937& engine, uint64_t m, uint8_t* to, uint32_t* draws) {
    if (!half) {
      float* f = reinterpret_cast<float*>(to);
      engine.FillUniform(f, m);
      if (normal) {
        NormalBlocks(spec.kernel, isa, f, m / 16, mean, std_f);
      } else {
        UniformTransform(spec.kernel, isa, f, f, m, low, range);
      }
      return;
    }
    engine.Fill(draws, m);
    uint16_t* h = reinterpret_cast<uint16_t*>(to);
    if (normal) {
      half_normal->Blocks(draws, h, m / 16);
    } else {
      HalfUniform(dtype, draws, h, m, spec.low, spec.high);
    }
  };
  std::atomic<uint64_t> done{0};
  std::vector<Status> errors(threads);
  std::atomic<bool> failed{false};

  auto work = [&](unsigned w) {
    const uint64_t r0 = std::min(rows, units * w / threads * unit);
    const uint64_t r1 = std::min(rows, units * (w + 1) / threads * unit);
    // The whole table's elements [g0, g1) are this worker's to make; it
    // draws from a0, the start of g0's 16-element group (normal).
    const uint64_t g0 = base + r0 * dim, g1 = std::min(base + r1 * dim, whole);
    if (g1 <= g0) return;
    const uint64_t a0 = normal ? g0 - g0 % 16 : g0;
    const uint64_t a1 = normal ? (g1 + 15) / 16 * 16 : g1;  // <= whole, a multiple of 16
    Mt19937 engine = Mt19937AfterDraws(spec.seed, a0);
    // Each chunk is drawn, transformed and hashed in this L1-sized scratch
    // buffer, then copied to its place: the destination is written once and
    // never read back to hash. Resident pages get non-temporal stores (no
    // read-for-ownership); fresh pages are faulted in just ahead (zeroed by
    // the kernel, so in cache) and written through the cache, since a
    // non-temporal store to a cached line costs a second write-back.
    alignas(64) uint8_t scratch[kChunk * 4];
    alignas(64) uint32_t draws[kChunk];  // half types: the raw draws
    StreamingHash hash;
    uint64_t block = block_hashes ? r0 / block_rows : 0;
    const bool fresh = memory == OutputMemory::kFresh;
    const uint64_t l1 = g1 - base;  // local end
    uint64_t faulted = g0 - base;   // kFresh: pages of local [l0, faulted) are in
    // To a sink: chunks gathered into about kSinkBytes, then written.
    std::vector<uint8_t> pending;
    uint64_t pending_first = g0 - base;
    auto flush = [&]() {
      if (pending.empty() || !errors[w].ok()) return;
      errors[w] = sink->write(pending_first, pending);
      if (!errors[w].ok()) failed.store(true, std::memory_order_relaxed);
      pending_first += pending.size() / esize;
      pending.clear();
    };
    if (sink != nullptr) pending.reserve(kSinkBytes + sizeof(scratch));
    for (uint64_t e = a0; e < a1 && !IsCancelled(spec.cancel) && !failed.load(std::memory_order_relaxed);) {
      const uint64_t m = std::min(kChunk, a1 - e);  // a multiple of 16 for normal
      // The part of this chunk that is ours, in local elements [u0, u1).
      const uint64_t u0 = std::max(e, g0) - base, u1 = std::min(e + m, g1) - base;
      const uint8_t* ours = scratch + (std::max(e, g0) - e) * esize;
      if (data != nullptr && fresh && u1 > faulted) {
        const uint64_t next = std::min(l1, faulted + kPrefaultElems);
        Prefault(data + faulted * esize, (next - faulted) * esize);
        faulted = next;
      }
      make(engine, m, scratch, draws);
      for (uint64_t pos = u0; block_hashes && pos < u1;) {
        const uint64_t block_end = std::min(rows, (block + 1) * block_rows) * dim;
        const uint64_t take = std::min(u1, block_end) - pos;
        const bool early = block_final_early(block);
        if (early) hash.Update(ours + (pos - u0) * esize, take * esize);
        pos += take;
        if (pos == block_end) {
          if (early) block_hashes[block] = hash.Digest();
          hash.Reset();
          ++block;
        }
      }
      if (sink != nullptr) {
        pending.insert(pending.end(), ours, ours + (u1 - u0) * esize);
        if (pending.size() >= kSinkBytes) flush();
      } else if (fresh) {
        std::memcpy(data + u0 * esize, ours, (u1 - u0) * esize);  // hits the freshly zeroed lines
      } else {
        StreamOut(data + u0 * esize, ours, (u1 - u0) * esize);
      }
      e += m;
      done.fetch_add(u1 - u0, std::memory_order_relaxed);
    }
    if (sink != nullptr && !IsCancelled(spec.cancel)) flush();
    StreamFence();
  };
  EMB_RETURN_IF_ERROR(RunParallel(threads, work, &done, made, progress, spec.cancel));
  for (const Status& st : errors) EMB_RETURN_IF_ERROR(st);

  if (tail && base + local_n > n - 16) {
    // The tail's 16 elements [n - 16, n), where they overlap these rows.
    alignas(64) uint8_t t[16 * 4];
    uint32_t draws[16];
    Mt19937 engine = Mt19937AfterDraws(spec.seed, n);
    make(engine, 16, t, draws);
    const uint64_t from = std::max(base, n - 16);  // whole-table element
    const std::span<const uint8_t> part(t + (from - (n - 16)) * esize, (base + local_n - from) * esize);
    if (data != nullptr) {
      std::memcpy(data + (from - base) * esize, part.data(), part.size());
    } else {
      EMB_RETURN_IF_ERROR(sink->write(from - base, part));
    }
  }
  for (uint64_t b = 0; b < blocks; ++b) {
    if (!block_final_early(b)) EMB_RETURN_IF_ERROR(hash_block(b));
  }
  return Status::OK();
}

}  // namespace

Status GenerateTable(const std::string& path, const GenerateSpec& spec,
                     const std::function<void(uint64_t, uint64_t)>& progress) {
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(spec));
  WriterOptions options;
  options.dtype = spec.dtype;
  options.metadata = GenerateMetadata(spec);
  options.sync = spec.sync;
  options.cancel = spec.cancel;
  const uint64_t rows = spec.count();
  EMB_ASSIGN_OR_RETURN(auto writer, TableWriter::Create(path, rows, spec.dim, options));
  const Header& h = writer->header();
  auto rows_progress = [&](uint64_t done, uint64_t total) {
    if (progress) progress(total ? done * rows / total : rows, rows);
  };
  // Rows go to the file by pwrite from the workers, through the page cache:
  // a fresh mapping would cost a zeroing pass and a fault per page (measured
  // here: the mapped path took 4.2x a dd of as many zero bytes for the
  // 1.24 GB bfloat16 table). A full disk is a write error.
  const uint64_t esize = DtypeSize(spec.dtype);
  RowSink sink;
  sink.write = [&](uint64_t first, std::span<const uint8_t> bytes) { return writer->WriteDataAt(first * esize, bytes); };
  sink.read_back = [&](uint64_t first, std::span<uint8_t> bytes) { return writer->ReadDataAt(first * esize, bytes); };
  std::vector<uint64_t> hashes(h.checksum_count);
  EMB_RETURN_IF_ERROR(GenerateRowsTo(spec, sink, h.checksum_block_rows, hashes.data(), rows_progress));
  return writer->FinishWritten(hashes);
}

}  // namespace embstore
