// Word vectors and vocabularies (store/interop/wordvec.h): the first byte
// picks word2vec text, word2vec binary, GloVe, or a vocabulary (lines,
// vocab.json, tokenizer.json); the rest is the file. What imports is read
// back by key.
#include <unistd.h>

#include <cstdint>
#include <string>

#include "store/core/table_reader.h"
#include "store/interop/wordvec.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t pick = data[0] % 6;
  embstore::fuzz::MemFile file(data + 1, size - 1);
  if (pick >= 3) {
    const embstore::VocabFormat f = pick == 3   ? embstore::VocabFormat::kLines
                                    : pick == 4 ? embstore::VocabFormat::kVocabJson
                                                : embstore::VocabFormat::kTokenizerJson;
    for (uint64_t rows : {uint64_t{1}, uint64_t{3}, uint64_t{16}}) (void)embstore::ReadVocabulary(file.path(), rows, f);
    return 0;
  }
  const embstore::WordVecFormat f = pick == 0   ? embstore::WordVecFormat::kWord2VecText
                                    : pick == 1 ? embstore::WordVecFormat::kWord2VecBinary
                                                : embstore::WordVecFormat::kGlove;
  embstore::ImportOptions o;
  o.sync = false;
  static const std::string dst = "/dev/shm/embstore-fuzz-wordvec-" + std::to_string(::getpid()) + ".emb";
  if (embstore::ImportWordVectors(file.path(), dst, f, o).ok()) {
    auto t = embstore::TableReader::Open(dst);
    if (t.ok() && t->keys() != nullptr) {
      for (uint64_t r = 0; r < t->rows() && r < 64; ++r) {
        auto k = t->keys()->Key(r);
        if (!k.ok()) __builtin_trap();  // a table embstore wrote must read back
        auto id = t->keys()->Find(*k);
        if (!id.ok() || !id->has_value() || **id != r) __builtin_trap();
      }
    }
    ::unlink(dst.c_str());
  }
  return 0;
}
