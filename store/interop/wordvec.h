// Keyed tables in and out: word vectors (word2vec text and binary, GloVe,
// fastText .vec) and model vocabularies (Hugging Face tokenizer.json,
// GPT-2 vocab.json, one key per line).
//
// Import reads the source twice through a read-only mapping, so a file
// larger than RAM imports without being loaded: a first pass finds every
// key and checks the layout (counts, keys, lengths), a second parses the
// values into a TableWriter. Every error names the line (text) or record
// (binary) and nothing is written. Values are read as gensim reads them:
// binary float32 as stored, text as a float64 rounded to float32 (NumPy's
// float32(str)).
//
// The byte layouts (the header line, values, vocabularies) are parsed in
// format/word_vectors.h. Export writes what gensim's
// KeyedVectors.load_word2vec_format reads back:
// binary float32 bits, or each value as NumPy prints a float32 (its repr,
// the shortest decimal that reads back to the same float32).
//
// Stateless; safe from any thread.

#ifndef EMBSTORE_STORE_INTEROP_WORDVEC_H_
#define EMBSTORE_STORE_INTEROP_WORDVEC_H_

#include <cstdint>
#include <string>

#include "format/keys.h"
#include "format/word_vectors.h"
#include "format/status.h"
#include "store/core/table.h"
#include "store/interop/convert.h"

namespace embstore {

enum class WordVecFormat {
  kWord2VecText,    // "COUNT DIM" line, then "key v1 .. vD" lines (also fastText .vec)
  kWord2VecBinary,  // "COUNT DIM" line, then "key " + D little-endian float32, each optionally after '\n'
  kGlove,           // "key v1 .. vD" lines, no header
};
const char* WordVecFormatName(WordVecFormat format);  // "word2vec text", ...

// Imports a word-vector file as a table with keys (options.dtype: the
// table's type; unset: float32). Called by ImportTable for the word-vector
// SourceFormats.
Status ImportWordVectors(const std::string& source, const std::string& dst, WordVecFormat format,
                         const ImportOptions& options);

// Writes a keyed table as word2vec (text or binary) for gensim; a key
// gensim could not read back (one holding a space or a newline) is an
// error naming its row, and nothing is written.
Status ExportWord2Vec(const Table& table, const std::string& dst, bool binary, const ExportOptions& options);

// The keys of a vocabulary file (format/word_vectors.h, ParseVocabulary),
// read through a mapping.
Result<KeyList> ReadVocabulary(const std::string& path, uint64_t rows, VocabFormat format);

struct AttachOptions {
  bool sync = true;
  bool replace = true;
  std::function<void(uint64_t, uint64_t)> progress;  // (rows done, rows total)
  const CancelToken* cancel = nullptr;
};
// A new table at dst: `table`'s rows and metadata (plus keys.source, the
// vocabulary's file name) with these keys, replacing any it had.
Status AttachKeys(const Table& table, const KeyList& keys, const std::string& source_name, const std::string& dst,
                  const AttachOptions& options);

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_WORDVEC_H_
