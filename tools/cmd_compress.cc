// embstore compress / decompress: .emb <-> .embz, with the zstd command
// line's habits (-o, -f, -q, -v, -T, --level and -1 .. -19).

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "format/manifest.h"
#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "tools/cli.h"

namespace embstore::cli {

namespace {

// Whether spec names a sharded table's manifest (or a folder holding one),
// by its first bytes: a manifest that does not open is reported as such,
// not as a table file it is not. (Mapped, not read: a FIFO is refused at
// once.)
bool NamesManifest(const std::string& spec) {
  auto file = MappedFile::Open(ResolveTableSpec(spec));
  return file.ok() && LooksLikeManifest(file->bytes().first(std::min<uint64_t>(file->size(), 64)));
}

// zstd's "-19" style: turns "-N" into "--level N" before option parsing,
// except where it is the value of an option ("--level -1" stays a bad
// level, "-o -1" a file named -1). "--" ends the options.
std::vector<std::string> ExpandLevelFlags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  static const char* const kTakesValue[] = {"--level", "--frame-rows", "-o", "--output", "-T", "--threads",
                                            "--trust-owner"};
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    const std::string& before = args[i - 1];
    bool is_value = false;
    for (const char* o : kTakesValue) is_value = is_value || before == o;
    if (is_value) continue;
    if (a.size() >= 2 && a.size() <= 3 && a[0] == '-' && a[1] >= '1' && a[1] <= '9' &&
        (a.size() == 2 || (a[2] >= '0' && a[2] <= '9'))) {
      a = "--level=" + a.substr(1);
    }
  }
  return args;
}

struct Common {
  std::string input, output, threads = "0";
  bool force = false, quiet = false, verbose = false, no_fsync = false;
  std::vector<std::string> owners;
};

void AddCommon(po::options_description& o, Common* c) {
  o.add_options()
      ("input", po::value(&c->input)->required(), "input file")
      ("output,o", po::value(&c->output)->required(), "output file (never half-written)")
      ("force,f", po::bool_switch(&c->force), "overwrite an existing output file")
      ("threads,T", po::value(&c->threads)->default_value("0"), "threads, 0: all cores")
      ("quiet,q", po::bool_switch(&c->quiet), "no progress bar, no summary")
      ("verbose,v", po::bool_switch(&c->verbose), "print a summary line")
      ("no-fsync", po::bool_switch(&c->no_fsync), "skip fsync before the rename (like the zstd command line)");
}

int Run(int argc, char** argv, bool compress) {
  const char* cmd = compress ? "compress" : "decompress";
  Common c;
  std::string level = std::to_string(kDefaultLevel), frame_rows = "0";
  po::options_description options("options");
  AddCommon(options, &c);
  if (compress) AddTrustOption(options, &c.owners);
  if (compress) {
    options.add_options()
        ("level", po::value(&level)->default_value(std::to_string(kDefaultLevel)), "zstd level 1..19 (also -1 .. -19)")
        ("frame-rows", po::value(&frame_rows)->default_value("0"), "rows per frame, 0: about 128 KiB per frame");
  }
  po::positional_options_description positional;
  positional.add("input", 1);
  po::variables_map vm;
  const std::string usage =
      compress ? "usage: embstore compress FILE.emb -o FILE.embz [-f] [--level N | -N] [-T N] [--frame-rows K]\n\n"
                 "Compresses a table into frames of K rows that can still be read one row at a time\n"
                 "(embstore get/info/verify take .embz files). Decompressing gives back the original bytes.\n"
                 "A sharded table (its manifest) is compressed shard by shard into the folder -o names\n"
                 "(NAME.emb becomes NAME.embz), with a new manifest.json there."
               : "usage: embstore decompress FILE.embz -o FILE.emb [-f] [-T N]\n\n"
                 "Writes the original table, byte for byte; fails, leaving nothing, on a damaged frame.\n"
                 "A sharded table (its manifest) is decompressed shard by shard into the folder -o names.";
  std::vector<std::string> args =
      compress ? ExpandLevelFlags(argc, argv) : std::vector<std::string>(argv, argv + argc);
  std::vector<char*> ptrs;
  for (auto& a : args) ptrs.push_back(a.data());
  if (!ParseArgs(static_cast<int>(ptrs.size()), ptrs.data(), usage, options, positional, &vm)) return kExitOk;
  const unsigned threads = ParseThreads(c.threads);
  if (compress) {
    CompressOptions o;
    const uint64_t lv = ParseU64(level, "--level");
    if (lv < kMinLevel || lv > kMaxLevel) throw UsageError{"--level: " + level + " is outside [1, 19]"};
    o.level = static_cast<int>(lv);
    o.frame_rows = ParseU64(frame_rows, "--frame-rows");
    o.threads = threads;
    o.sync = !c.no_fsync;
    o.replace = c.force;
    const OpenOptions open_options = OpenOptionsFrom(c.owners);
    auto any = OpenTable(c.input, open_options);
    if (!any.ok() && NamesManifest(c.input)) return Report(cmd, any.status());
    if (any.ok() && (*any)->manifest() != nullptr) {
      ShardOpOptions so;
      so.op = ShardOp::kCompress;
      so.level = o.level;
      so.frame_rows = o.frame_rows;
      so.threads = threads;
      so.sync = o.sync;
      so.replace = c.force;
      return RunShardOp(cmd, **any, c.output, so, c.quiet);
    }
    // Checked again, atomically, when the new file is put in place.
    if (Status st = CheckOutput(c.output, c.force); !st.ok()) return Report(cmd, st);
    auto table = OpenMappedTable(c.input, open_options);
    if (!table.ok()) return Report(cmd, table.status());
    ProgressBar bar(cmd, table->header().data_size, "bytes");
    if (!c.quiet && bar.enabled()) o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
    Status st = Interruptible([&](const CancelToken* cancel) {
      o.cancel = cancel;
      return CompressTable(*table, c.output, o);
    });
    bar.Done();
    if (!st.ok()) return Report(cmd, st);
    if (c.verbose) {
      auto z = EmbzReader::Open(c.output);
      if (z.ok()) {
        std::fprintf(stderr, "%s: %" PRIu64 " -> %" PRIu64 " bytes (ratio %.4f), %" PRIu64 " frames\n",
                     c.input.c_str(), table->file_size(), (*z)->file_size(),
                     static_cast<double>(table->file_size()) / static_cast<double>((*z)->file_size()),
                     (*z)->embz_header().frame_count);
      }
    }
    return kExitOk;
  }
  auto any = OpenTable(c.input);
  if (!any.ok() && NamesManifest(c.input)) return Report(cmd, any.status());
  if (any.ok() && (*any)->manifest() != nullptr) {
    ShardOpOptions so;
    so.op = ShardOp::kDecompress;
    so.threads = threads;
    so.sync = !c.no_fsync;
    so.replace = c.force;
    return RunShardOp(cmd, **any, c.output, so, c.quiet);
  }
  if (Status st = CheckOutput(c.output, c.force); !st.ok()) return Report(cmd, st);
  auto z = EmbzReader::Open(c.input);
  if (!z.ok()) return Report(cmd, z.status());
  ProgressBar bar(cmd, (*z)->header().data_size, "bytes");
  DecompressOptions o;
  o.threads = threads;
  o.sync = !c.no_fsync;
  o.replace = c.force;
  if (!c.quiet && bar.enabled()) o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return (*z)->Decompress(c.output, o);
  });
  bar.Done();
  if (!st.ok()) return Report(cmd, st);
  if (c.verbose) std::fprintf(stderr, "%s: %" PRIu64 " bytes\n", c.output.c_str(), (*z)->embz_header().table_size);
  return kExitOk;
}

}  // namespace

int CompressMain(int argc, char** argv) { return Run(argc, argv, true); }
int DecompressMain(int argc, char** argv) { return Run(argc, argv, false); }

}  // namespace embstore::cli
