#include "store/generate.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "store/table_writer.h"
#include "store/torch_rng.h"
#include "store/version.h"

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
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out + e;
  }
  if (exp < 0) return sign + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  const size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return sign + digits + std::string(int_len - digits.size(), '0') + ".0";
  return sign + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

namespace {

std::string Get(const Metadata& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace

const char* TorchKernelName(TorchKernel kernel) {
  switch (kernel) {
    case TorchKernel::kScalar: return "scalar";
  }
  return "unknown";
}

Metadata GenerateMetadata(const GenerateSpec& spec) {
  Metadata m = spec.extra_metadata;
  m["embstore.version"] = kEmbstoreVersion;
  m["generator"] = "torch.normal_";
  m["generator.init"] = "normal";
  m["generator.kernel"] = TorchKernelName(spec.kernel);
  m["generator.mean"] = PythonRepr(spec.mean);
  m["generator.std"] = PythonRepr(spec.std);
  m["generator.seed"] = std::to_string(spec.seed);
  return m;
}

std::string TorchReproduction(const Metadata& m, uint64_t table_rows, uint64_t table_dim) {
  if (Get(m, "generator") != "torch.normal_") return "";
  const std::string rows = std::to_string(table_rows), dim = std::to_string(table_dim);
  std::string out = "import torch\n";
  out += "torch.manual_seed(" + Get(m, "generator.seed") + ")\n";
  const std::string mean = Get(m, "generator.mean"), std = Get(m, "generator.std");
  if (mean == "0.0" && std == "1.0") {
    out += "weight = torch.nn.Embedding(" + rows + ", " + dim + ").weight.detach()\n";
  } else {
    out += "weight = torch.empty(" + rows + ", " + dim + ").normal_(" + mean + ", " + std + ")\n";
  }
  if (Get(m, "generator.kernel") == "scalar") {
    out += "# PyTorch's DEFAULT CPU kernel: run with ATEN_CPU_CAPABILITY=default (or on a CPU without AVX2)\n";
  }
  return out;
}

Status ValidateGenerateSpec(const GenerateSpec& spec) {
  if (spec.rows == 0) return Status::InvalidArgument("--rows must be at least 1");
  if (spec.dim == 0) return Status::InvalidArgument("--dim must be at least 1");
  if (!std::isfinite(spec.mean)) return Status::InvalidArgument("--mean must be a finite number");
  if (!std::isfinite(spec.std)) return Status::InvalidArgument("--std must be a finite number");
  if (spec.std < 0) {
    return Status::InvalidArgument("--std must be >= 0 (PyTorch: normal expects std >= 0.0), got " +
                                   PythonRepr(spec.std));
  }
  return Status::OK();
}

Status GenerateTable(const std::string& path, const GenerateSpec& spec,
                     const std::function<void(uint64_t, uint64_t)>& progress) {
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(spec));
  WriterOptions options;
  options.metadata = GenerateMetadata(spec);
  EMB_ASSIGN_OR_RETURN(auto writer, TableWriter::Create(path, spec.rows, spec.dim, options));

  uint64_t n;
  if (__builtin_mul_overflow(spec.rows, spec.dim, &n)) {
    return Status::InvalidArgument("rows*dim overflows 64 bits");
  }
  TorchNormalStream stream(spec.seed, n, spec.mean, spec.std);
  // About 1 MiB of rows at a time (at least one row).
  const uint64_t chunk_rows = std::max<uint64_t>(1, (uint64_t{1} << 18) / spec.dim);
  std::vector<float> buf(chunk_rows * spec.dim);
  for (uint64_t row = 0; row < spec.rows;) {
    const uint64_t take = std::min(chunk_rows, spec.rows - row);
    stream.Fill(buf.data(), take * spec.dim);
    EMB_RETURN_IF_ERROR(writer->Append({buf.data(), take * spec.dim}));
    row += take;
    if (progress) progress(row, spec.rows);
  }
  return writer->Finish();
}

}  // namespace embstore
