// Writes the golden files under tests/golden/{good,bad}/ (run by hand when a
// new case is added; the files are committed and kept forever, so a later
// reader is always tested against bytes an older writer produced).
//
//   build/make_golden tests/golden
//
// Each bad file is a good file with one defect; the header checksum is
// recomputed where the defect is in a header field, so the reader's check of
// that field (not the checksum) is what must catch it.

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "format/keys.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/embz/embz.h"
#include "store/torch/generate.h"

using namespace embstore;

namespace {

std::vector<uint8_t> Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void Write(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  std::printf("wrote %s (%zu bytes)\n", path.c_str(), b.size());
}

void Reseal(std::vector<uint8_t>& b, size_t header_size = 128) {
  StoreLE64(&b[header_size - 8], Hash64(b.data(), header_size - 8));
}

// `into` with frame f replaced by `from`'s frame f, and the seek table and
// header checksums recomputed to match it.
std::vector<uint8_t> SpliceFrame(const std::vector<uint8_t>& into, const std::vector<uint8_t>& from, uint64_t f) {
  const uint64_t prefix_end = 128 + LoadLE64(&into[56]), frames = LoadLE64(&into[72]);
  std::vector<uint8_t> out(into.begin(), into.begin() + static_cast<std::ptrdiff_t>(prefix_end)), seek;
  for (uint64_t g = 0; g < frames; ++g) {
    const auto& src = g == f ? from : into;
    EmbzSeekEntry e = DecodeEmbzSeekEntry(&src[LoadLE64(&src[80]) + g * kEmbzSeekEntrySize]);
    const uint64_t offset = out.size();
    out.insert(out.end(), src.begin() + static_cast<std::ptrdiff_t>(e.offset),
               src.begin() + static_cast<std::ptrdiff_t>(e.offset + e.coded_size));
    e.offset = offset;
    uint8_t entry[kEmbzSeekEntrySize];
    EncodeEmbzSeekEntry(e, entry);
    seek.insert(seek.end(), entry, entry + kEmbzSeekEntrySize);
  }
  StoreLE64(&out[80], out.size());
  StoreLE64(&out[88], Hash64(seek.data(), seek.size()));
  out.insert(out.end(), seek.begin(), seek.end());
  Reseal(out);
  return out;
}

int Fail(const Status& st) {
  std::fprintf(stderr, "make_golden: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_golden DIR\n");
    return 2;
  }
  const std::string root = argv[1];
  std::filesystem::create_directories(root + "/good");
  std::filesystem::create_directories(root + "/bad");
  const std::string good = root + "/good/";
  const std::string bad = root + "/bad/";

  // good/notebook-6x4-seed123.emb: the notebook table (PyTorch DEFAULT kernel).
  GenerateSpec spec;
  spec.rows = 6;
  spec.dim = 4;
  spec.seed = 123;
  spec.kernel = TorchKernel::kScalar;
  if (Status st = GenerateTable(good + "notebook-6x4-seed123.emb", spec); !st.ok()) return Fail(st);

  // good/blocks-37x5.emb: row r, column c holds r*1000 + c/4, in 10 blocks of 4 rows.
  {
    WriterOptions o;
    o.block_rows = 4;
    o.metadata = {{"golden", "blocks"}};
    auto w = TableWriter::Create(good + "blocks-37x5.emb", 37, 5, o);
    if (!w.ok()) return Fail(w.status());
    std::vector<float> row(5);
    for (int r = 0; r < 37; ++r) {
      for (int c = 0; c < 5; ++c) row[c] = static_cast<float>(r) * 1000.0f + static_cast<float>(c) * 0.25f;
      if (Status st = (*w)->Append(row); !st.ok()) return Fail(st);
    }
    if (Status st = (*w)->Finish(); !st.ok()) return Fail(st);
  }

  // good/notebook-6x4-seed123-{float16,bfloat16}.emb: the notebook table
  // made by nn.Embedding(6, 4, dtype=...) (1.1 files), and the bfloat16 one
  // compressed (frames of 2-byte elements).
  for (Dtype dtype : {Dtype::kFloat16, Dtype::kBFloat16}) {
    GenerateSpec half = spec;
    half.kernel = TorchKernel::kAvx2;
    half.dtype = dtype;
    const std::string name = good + "notebook-6x4-seed123-" + DtypeName(dtype);
    if (Status st = GenerateTable(name + ".emb", half); !st.ok()) return Fail(st);
    if (dtype == Dtype::kBFloat16) {
      auto table = TableReader::Open(name + ".emb");
      if (!table.ok()) return Fail(table.status());
      CompressOptions o;
      o.frame_rows = 2;
      o.threads = 1;
      if (Status st = CompressTable(*table, name + ".embz", o); !st.ok()) return Fail(st);
    }
  }

  const std::vector<uint8_t> nb = Read(good + "notebook-6x4-seed123.emb");
  const std::vector<uint8_t> nbf = Read(good + "notebook-6x4-seed123-bfloat16.emb");

  // good/minor-1.1-longer-header.emb: what a future 1.1 writer might make: a
  // 136-byte header with an unknown field at 120, an unknown optional flag,
  // and the sections moved down. A 1.0 reader must open it.
  {
    const uint32_t meta_size = LoadLE32(&nb[88]);
    std::vector<uint8_t> b(nb.size(), 0);
    std::memcpy(b.data(), nb.data(), 120);
    StoreLE16(&b[14], 1);              // version_minor
    StoreLE32(&b[16], 136);            // header_size
    StoreLE64(&b[32], 0x8000000000000000ull);  // an optional flag 1.0 does not know
    StoreLE64(&b[120], 0x1111222233334444ull); // a new 1.1 field
    StoreLE64(&b[80], 136);            // metadata_offset
    const uint64_t table = (136 + meta_size + 7) / 8 * 8;
    StoreLE64(&b[96], table);          // checksum_offset
    std::memcpy(&b[136], &nb[128], meta_size);
    std::memcpy(&b[table], &nb[LoadLE64(&nb[96])], 8);
    std::memcpy(&b[4096], &nb[4096], 96);
    Reseal(b, 136);
    Write(good + "minor-1.1-longer-header.emb", b);
  }

  auto variant = [&](const std::string& name, auto mutate, bool reseal) {
    std::vector<uint8_t> b = nb;
    mutate(b);
    if (reseal) Reseal(b);
    Write(bad + name, b);
  };
  variant("bad-magic.emb", [](auto& b) { b[1] = 'X'; }, false);
  variant("big-endian.emb", [](auto& b) { StoreLE32(&b[8], 0x04030201); }, false);
  variant("newer-major-version.emb", [](auto& b) { StoreLE16(&b[12], 2); }, true);
  variant("unknown-required-flag.emb", [](auto& b) { StoreLE64(&b[24], 1ull << 5); }, true);
  variant("header-checksum-mismatch.emb", [](auto& b) { StoreLE64(&b[40], 7); }, false);
  variant("unsupported-dtype-4.emb", [](auto& b) { StoreLE32(&b[20], 4); }, true);
  variant("misaligned-data-offset.emb", [](auto& b) { StoreLE64(&b[64], 4100); }, true);
  variant("rows-times-dim-overflow.emb", [](auto& b) { StoreLE64(&b[40], 1ull << 61); }, true);
  variant("data-size-mismatch.emb", [](auto& b) { StoreLE64(&b[72], 4104); }, true);
  variant("oversized-metadata.emb", [](auto& b) { StoreLE32(&b[88], 70000); }, true);
  variant("metadata-checksum-mismatch.emb", [](auto& b) { b[140] ^= 0x20; }, false);
  variant("truncated-data.emb", [](auto& b) { b.resize(b.size() - 10); }, false);
  variant("trailing-bytes.emb", [](auto& b) { b.push_back(0); }, false);
  variant("truncated-header.emb", [](auto& b) { b.resize(60); }, false);
  variant("empty.emb", [](auto& b) { b.clear(); }, false);
  // Hostile half-table headers (a valid checksum over a stride or size that
  // disagrees with the 2-byte dtype).
  auto half_variant = [&](const std::string& name, auto mutate) {
    std::vector<uint8_t> b = nbf;
    mutate(b);
    Reseal(b);
    Write(bad + name, b);
  };
  half_variant("half-stride-odd.emb", [](auto& b) {  // splits an element
    StoreLE64(&b[56], 9);
    StoreLE64(&b[72], 54);
  });
  half_variant("half-stride-below-dim.emb", [](auto& b) {  // 4 bfloat16 need 8 bytes
    StoreLE64(&b[56], 4);
    StoreLE64(&b[72], 24);
  });
  half_variant("half-data-size-as-float32.emb", [](auto& b) { StoreLE64(&b[72], 96); });  // rows*dim*4
  half_variant("half-dtype-as-float32.emb", [](auto& b) { StoreLE32(&b[20], 1); });  // 8-byte rows of float32 dim 4
  // Opens (every header field is fine) but verify must fail: a data bit flipped.
  variant("corrupt-data-row3.emb", [](auto& b) { b[4096 + 3 * 16 + 5] ^= 0x04; }, false);

  // good/words-6x3-keys.emb: a 1.2 table with keys (row r, column c holds
  // r * 10 + c), and hostile copies: header fields resealed, keys sections
  // damaged with their checksum recomputed (what only the reader's own
  // checks can catch) or not.
  {
    KeyList list;
    for (const char* w : {"king", "queen", "na\u00efve", "\u65e5\u672c", "\U0001F642", "kong"}) {
      if (Status st = list.Add(w); !st.ok()) return Fail(st);
    }
    auto section = EncodeKeys(list);
    if (!section.ok()) return Fail(section.status());
    WriterOptions o;
    o.metadata = {{"golden", "keys"}};
    o.keys = *section;
    auto w = TableWriter::Create(good + "words-6x3-keys.emb", 6, 3, o);
    if (!w.ok()) return Fail(w.status());
    std::vector<float> rows(18);
    for (int i = 0; i < 18; ++i) rows[i] = static_cast<float>(i / 3 * 10 + i % 3);
    if (Status st = (*w)->Append(rows); !st.ok()) return Fail(st);
    if (Status st = (*w)->Finish(); !st.ok()) return Fail(st);
  }
  {
    const std::vector<uint8_t> kw = Read(good + "words-6x3-keys.emb");
    const uint64_t ko = LoadLE64(&kw[120]), ks = LoadLE64(&kw[128]);
    const uint64_t slots = LoadLE64(&kw[ko + 16]), slot0 = ko + 32 + 8 * 7, blob = slot0 + 8 * slots;
    auto kvariant = [&](const std::string& name, auto mutate, bool reseal_keys) {
      std::vector<uint8_t> b = kw;
      mutate(b);
      if (reseal_keys) StoreLE64(&b[136], Hash64(&b[ko], ks));
      Reseal(b, 152);
      Write(bad + name, b);
    };
    kvariant("keys-flag-in-1.1-header.emb", [](auto& b) { StoreLE16(&b[14], 1); }, false);
    kvariant("keys-section-past-data.emb", [&](auto& b) { StoreLE64(&b[128], 4096); }, false);
    kvariant("keys-count-mismatch.emb", [&](auto& b) { StoreLE64(&b[ko], 7); }, true);
    kvariant("keys-unknown-hash-scheme.emb", [&](auto& b) { StoreLE32(&b[ko + 24], 2); }, true);
    // These open (the checks at open are O(1)); lookups and verify fail.
    kvariant("keys-corrupt-offsets.emb", [&](auto& b) { StoreLE64(&b[ko + 32 + 8 * 2], 1u << 20); }, true);
    kvariant("keys-corrupt-checksum.emb", [&](auto& b) { b[blob + 3] ^= 0x01; }, false);  // "king" -> "kinf"
    kvariant("keys-corrupt-duplicate.emb", [&](auto& b) {
      // Row 5 "kong" becomes "king", its slot moved to where "king" leads:
      // a consistent table with one key twice.
      b[blob + LoadLE64(&b[ko + 32 + 8 * 5]) + 1] = 'i';
      for (uint64_t i = 0; i < slots; ++i) {
        if (LoadLE32(&b[slot0 + 8 * i]) == 5) {
          StoreLE32(&b[slot0 + 8 * i], 0xFFFFFFFF);
          StoreLE32(&b[slot0 + 8 * i + 4], 0xFFFFFFFF);
        }
      }
      const uint64_t h = Hash64("king", 4);
      __extension__ typedef unsigned __int128 U128;
      uint64_t s = static_cast<uint64_t>((static_cast<U128>(h) * slots) >> 64);
      while (LoadLE32(&b[slot0 + 8 * s]) != 0xFFFFFFFF) s = (s + 1) % slots;
      StoreLE32(&b[slot0 + 8 * s], 5);
      StoreLE32(&b[slot0 + 8 * s + 4], static_cast<uint32_t>(h));
    }, true);
  }

  // .embz: the notebook table in 3 frames of 2 rows, and damaged copies.
  // good/notebook-6x4-seed123.embz is the .embz 1.0 file (codec 1), made by
  // the 1.0 writer and kept as it is forever; this writes the current one.
  {
    auto table = TableReader::Open(good + "notebook-6x4-seed123.emb");
    if (!table.ok()) return Fail(table.status());
    CompressOptions o;
    o.frame_rows = 2;
    o.threads = 1;
    if (Status st = CompressTable(*table, good + "notebook-6x4-seed123-embz1.1.embz", o); !st.ok()) return Fail(st);
  }
  const std::vector<uint8_t> z = Read(good + "notebook-6x4-seed123-embz1.1.embz");
  const uint64_t seek = LoadLE64(&z[80]);
  auto zvariant = [&](const std::string& name, auto mutate) {
    std::vector<uint8_t> b = z;
    mutate(b);
    Write(bad + name, b);
  };
  zvariant("truncated.embz", [](auto& b) { b.resize(b.size() - 7); });
  zvariant("seek-table-corrupt.embz", [&](auto& b) { b[seek + 9] ^= 0x10; });
  zvariant("newer-major-version.embz", [](auto& b) {
    StoreLE16(&b[12], 2);
    StoreLE16(&b[14], 0);
    Reseal(b);
  });
  zvariant("absurd-prefix-size.embz", [](auto& b) {  // a 668-byte file claiming a 32 TiB prefix
    StoreLE64(&b[40], uint64_t{1} << 46);
    StoreLE64(&b[48], uint64_t{1} << 45);
    Reseal(b);
  });
  // Opens; frame 1 (rows [2, 4)) no longer matches its checksum.
  zvariant("corrupt-frame1.embz", [&](auto& b) {
    const uint64_t frame1 = LoadLE64(&b[seek + 24]);
    b[frame1 + LoadLE64(&b[seek + 32]) - 2] ^= 0x08;
  });
  // Opens, and every checksum of the container matches, but frame 1 (rows
  // [2, 4)) is frame 1 of another table (seed 124): only the table's own
  // block checksum can tell.
  {
    const std::string other = (std::filesystem::temp_directory_path() / "embstore-golden-other").string();
    GenerateSpec other_spec;
    other_spec.rows = 6;
    other_spec.dim = 4;
    other_spec.seed = 124;
    other_spec.sync = false;
    if (Status st = GenerateTable(other + ".emb", other_spec); !st.ok()) return Fail(st);
    auto table = TableReader::Open(other + ".emb");
    if (!table.ok()) return Fail(table.status());
    CompressOptions o;
    o.frame_rows = 2;
    o.threads = 1;
    o.sync = false;
    if (Status st = CompressTable(*table, other + ".embz", o); !st.ok()) return Fail(st);
    Write(bad + "spliced-frame1.embz", SpliceFrame(z, Read(other + ".embz"), 1));
    std::filesystem::remove(other + ".emb");
    std::filesystem::remove(other + ".embz");
  }
  return 0;
}
