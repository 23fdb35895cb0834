// Helpers shared by the unit tests: status assertions and a scratch folder.

#ifndef EMBSTORE_TESTS_TEST_UTIL_H_
#define EMBSTORE_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/status.h"
#include "store/core/table.h"
#include "store/embz/embz.h"

#define ASSERT_OK(expr)                                        \
  do {                                                         \
    const ::embstore::Status emb_s_ = (expr);                  \
    ASSERT_TRUE(emb_s_.ok()) << emb_s_.ToString();             \
  } while (0)
#define EXPECT_OK(expr)                                        \
  do {                                                         \
    const ::embstore::Status emb_s_ = (expr);                  \
    EXPECT_TRUE(emb_s_.ok()) << emb_s_.ToString();             \
  } while (0)

namespace embstore::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/embstore-test-XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Names of everything in the folder, hidden files included.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    return names;
  }

 private:
  std::string path_;
};

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Decompress on n threads without fsync.
inline DecompressOptions NoSync(unsigned threads) {
  DecompressOptions o;
  o.threads = threads;
  o.sync = false;
  return o;
}

// Verify on n threads, no progress.
inline VerifyOptions Threads(unsigned n) {
  VerifyOptions o;
  o.threads = n;
  return o;
}

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace embstore::testing

#endif  // EMBSTORE_TESTS_TEST_UTIL_H_
