// Word vectors and vocabularies as other tools write them: the pieces that
// are byte layouts, as pure functions (the streaming import and export are
// in store/interop/wordvec.h).
//
// - word2vec (the original C tool, gensim's save_word2vec_format; fastText
//   .vec is its text form): a "COUNT DIM" line, then per row the key, a
//   space and DIM values, as text or as little-endian float32;
// - GloVe: the text form without the first line;
// - vocabularies: a Hugging Face tokenizer.json (model.vocab, an object of
//   token -> id or a Unigram list of [token, score], plus added_tokens), a
//   GPT-2 vocab.json (token -> id), or one key per line.
//
// No files, no threads, no exceptions; safe from any thread.

#ifndef EMBSTORE_FORMAT_WORD_VECTORS_H_
#define EMBSTORE_FORMAT_WORD_VECTORS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "format/keys.h"
#include "format/status.h"

namespace embstore {

// The lines of a text in order: Next() gives each without its '\n'.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool Next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    const size_t end = text_.find('\n', pos_);
    const size_t stop = end == std::string_view::npos ? text_.size() : end;
    *line = text_.substr(pos_, stop - pos_);
    pos_ = end == std::string_view::npos ? text_.size() : end + 1;
    ++number_;
    return true;
  }
  uint64_t number() const { return number_; }  // 1-based number of the last line given
  size_t pos() const { return pos_; }           // where the next line starts

 private:
  std::string_view text_;
  size_t pos_ = 0;
  uint64_t number_ = 0;
};

// Python's bytes.rstrip(): the line without trailing ASCII whitespace (as
// gensim strips each line before splitting it on single spaces).
std::string_view RStripAscii(std::string_view s);

// The "COUNT DIM" first line of a word2vec file (two integers split on
// whitespace, as gensim reads it), both at least 1; a corruption error
// names line 1 and quotes it.
Status ParseWord2VecHeader(std::string_view line, uint64_t* count, uint64_t* dim);

// One text value as gensim reads it: NumPy's float32(str), that is Python's
// float() (decimal, inf, nan, a leading + or -) rounded to float32 through
// float64. False when the text is not a number.
bool ParseWordVectorValue(std::string_view text, float* out);

// A float32 as NumPy's repr prints it, which is how gensim writes text
// values: the shortest decimal that reads back to the same float32,
// positional for 1e-4 <= |v| < 1e16, else scientific ("1e-05"); "nan",
// "inf", "-inf", "-0.0". Writes at most 32 bytes at out; returns the end.
char* FormatFloat32(float v, char* out);

enum class VocabFormat { kAuto, kTokenizerJson, kVocabJson, kLines };
// "auto", "tokenizer.json", "vocab.json", "lines"; else invalid-argument.
Result<VocabFormat> ParseVocabFormat(const std::string& name);

// The keys of a vocabulary in id order, for a table of `rows` rows: the ids
// must be exactly 0 .. rows - 1 (a corruption error names a missing, a
// repeated or an out-of-range id, or the line). kAuto: a JSON object with
// "model" is a tokenizer.json, another JSON object a vocab.json, anything
// else one key per line ("\n" or "\r\n" ends a line; line N is row N-1).
// `path` names the file in messages.
Result<KeyList> ParseVocabulary(std::string_view text, uint64_t rows, VocabFormat format, const std::string& path);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_WORD_VECTORS_H_
