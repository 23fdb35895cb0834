// embstore import / export / convert: tables in from .npy, .safetensors and
// raw float32, out to .npy and .safetensors, and from one element type to
// another (store/interop/convert.h).

#include <cstdio>
#include <cstring>

#include "store/core/atomic_file.h"
#include "store/interop/convert.h"
#include "store/interop/wordvec.h"
#include "tools/cli.h"

namespace embstore::cli {

namespace {

// --dtype's value, or a usage error naming the accepted ones.
Dtype DtypeOption(const std::string& name) {
  auto d = ParseDtype(name);
  if (!d.ok()) throw UsageError{"--dtype: " + d.status().message()};
  return *d;
}

}  // namespace

int ImportMain(int argc, char** argv) {
  std::string source, output, tensor, format = "auto", rows = "0", dim = "0", dtype;
  bool force = false, quiet = false, list = false, no_fsync = false;
  po::options_description options("options");
  options.add_options()
      ("source", po::value(&source)->required(), "FILE.npy, FILE.safetensors, raw float32, or word vectors")
      ("output,o", po::value(&output), "the new table (never half-written)")
      ("tensor", po::value(&tensor), "safetensors: the tensor to import (default: the only 2-D one)")
      ("list", po::bool_switch(&list), "safetensors: list the tensors and stop")
      ("dtype", po::value(&dtype), "the table's type: float32, float16 or bfloat16 (default: the source's; float64 -> float32)")
      ("format", po::value(&format)->default_value("auto"),
       "auto, npy, safetensors, raw, word2vec (text; also fastText .vec), word2vec-binary or glove")
      ("rows", po::value(&rows)->default_value("0"), "raw: rows")
      ("dim", po::value(&dim)->default_value("0"), "raw: floats per row")
      ("force,f", po::bool_switch(&force), "overwrite an existing output file")
      ("quiet,q", po::bool_switch(&quiet), "no progress bar")
      ("no-fsync", po::bool_switch(&no_fsync), "skip fsync before the rename");
  po::positional_options_description positional;
  positional.add("source", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore import SRC -o FILE.emb [--tensor NAME] [--format F] [--rows R --dim D]\n"
      "       embstore import FILE.safetensors --list\n\n"
      "Makes a table from a .npy (versions 1.0-3.0: <f4, <f2, <f8, either byte order, Fortran order\n"
      "transposed), a safetensors tensor (F32, F16, BF16, F64) or raw little-endian float32. The\n"
      "table keeps the source's type (float64 becomes float32); --dtype float32 widens half types\n"
      "exactly, --dtype float16|bfloat16 rounds as PyTorch's .to(dtype). Streams: the source is\n"
      "never loaded whole. The table's metadata records the source and the XXH3-64 of its bytes.\n\n"
      "Word vectors become a table with keys: word2vec binary (.bin) and text, fastText .vec, GloVe\n"
      "(.txt without a 'COUNT DIM' line), as the original tools and gensim write them. Values are\n"
      "read as gensim reads them; any bad line or record is named and nothing is written.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  ImportOptions o;
  auto parsed_format = ParseSourceFormat(format);
  if (!parsed_format.ok()) throw UsageError{"--format: " + parsed_format.status().message()};
  o.format = *parsed_format;
  o.rows = ParseU64(rows, "--rows");
  o.dim = ParseU64(dim, "--dim");
  o.tensor = tensor;
  o.sync = !no_fsync;
  if (!dtype.empty()) o.dtype = DtypeOption(dtype);
  if (list) {
    auto tensors = ListSafetensors(source);
    if (!tensors.ok()) return Report("import", tensors.status());
    for (const auto& t : *tensors) {
      std::printf("%-40s %-5s %-20s %llu bytes\n", ForTerminal(t.name).c_str(), ForTerminal(t.dtype).c_str(),
                  ShapeText(t.shape).c_str(), (unsigned long long)(t.end - t.begin));
    }
    return FinishStdout("import");
  }
  if (output.empty()) throw UsageError{"-o FILE.emb is required"};
  o.replace = force;
  // Checked again, atomically, when the table is put in place.
  if (Status st = CheckOutput(output, force); !st.ok()) return Report("import", st);
  ProgressBar bar("import", "bytes");
  if (!quiet) o.progress = bar.Callback();
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return ImportTable(source, output, o);
  });
  bar.Done();
  return st.ok() ? kExitOk : Report("import", st);
}

int ExportMain(int argc, char** argv) {
  std::string input, output, tensor_name = "weight", dtype, format;
  bool force = false, quiet = false, no_fsync = false, binary = false;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("table", po::value(&input)->required(), "FILE.emb, FILE.embz or shm:NAME")
      ("output,o", po::value(&output)->required(), "OUT.npy, OUT.safetensors, or word2vec (never half-written)")
      ("format", po::value(&format), "npy, safetensors or word2vec (default: by the name; .bin is binary word2vec, .vec text)")
      ("binary", po::bool_switch(&binary), "word2vec: the binary format (float32 bits) instead of text")
      ("tensor-name", po::value(&tensor_name)->default_value("weight"), "safetensors: the tensor's name")
      ("dtype", po::value(&dtype), "write float32, float16 or bfloat16 (default: the table's own type)")
      ("force,f", po::bool_switch(&force), "overwrite an existing output file")
      ("quiet,q", po::bool_switch(&quiet), "no progress bar")
      ("no-fsync", po::bool_switch(&no_fsync), "skip fsync before the rename");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("table", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore export TABLE -o OUT.npy | OUT.safetensors [--tensor-name weight] [--dtype T]\n"
      "       embstore export TABLE -o OUT --format word2vec [--binary]\n\n"
      "Writes the table in its own type as a .npy that numpy.load(..., mmap_mode='r') maps without\n"
      "a copy (<f4 or <f2; NumPy has no bfloat16, so a bfloat16 table needs --dtype float32), or as\n"
      "a safetensors file with one F32, F16 or BF16 tensor (the table's metadata in __metadata__).\n"
      "A table with keys can be written as word2vec for gensim's load_word2vec_format: --binary\n"
      "writes each row's float32 bits, text each value as NumPy prints a float32.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  auto ends_with = [&](const char* s) {
    const size_t n = std::strlen(s);
    return output.size() >= n && output.compare(output.size() - n, n, s) == 0;
  };
  // By the name, as import reads them: .bin is binary word2vec, .vec text.
  if (format.empty() && (ends_with(".bin") || ends_with(".vec"))) {
    format = "word2vec";
    if (ends_with(".bin")) binary = true;
  }
  if (!format.empty() && format != "word2vec" && format != "npy" && format != "safetensors") {
    throw UsageError{"--format: '" + format + "' is not npy, safetensors or word2vec"};
  }
  const bool word2vec = format == "word2vec";
  if (binary && !word2vec) throw UsageError{"--binary applies to --format word2vec"};
  if (word2vec && !dtype.empty()) throw UsageError{"--dtype does not apply to word2vec (always float32)"};
  if (word2vec && vm.count("tensor-name") && !vm["tensor-name"].defaulted()) {
    throw UsageError{"--tensor-name applies to safetensors"};
  }
  if (!word2vec && !format.empty() && !ends_with(format == "npy" ? ".npy" : ".safetensors")) {
    throw UsageError{"--format " + format + ": name the output *." + format};
  }
  const OpenOptions open_options = OpenOptionsFrom(owners);
  if (Status st = CheckOutput(output, force); !st.ok()) return Report("export", st);
  auto table = OpenTable(input, open_options);
  if (!table.ok()) return Report("export", table.status());
  ExportOptions o;
  o.tensor_name = tensor_name;
  if (!dtype.empty()) o.dtype = DtypeOption(dtype);
  o.sync = !no_fsync;
  o.replace = force;
  ProgressBar bar("export", (*table)->rows(), "rows");
  if (!quiet && bar.enabled()) o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return word2vec ? ExportWord2Vec(**table, output, binary, o) : ExportTable(**table, output, o);
  });
  bar.Done();
  return st.ok() ? kExitOk : Report("export", st);
}

int ConvertMain(int argc, char** argv) {
  std::string input, output, dtype;
  bool force = false, quiet = false, no_fsync = false;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("table", po::value(&input)->required(), "FILE.emb, FILE.embz or shm:NAME")
      ("output,o", po::value(&output)->required(), "the new table, FILE.emb (never half-written)")
      ("dtype", po::value(&dtype)->required(), "float32, float16 or bfloat16")
      ("force,f", po::bool_switch(&force), "overwrite an existing output file")
      ("quiet,q", po::bool_switch(&quiet), "no progress bar")
      ("no-fsync", po::bool_switch(&no_fsync), "skip fsync before the rename");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("table", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore convert TABLE -o OUT.emb --dtype float32|float16|bfloat16\n\n"
      "Writes the table's rows as another element type, rounded exactly as PyTorch's\n"
      "Tensor.to(dtype) rounds: to nearest, ties to even; overflow to infinity; subnormals kept;\n"
      "NaN stays NaN (float16 0x7E00 with its sign, bfloat16 0xFFFF). Widening is exact. The new\n"
      "table's metadata records the source, its type and the XXH3-64 of its rows. A sharded table\n"
      "(its manifest) is converted shard by shard into the folder -o names, with a new manifest.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  ConvertOptions o;
  o.dtype = DtypeOption(dtype);
  o.sync = !no_fsync;
  o.replace = force;
  const OpenOptions open_options = OpenOptionsFrom(owners);
  auto table = OpenTable(input, open_options);
  if (table.ok() && (*table)->manifest() != nullptr) {  // a sharded table: -o is a folder
    ShardOpOptions so;
    so.op = ShardOp::kConvert;
    so.dtype = o.dtype;
    so.sync = o.sync;
    so.replace = force;
    return RunShardOp("convert", **table, output, so, quiet);
  }
  if (Status st = CheckOutput(output, force); !st.ok()) return Report("convert", st);
  if (!table.ok()) return Report("convert", table.status());
  ProgressBar bar("convert", (*table)->rows(), "rows");
  if (!quiet && bar.enabled()) o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return ConvertTable(**table, output, o);
  });
  bar.Done();
  return st.ok() ? kExitOk : Report("convert", st);
}

}  // namespace embstore::cli
