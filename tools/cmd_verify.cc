// embstore verify: recompute every checksum; exit 1 and name the rows of
// each corrupt block.

#include <cinttypes>
#include <cstdio>

#include "store/embz.h"
#include "store/table_reader.h"
#include "tools/cli.h"

namespace embstore::cli {

namespace {

void PrintBadBlocks(const std::vector<BadBlock>& blocks, uint64_t count) {
  for (const BadBlock& b : blocks) {
    std::printf("corrupt block %" PRIu64 ": rows [%" PRIu64 ", %" PRIu64 ") (stored xxh3 %016" PRIx64
                ", computed %016" PRIx64 ")\n",
                b.block, b.first_row, b.first_row + b.row_count, b.stored, b.computed);
  }
  if (count > blocks.size()) std::printf("... and %" PRIu64 " more corrupt blocks\n", count - blocks.size());
}

// A .embz: the container and the table prefix were checked by Open; every
// frame is decoded and checked against the seek table, and every checksum
// block of the table against the table's own checksum.
int VerifyEmbz(const std::string& path, const EmbzReader& z, unsigned threads) {
  ProgressBar bar("verify", z.header().data_size, "bytes");
  std::function<void(uint64_t, uint64_t)> progress;
  if (bar.enabled()) progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  auto report = z.Verify(threads, progress);
  bar.Done();
  if (!report.ok()) return Report("verify", report.status());
  for (const BadFrame& b : report->bad_frames) std::printf("corrupt %s\n", ForTerminal(b.error).c_str());
  if (report->bad_frame_count > report->bad_frames.size()) {
    std::printf("... and %" PRIu64 " more corrupt frames\n", report->bad_frame_count - report->bad_frames.size());
  }
  PrintBadBlocks(report->bad_blocks, report->bad_block_count);
  if (!report->ok()) {
    FinishStdout("verify");
    std::string what;
    if (report->bad_frame_count > 0) {
      what = std::to_string(report->bad_frame_count) + " of " + std::to_string(report->frames_checked) +
             " frames corrupt";
    }
    if (report->bad_block_count > 0) {
      what += (what.empty() ? "" : ", ") + std::to_string(report->bad_block_count) + " of " +
              std::to_string(report->blocks_checked) + " blocks do not match the table's checksums";
    }
    std::fprintf(stderr, "embstore verify: %s: FAILED: %s\n", ForTerminal(path).c_str(), what.c_str());
    return kExitData;
  }
  std::printf("%s: ok: %" PRIu64 " rows, %" PRIu64 " frames, %" PRIu64 " blocks verified\n", ForTerminal(path).c_str(),
              z.rows(), report->frames_checked, report->blocks_checked);
  return FinishStdout("verify");
}

}  // namespace

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
      "checksums). Exit 0 when all match; otherwise exit 1 and list each corrupt block with its rows.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;

  const unsigned n = ParseThreads(threads);  // a usage error comes before any file work
  auto any = OpenAnyTable(path, OpenOptionsFrom(owners));
  if (!any.ok()) return Report("verify", any.status());
  if (any->packed) return VerifyEmbz(path, *any->packed, n);
  const TableReader& reader = *any->plain;
  VerifyOptions vo;
  vo.threads = n;
  ProgressBar bar("verify", reader.header().data_size, "bytes");
  if (bar.enabled()) vo.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  auto report = reader.Verify(vo);
  bar.Done();
  if (!report.ok()) return Report("verify", report.status());

  PrintBadBlocks(report->bad_blocks, report->bad_block_count);
  for (const std::string& r : report->bad_regions) std::printf("corrupt padding: %s\n", r.c_str());
  if (!report->ok()) {
    FinishStdout("verify");
    std::fprintf(stderr, "embstore verify: %s: FAILED: %" PRIu64 " of %" PRIu64 " blocks corrupt%s\n",
                 ForTerminal(path).c_str(), report->bad_block_count, report->blocks_checked,
                 report->bad_regions.empty() ? "" : ", nonzero padding");
    return kExitData;
  }
  std::printf("%s: ok: %" PRIu64 " rows, %" PRIu64 " blocks, %" PRIu64 " bytes verified\n", ForTerminal(path).c_str(),
              reader.rows(), report->blocks_checked, report->bytes_hashed);
  return FinishStdout("verify");
}

}  // namespace embstore::cli
