// embstore generate: a seeded table (float32, float16 or bfloat16),
// bit-identical to PyTorch.

#include "store/interop/shards.h"
#include "store/torch/generate.h"
#include "tools/cli.h"

namespace embstore::cli {

int GenerateMain(int argc, char** argv) {
  std::string rows, dim, seed, init, mean, std_dev, low, high, kernel, threads, output, dtype, shard_rows;
  po::options_description options("options");
  options.add_options()
      ("rows", po::value(&rows)->required(), "number of rows V (vocabulary size)")
      ("dim", po::value(&dim)->required(), "values per row D")
      ("dtype", po::value(&dtype)->default_value("float32"), "float32, float16 or bfloat16 (nn.Embedding(..., dtype=))")
      ("seed", po::value(&seed)->default_value("0"), "torch.manual_seed value (only the low 32 bits matter)")
      ("init", po::value(&init)->default_value("normal"), "normal (nn.Embedding, randn) or uniform (uniform_, rand)")
      ("mean", po::value(&mean)->default_value("0"), "normal: mean")
      ("std", po::value(&std_dev)->default_value("1"), "normal: standard deviation (>= 0)")
      ("low", po::value(&low)->default_value("0"), "uniform: lower bound")
      ("high", po::value(&high)->default_value("1"), "uniform: upper bound (>= low)")
      ("torch-kernel", po::value(&kernel)->default_value("avx2"),
       "PyTorch CPU kernel to match: avx2 (x86-64 default) or scalar (ATEN_CPU_CAPABILITY=default)")
      ("threads,T", po::value(&threads)->default_value("0"), "worker threads, 0: all cores (same bits for any count)")
      ("output,o", po::value(&output)->required(),
       "table file to write (replaced atomically); with --shard-rows, the folder of the sharded table")
      ("shard-rows", po::value(&shard_rows),
       "write a sharded table: shards of N rows (the last shorter) and manifest.json in the -o folder")
      ("no-fsync", "skip fsync before the rename: faster, but after a power loss the table may be lost "
                   "(never half-written under its name)");
  po::variables_map vm;
  const std::string usage =
      "usage: embstore generate --rows V --dim D [--seed S] [--dtype T] [--init normal|uniform] -o FILE\n\n"
      "Writes, bit for bit, the V x D table PyTorch makes with\n"
      "  torch.manual_seed(S); torch.nn.Embedding(V, D, dtype=T).weight    (= torch.randn(V, D, dtype=T))\n"
      "or, with --mean/--std or --init uniform --low/--high, torch.empty(V, D, dtype=T).normal_(mean, std)\n"
      "or .uniform_(low, high). float16 and bfloat16 follow PyTorch's own half-precision path (not the\n"
      "float32 table rounded). Set SOURCE_DATE_EPOCH to record a creation time; otherwise equal\n"
      "commands write equal bytes.\n\n"
      "With --shard-rows N, -o names a folder: it gets shards shard-000000.emb, ... of N rows each and\n"
      "manifest.json, which every command opens as one table; the rows, concatenated, are the same bytes.";
  if (!ParseArgs(argc, argv, usage, options, {}, &vm)) return kExitOk;

  GenerateSpec spec;
  spec.rows = ParseU64(rows, "--rows");
  spec.dim = ParseU64(dim, "--dim");
  spec.seed = ParseSeed(seed);
  spec.threads = ParseThreads(threads);
  auto parsed_dtype = ParseDtype(dtype);
  if (!parsed_dtype.ok()) throw UsageError{"--dtype: " + parsed_dtype.status().message()};
  spec.dtype = *parsed_dtype;
  spec.sync = vm.count("no-fsync") == 0;
  auto parsed_init = ParseInit(init);
  if (!parsed_init.ok()) throw UsageError{"--init: " + parsed_init.status().message()};
  spec.init = *parsed_init;
  const bool uniform = spec.init == Init::kUniform;
  if (uniform && (!vm["mean"].defaulted() || !vm["std"].defaulted())) {
    throw UsageError{"--mean and --std apply to --init normal; uniform takes --low and --high"};
  }
  if (!uniform && (!vm["low"].defaulted() || !vm["high"].defaulted())) {
    throw UsageError{"--low and --high apply to --init uniform"};
  }
  spec.mean = ParseDouble(mean, "--mean");
  spec.std = ParseDouble(std_dev, "--std");
  spec.low = ParseDouble(low, "--low");
  spec.high = ParseDouble(high, "--high");
  auto parsed_kernel = ParseTorchKernel(kernel);
  if (!parsed_kernel.ok()) throw UsageError{"--torch-kernel: " + parsed_kernel.status().message()};
  spec.kernel = *parsed_kernel;
  auto created = CreatedFromEnvironment();  // SOURCE_DATE_EPOCH
  if (!created.ok()) throw UsageError{created.status().message()};
  if (!created->empty()) spec.extra_metadata["created"] = *created;

  if (vm.count("shard-rows")) {
    const uint64_t n = ParseU64(shard_rows, "--shard-rows");
    if (n == 0) throw UsageError{"--shard-rows must be at least 1"};
    ProgressBar bar("generate", spec.rows, "rows");
    Result<std::string> manifest = Interruptible([&](const CancelToken* cancel) {
      spec.cancel = cancel;
      ShardWorkOptions o;
      o.threads = spec.threads;
      o.sync = spec.sync;
      o.cancel = cancel;
      o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
      return GenerateSharded(output, spec, n, o);
    });
    bar.Done();
    if (!manifest.ok()) return Report("generate", manifest.status());
    return kExitOk;
  }
  if (spec.rows > kMaxRows) {
    throw UsageError{"rows " + std::to_string(spec.rows) + " is over the format's limit of " + std::to_string(kMaxRows) +
                     " for one table file: write a sharded table (--shard-rows N)"};
  }
  ProgressBar bar("generate", spec.rows, "rows");
  Status st = Interruptible([&](const CancelToken* cancel) {
    spec.cancel = cancel;
    return GenerateTable(output, spec, [&](uint64_t done, uint64_t) { bar.Update(done); });
  });
  bar.Done();
  if (!st.ok()) return Report("generate", st);
  return kExitOk;
}

}  // namespace embstore::cli
