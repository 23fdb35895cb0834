// embstore verify: recompute every checksum; exit 1 and name the rows of
// each corrupt block (or frame, for a .embz).

#include <cinttypes>
#include <cstdio>

#include "tools/cli.h"

namespace embstore::cli {

int VerifyMain(int argc, char** argv) {
  std::string path, threads = "0";
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("file", po::value(&path)->required(), "table file")
      ("threads,T", po::value(&threads)->default_value("0"), "hashing threads (0: all cores)");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore verify FILE [--threads N]\n\n"
      "Checks the header, the metadata, every data block's XXH3-64 checksum and that padding is\n"
      "zero (a .embz: every frame against its seek table, and every block against the table's\n"
      "checksums). Exit 0 when all match; otherwise exit 1 and list each corrupt block with its rows.\n"
      "A sharded table (its manifest): every shard, each corrupt block named by its shard and by rows\n"
      "of the whole table, and every shard that is missing, foreign or out of place.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;

  VerifyOptions vo;
  vo.threads = ParseThreads(threads);  // a usage error comes before any file work
  auto opened = OpenTable(path, OpenOptionsFrom(owners));
  if (!opened.ok()) return Report("verify", opened.status());
  const Table& table = **opened;
  ProgressBar bar("verify", table.header().data_size, "bytes");
  if (bar.enabled()) vo.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Result<VerifyReport> report = Interruptible([&](const CancelToken* cancel) {
    vo.cancel = cancel;
    return table.Verify(vo);
  });
  bar.Done();
  if (!report.ok()) return Report("verify", report.status());

  for (const BadRows& b : report->bad) std::printf("corrupt %s\n", ForTerminal(b.Describe()).c_str());
  const uint64_t found = report->bad_block_count + report->bad_frame_count;
  if (found > report->bad.size()) std::printf("... and %" PRIu64 " more\n", found - report->bad.size());
  for (const std::string& r : report->bad_regions) std::printf("corrupt padding: %s\n", ForTerminal(r).c_str());
  for (const std::string& s : report->bad_shards) std::printf("bad %s\n", ForTerminal(s).c_str());
  if (!report->bad_keys.empty()) std::printf("%s\n", ForTerminal(report->bad_keys).c_str());
  if (!report->ok()) {
    FinishStdout("verify");
    std::fprintf(stderr, "embstore verify: %s: FAILED: %s\n", ForTerminal(path).c_str(),
                 ForTerminal(report->Summary()).c_str());
    return kExitData;
  }
  std::string frames;
  if (report->frames_checked > 0) frames = ", " + std::to_string(report->frames_checked) + " frames";
  if (const KeysView* keys = table.keys()) frames += ", " + std::to_string(keys->size()) + " keys";
  if (report->shards_checked > 0) frames += ", " + std::to_string(report->shards_checked) + " shards";
  std::printf("%s: ok: %" PRIu64 " rows, %" PRIu64 " blocks%s, %" PRIu64 " bytes verified\n", ForTerminal(path).c_str(),
              table.rows(), report->blocks_checked, frames.c_str(), report->bytes_checked);
  return FinishStdout("verify");
}

}  // namespace embstore::cli
