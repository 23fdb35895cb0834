// TableWriter -> TableReader round trips, checked access, verify, and the
// writer's promise: the destination is the old table or the new one, and no
// temporary file is ever left behind.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "tests/test_util.h"

namespace embstore {
namespace table_test {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

float Value(uint64_t row, uint64_t col) { return static_cast<float>(row) * 1000.0f + static_cast<float>(col) * 0.25f; }

Status WriteTable(const std::string& path, uint64_t rows, uint64_t dim, WriterOptions options = {},
                  uint64_t rows_per_append = 3) {
  options.sync = false;
  auto w = TableWriter::Create(path, rows, dim, options);
  if (!w.ok()) return w.status();
  std::vector<float> buf;
  for (uint64_t r = 0; r < rows;) {
    const uint64_t n = std::min(rows_per_append, rows - r);
    buf.clear();
    for (uint64_t i = 0; i < n; ++i)
      for (uint64_t c = 0; c < dim; ++c) buf.push_back(Value(r + i, c));
    EMB_RETURN_IF_ERROR((*w)->Append(buf));
    r += n;
  }
  return (*w)->Finish();
}

TEST(TableTest, RoundTripRowsAreZeroCopyAndExact) {
  TempDir dir;
  const std::string path = dir.File("t.emb");
  WriterOptions o;
  o.metadata = {{"source", "unit test"}};
  o.block_rows = 4;
  ASSERT_OK(WriteTable(path, 37, 5, o));
  auto r = TableReader::Open(path);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->rows(), 37u);
  EXPECT_EQ(r->dim(), 5u);
  EXPECT_EQ(r->header().checksum_count, 10u);
  EXPECT_EQ(r->metadata().at("source"), "unit test");
  for (uint64_t i = 0; i < 37; ++i) {
    auto row = r->row(i);
    ASSERT_EQ(row.size(), 5u);
    for (uint64_t c = 0; c < 5; ++c) EXPECT_EQ(row[c], Value(i, c));
    // Zero copy: the span points into the mapping at data_offset + i*stride.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(row.data()) % 4, 0u);
    if (i) {
      EXPECT_EQ(reinterpret_cast<const char*>(row.data()) - reinterpret_cast<const char*>(r->row(i - 1).data()), 20);
    }
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->row(0).data()) % 4096, 0u);  // page-aligned data
  auto report = r->Verify();
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
  EXPECT_EQ(report->blocks_checked, 10u);
  EXPECT_EQ(report->bytes_checked, 37u * 20);
}

TEST(TableTest, AppendGranularityDoesNotChangeTheBytes) {
  TempDir dir;
  WriterOptions o;
  o.block_rows = 3;
  ASSERT_OK(WriteTable(dir.File("a"), 50, 7, o, 1));
  ASSERT_OK(WriteTable(dir.File("b"), 50, 7, o, 50));
  ASSERT_OK(WriteTable(dir.File("c"), 50, 7, o, 11));
  EXPECT_EQ(ReadBytes(dir.File("a")), ReadBytes(dir.File("b")));
  EXPECT_EQ(ReadBytes(dir.File("a")), ReadBytes(dir.File("c")));
}

TEST(TableTest, LargeAppendsCrossBufferAndBlockBoundaries) {
  TempDir dir;
  // 2.5 MiB of rows in one append; blocks of ~1 MiB.
  ASSERT_OK(WriteTable(dir.File("big"), 640, 1024, {}, 640));
  auto r = TableReader::Open(dir.File("big"));
  ASSERT_OK(r.status());
  EXPECT_EQ(r->header().checksum_block_rows, 256u);
  EXPECT_EQ(r->row(639)[1023], Value(639, 1023));
  EXPECT_TRUE(r->Verify()->ok());
}

TEST(TableTest, CheckedAccessNamesTheIdAndRange) {
  TempDir dir;
  ASSERT_OK(WriteTable(dir.File("t"), 6, 4));
  auto r = TableReader::Open(dir.File("t"));
  ASSERT_OK(r.status());
  EXPECT_OK(r->RowChecked(5).status());
  auto bad = r->RowChecked(6);
  ASSERT_TRUE(bad.status().IsOutOfRange());
  EXPECT_EQ(bad.status().message(), "id 6 out of range: the table has rows [0, 6)");

  std::vector<uint64_t> ids = {5, 0, 3, 3};
  std::vector<float> out(16, -1);
  ASSERT_OK(r->Gather(ids, out));
  for (size_t k = 0; k < ids.size(); ++k)
    for (uint64_t c = 0; c < 4; ++c) EXPECT_EQ(out[k * 4 + c], Value(ids[k], c));

  std::vector<float> untouched(8, -7);
  std::vector<uint64_t> with_bad = {1, 99};
  Status st = r->Gather(with_bad, untouched);
  EXPECT_TRUE(st.IsOutOfRange());
  EXPECT_NE(st.message().find("id 99"), std::string::npos);
  EXPECT_TRUE(std::all_of(untouched.begin(), untouched.end(), [](float f) { return f == -7; }));
  std::vector<float> wrong_size(5);
  EXPECT_TRUE(r->Gather(with_bad, wrong_size).IsInvalidArgument());
}

// A large gather from rows that are not in memory takes another path (it
// advises the kernel of the rows ahead); the rows must be the same.
TEST(TableTest, GatherFromPagesNotInMemory) {
  TempDir dir;
  const std::string path = dir.File("cold.emb");
  constexpr uint64_t kRows = 3000, kDim = 1024;  // 12 MB: above the 1 MiB check
  ASSERT_OK(WriteTable(path, kRows, kDim, {}, 500));
  std::vector<uint64_t> ids(2000);
  for (size_t k = 0; k < ids.size(); ++k) ids[k] = (k * 7919) % kRows;
  auto expect_rows = [&](const std::vector<float>& out) {
    for (size_t k = 0; k < ids.size(); ++k) {
      ASSERT_EQ(out[k * kDim], Value(ids[k], 0)) << "row " << ids[k];
      ASSERT_EQ(out[k * kDim + kDim - 1], Value(ids[k], kDim - 1)) << "row " << ids[k];
    }
  };
  for (int round = 0; round < 2; ++round) {
    // Drop the file's pages (a page-cache file system honours it; tmpfs
    // keeps them, and the gather then takes the warm path).
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    auto r = TableReader::Open(path);
    ASSERT_OK(r.status());
    std::vector<float> out(ids.size() * kDim, -1);
    ASSERT_OK(r->Gather(ids, out));
    expect_rows(out);
    // Every row gathered is now in memory.
    std::vector<float> again(ids.size() * kDim, -1);
    ASSERT_OK(r->Gather(ids, again));
    EXPECT_EQ(out, again);
  }
}

// The gather's "is it in memory?" question: false for a page dropped from
// the page cache, true once it has been read, for any file the process can
// read. The test owns the file, so mincore() on its mapping tells the truth
// and is the oracle. POSIX_FADV_DONTNEED is only a hint: a page the kernel
// still holds (in another CPU's LRU batch, under writeback) stays, so the
// test asks again until mincore sees the page gone. On tmpfs there is
// nothing to drop to, and the page stays.
TEST(TableTest, PageResidentAnswersFromThePageCache) {
  TempDir dir;
  const std::string path = dir.File("r.emb");
  ASSERT_OK(WriteTable(path, 3000, 1024, {}, 500));
  struct statfs fs;
  ASSERT_EQ(::statfs(path.c_str(), &fs), 0);
  auto m = MappedFile::Open(path);
  ASSERT_OK(m.status());
  const uint64_t offset = m->size() / 2;
  const long page = ::sysconf(_SC_PAGESIZE);
  auto in_core = [&] {
    unsigned char vec = 0;
    void* addr = const_cast<uint8_t*>(m->data() + (offset - offset % page));
    EXPECT_EQ(::mincore(addr, 1, &vec), 0) << std::strerror(errno);
    return (vec & 1) != 0;
  };
  bool dropped = false;
  if (fs.f_type != TMPFS_MAGIC) {
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fdatasync(fd), 0);
    for (int attempt = 0; attempt < 100 && !dropped; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      dropped = !in_core();
    }
    ::close(fd);
  }
  EXPECT_EQ(m->PageResident(offset), !dropped) << "dropped by the kernel: " << dropped;
  const volatile uint8_t* p = m->data() + offset;
  (void)*p;
  ASSERT_TRUE(in_core());
  EXPECT_TRUE(m->PageResident(offset)) << "a page just read";
  EXPECT_FALSE(m->PageResident(m->size())) << "past the end";
}

TEST(TableTest, AccessHints) {
  TempDir dir;
  ASSERT_OK(WriteTable(dir.File("t"), 100, 64));
  auto r = TableReader::Open(dir.File("t"));
  ASSERT_OK(r.status());
  for (AccessHint h : {AccessHint::kRandom, AccessHint::kSequential, AccessHint::kWillNeed, AccessHint::kNormal}) {
    EXPECT_OK(r->Advise(h));
    EXPECT_OK(r->Advise(h, 10, 20));
  }
  EXPECT_TRUE(r->Advise(AccessHint::kRandom, 90, 11).IsOutOfRange());
  EXPECT_TRUE(r->Advise(AccessHint::kRandom, 5, UINT64_MAX).IsOutOfRange()) << "first + count wraps";
  EXPECT_OK(r->Advise(AccessHint::kRandom, 100, 0));
  // No rows into no buffer (data() null): nothing to copy, not a memcpy from null.
  EXPECT_OK(r->ReadRows(100, 0, std::span<float>{}));
  EXPECT_TRUE(r->ReadRows(100, 1, std::span<float>{}).IsOutOfRange());
}

TEST(TableTest, VerifyNamesTheCorruptRowsOnAnyThreadCount) {
  TempDir dir;
  const std::string path = dir.File("t");
  WriterOptions o;
  o.block_rows = 4;
  ASSERT_OK(WriteTable(path, 37, 5, o));
  auto bytes = ReadBytes(path);
  const uint64_t data_offset = 4096;
  bytes[data_offset + 9 * 20 + 3] ^= 0x10;   // row 9: block 2, rows [8, 12)
  bytes[data_offset + 36 * 20 + 19] ^= 0x01; // row 36: last block, rows [36, 37)
  WriteBytes(path, bytes);
  auto r = TableReader::Open(path);
  ASSERT_OK(r.status());  // data corruption is verify's to find, not Open's
  for (unsigned threads : {1u, 2u, 3u, 16u}) {
    VerifyOptions vo;
    vo.threads = threads;
    uint64_t last = 0;
    if (threads == 2) vo.progress = [&](uint64_t done, uint64_t) { last = done; };
    auto rep = r->Verify(vo);
    ASSERT_OK(rep.status());
    ASSERT_EQ(rep->bad.size(), 2u) << threads;
    EXPECT_EQ(rep->bad[0].unit, BadRows::Unit::kBlock);
    EXPECT_EQ(rep->bad[0].index, 2u);
    EXPECT_EQ(rep->bad[0].first_row, 8u);
    EXPECT_EQ(rep->bad[0].row_count, 4u);
    EXPECT_EQ(rep->bad[1].index, 9u);
    EXPECT_EQ(rep->bad[1].first_row, 36u);
    EXPECT_EQ(rep->bad[1].row_count, 1u);
    if (threads == 2) {
      EXPECT_EQ(last, 37u * 20);
    }
  }
}

TEST(TableTest, VerifyFindsNonzeroPadding) {
  TempDir dir;
  const std::string path = dir.File("t");
  ASSERT_OK(WriteTable(path, 6, 4));
  auto bytes = ReadBytes(path);
  bytes[4000] = 1;  // between the checksum table and the data
  WriteBytes(path, bytes);
  auto r = TableReader::Open(path);
  ASSERT_OK(r.status());
  auto rep = r->Verify();
  ASSERT_OK(rep.status());
  EXPECT_FALSE(rep->ok());
  ASSERT_EQ(rep->bad_regions.size(), 1u);
  EXPECT_NE(rep->bad_regions[0].find("byte 4000"), std::string::npos);
}

TEST(TableTest, AbandonedWriterLeavesNothing) {
  TempDir dir;
  {
    auto w = TableWriter::Create(dir.File("t"), 10, 4);
    ASSERT_OK(w.status());
    std::vector<float> row(4, 1.0f);
    ASSERT_OK((*w)->Append(row));
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(TableTest, ShortWriteFailsAndLeavesNothing) {
  TempDir dir;
  auto w = TableWriter::Create(dir.File("t"), 10, 4);
  ASSERT_OK(w.status());
  std::vector<float> rows(8, 1.0f);
  ASSERT_OK((*w)->Append(rows));
  Status st = (*w)->Finish();
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("only 2 of 10 rows"), std::string::npos);
  EXPECT_TRUE(dir.List().empty());
  EXPECT_FALSE((*w)->Append(rows).ok());
}

TEST(TableTest, AppendRejectsPartialRowsAndExtraRows) {
  TempDir dir;
  auto w = TableWriter::Create(dir.File("t"), 2, 4);
  ASSERT_OK(w.status());
  std::vector<float> three(3), twelve(12);
  EXPECT_TRUE((*w)->Append(three).IsInvalidArgument());
  EXPECT_TRUE((*w)->Append(twelve).IsInvalidArgument());
}

TEST(TableTest, ReplacingKeepsOldReadersOnTheOldBytes) {
  TempDir dir;
  const std::string path = dir.File("t");
  ASSERT_OK(WriteTable(path, 6, 4));
  auto old_reader = TableReader::Open(path);
  ASSERT_OK(old_reader.status());
  const float before = old_reader->row(5)[3];

  // A failed replacement leaves the old table in place, byte for byte.
  const auto old_bytes = ReadBytes(path);
  {
    auto w = TableWriter::Create(path, 6, 4);
    ASSERT_OK(w.status());
  }
  EXPECT_EQ(ReadBytes(path), old_bytes);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"t"});

  // A successful one swaps the file; the old mapping still reads old rows.
  {
    auto w = TableWriter::Create(path, 2, 2);
    ASSERT_OK(w.status());
    std::vector<float> v = {9, 9, 9, 9};
    ASSERT_OK((*w)->Append(v));
    ASSERT_OK((*w)->Finish());
  }
  EXPECT_EQ(old_reader->row(5)[3], before);
  auto fresh = TableReader::Open(path);
  ASSERT_OK(fresh.status());
  EXPECT_EQ(fresh->rows(), 2u);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"t"});
}

TEST(TableTest, FullDiskFailsAtCreateAndLeavesNothing) {
  // RLIMIT_FSIZE makes the kernel refuse to grow files past the limit, the
  // same refusal a full disk gives: the writer must fail before any work.
  TempDir dir;
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto prev = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 1 << 20;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto w = TableWriter::Create(dir.File("t"), 1000, 1024);  // 4 MB
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(w.status().IsIOError()) << w.status().ToString();
  EXPECT_NE(w.status().message().find(dir.File("t")), std::string::npos) << w.status().ToString();
  EXPECT_TRUE(dir.List().empty());
}

TEST(TableTest, NamedTemporaryFallbackLeavesNothing) {
  // Where O_TMPFILE is missing the writer uses a hidden named file; it must
  // be gone after an abandoned write, a failed one and a finished one.
  TempDir dir;
  WriterOptions o;
  o.unnamed_temp = false;
  {
    auto w = TableWriter::Create(dir.File("t"), 2, 2, o);
    ASSERT_OK(w.status());
    ASSERT_EQ(dir.List().size(), 1u);  // the hidden temporary file
    EXPECT_EQ(dir.List()[0].rfind(".embstore-tmp-", 0), 0u);
  }
  EXPECT_TRUE(dir.List().empty());
  {
    auto w = TableWriter::Create(dir.File("t"), 2, 2, o);
    ASSERT_OK(w.status());
    EXPECT_FALSE((*w)->Finish().ok());
  }
  EXPECT_TRUE(dir.List().empty());
  ASSERT_OK(WriteTable(dir.File("t"), 5, 3, o));
  EXPECT_EQ(dir.List(), std::vector<std::string>{"t"});
  EXPECT_TRUE(TableReader::Open(dir.File("t"))->Verify()->ok());
}

TEST(TableTest, LongestFileNameWorks) {
  TempDir dir;
  const std::string name(255, 'n');  // NAME_MAX: the temporary name must not be longer
  for (bool unnamed : {true, false}) {
    WriterOptions o;
    o.unnamed_temp = unnamed;
    ASSERT_OK(WriteTable(dir.File(name), 3, 3, o));
    EXPECT_EQ(dir.List(), std::vector<std::string>{name});
  }
}

TEST(TableTest, SymlinkDestinationReplacesTheTarget) {
  TempDir dir;
  ASSERT_OK(WriteTable(dir.File("real"), 6, 4));
  std::filesystem::create_symlink("real", dir.File("link"));
  ASSERT_OK(WriteTable(dir.File("link"), 2, 2));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.File("link")));
  EXPECT_EQ(TableReader::Open(dir.File("real"))->rows(), 2u);
}

TEST(TableTest, ClearErrorsForBadPaths) {
  TempDir dir;
  auto missing = TableReader::Open(dir.File("nope"));
  ASSERT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos);
  EXPECT_TRUE(TableReader::Open(dir.path()).status().IsIOError());  // a folder
  auto no_dir = TableWriter::Create(dir.File("no/such/dir/t"), 1, 1);
  EXPECT_TRUE(no_dir.status().IsIOError());
  EXPECT_TRUE(TableWriter::Create(dir.path(), 1, 1).status().IsIOError());
  WriteBytes(dir.File("empty"), {});
  auto empty = TableReader::Open(dir.File("empty"));
  EXPECT_TRUE(empty.status().IsCorruption());
  EXPECT_NE(empty.status().message().find("empty file"), std::string::npos);
}

TEST(TableTest, ConcurrentReadersOnManyThreads) {
  TempDir dir;
  ASSERT_OK(WriteTable(dir.File("t"), 200, 16));
  auto r = TableReader::Open(dir.File("t"));
  ASSERT_OK(r.status());
  std::vector<std::thread> ts;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (uint64_t i = t; i < 200; i += 4)
        if (r->row(i)[15] != Value(i, 15)) ++wrong;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace table_test
}  // namespace embstore
