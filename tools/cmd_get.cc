// embstore get: rows out, as text, JSON or raw bytes as stored.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "store/core/half.h"
#include "store/core/table_reader.h"
#include "tools/cli.h"

#include <nlohmann/json.hpp>

namespace embstore::cli {

namespace {

// Collects output and writes it to stdout in large pieces.
class Out {
 public:
  ~Out() { Flush(); }
  char* Reserve(size_t n) {
    if (buf_.size() - used_ < n) {
      Flush();
      if (buf_.size() < n) buf_.resize(n);
    }
    return buf_.data() + used_;
  }
  void Commit(size_t n) { used_ += n; }
  void Put(const char* s, size_t n) {
    std::memcpy(Reserve(n), s, n);
    Commit(n);
  }
  void Put(char c) { Put(&c, 1); }
  // Writes bytes straight through (used for --raw).
  bool WriteDirect(const void* p, size_t n) {
    if (!Flush()) return false;
    return WriteAll(p, n);
  }
  bool Flush() {
    bool ok = WriteAll(buf_.data(), used_);
    used_ = 0;
    return ok;
  }
  bool failed() const { return failed_; }
  int error() const { return error_; }

 private:
  bool WriteAll(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0 && !failed_) {
      ssize_t w = ::write(STDOUT_FILENO, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        failed_ = true;
        error_ = errno;
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return !failed_;
  }
  std::vector<char> buf_ = std::vector<char>(1 << 20);
  size_t used_ = 0;
  bool failed_ = false;
  int error_ = 0;
};

// JSON has no NaN or infinities; write them as Python's json module does.
void PutJsonFloat(Out& out, float v, int precision) {
  if (std::isnan(v)) return out.Put("NaN", 3);
  if (std::isinf(v)) return v > 0 ? out.Put("Infinity", 8) : out.Put("-Infinity", 9);
  char* p = out.Reserve(128);
  // Default: the shortest text that reads back as the same float.
  auto r = precision < 0 ? std::to_chars(p, p + 128, v) : std::to_chars(p, p + 128, v, std::chars_format::fixed, precision);
  out.Commit(static_cast<size_t>(r.ptr - p));
}

}  // namespace

int GetMain(int argc, char** argv) {
  std::string path;
  std::vector<std::string> ids, keys;
  int precision = -1;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("file", po::value(&path)->required(), "table file")
      ("ids", po::value(&ids)->multitoken(), "row ids: N, or a half-open range A:B (A: to the end, :B from 0)")
      ("key,k", po::value(&keys)->multitoken(), "rows by key (a table with keys): --key king queen")
      ("precision", po::value(&precision), "decimals to print (text default 4; JSON default: exact)")
      ("json", "print a JSON array of {\"id\": N, \"row\": [...]} objects")
      ("raw", "write the rows' bytes as stored, nothing else: little-endian float32, float16 or bfloat16 "
              "(the table's dtype, as 'embstore info' shows it)");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("file", 1).add("ids", -1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore get FILE ID... [--precision N | --json | --raw]\n"
      "       embstore get FILE --key KEY... [--precision N | --json | --raw]\n\n"
      "Prints rows, one line each, values separated by spaces (4 decimals, like PyTorch; float16\n"
      "and bfloat16 values are printed as the float32 they widen to exactly).\n"
      "IDs are row numbers or half-open ranges: 'embstore get t.emb 0:50257 --raw' streams every row.\n"
      "Keys look rows up in a table with keys (imported word vectors, 'embstore keys attach'); with\n"
      "--json each row also gives its key.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  const bool json = vm.count("json"), raw = vm.count("raw");
  if (json && raw) throw UsageError{"--json and --raw cannot be combined"};
  if (raw && vm.count("precision")) throw UsageError{"--precision does not apply to --raw"};
  if (vm.count("precision") && (precision < 0 || precision > 40)) {
    throw UsageError{"--precision: " + std::to_string(precision) + " is not in [0, 40]"};
  }
  if (ids.empty() && keys.empty()) throw UsageError{"no ids given (a row number N or a range A:B, or --key KEY)"};
  if (!ids.empty() && !keys.empty()) throw UsageError{"give ids or --key, not both"};
  auto ranges = ParseIds(ids);
  if (!ranges.ok()) throw UsageError{ranges.status().message()};

  auto opened = OpenTable(path, OpenOptionsFrom(owners));
  if (!opened.ok()) return Report("get", opened.status());
  const Table& table = **opened;
  const KeysView* key_index = table.keys();
  if (!keys.empty()) {
    // Every key is looked up before anything is printed.
    auto found = FindKeys(table, path, keys, "rows by id only");
    if (!found.ok()) return Report("get", found.status());
    for (size_t i = 0; i < keys.size(); ++i) ranges->push_back(IdRange{(*found)[i], (*found)[i] + 1, false, keys[i]});
  }
  // Rows in a mapping are printed from it; other tables read them up to
  // 1 MiB (and at least one row) at a time, never past the end of the range
  // asked for: a single id reads one row, into a buffer of one row.
  const TableReader* mapped = table.mapped();
  const uint64_t rows = table.rows();
  const uint64_t dim = table.dim();
  // Every id is checked before anything is printed.
  if (Status st = ResolveIds(&*ranges, rows); !st.ok()) return Report("get", st);
  const Dtype dtype = table.dtype();
  const uint64_t row_size = table.row_size();  // bytes of a row as stored
  const uint64_t read_rows = std::max<uint64_t>(1, (uint64_t{1} << 20) / row_size);
  std::vector<uint8_t> buf;  // grows to what a read needs
  uint64_t buf_first = 0, buf_count = 0;
  Status row_error;
  // Row id's bytes as stored; `end` bounds how far ahead a read may go.
  auto stored_row = [&](uint64_t id, uint64_t end) -> std::span<const uint8_t> {
    if (mapped) return mapped->row_bytes(id, 1).first(row_size);
    if (id < buf_first || id >= buf_first + buf_count) {
      buf_first = id;
      buf_count = std::min(read_rows, end - id);
      if (buf.size() < buf_count * row_size) buf.resize(buf_count * row_size);
      if (row_error.ok()) {
        row_error = table.ReadRows(buf_first, buf_count, dtype, std::span<uint8_t>(buf.data(), buf_count * row_size));
      }
    }
    return std::span<const uint8_t>(buf.data() + (id - buf_first) * row_size, row_size);
  };
  // The same as float32 values (widened exactly from a half type).
  std::vector<float> widened(dtype == Dtype::kFloat32 ? 0 : dim);
  auto row = [&](uint64_t id, uint64_t end) -> std::span<const float> {
    const std::span<const uint8_t> bytes = stored_row(id, end);
    if (dtype == Dtype::kFloat32) return {reinterpret_cast<const float*>(bytes.data()), dim};
    ConvertElements(dtype, bytes.data(), Dtype::kFloat32, widened.data(), dim);
    return widened;
  };

  Out out;
  if (raw) {
    for (const IdRange& r : *ranges) {
      if (out.failed()) break;
      if (mapped && mapped->header().row_stride == row_size) {
        // Rows of a range are contiguous in the file: one write, no copy.
        auto bytes = mapped->row_bytes(r.begin, r.end - r.begin);
        if (!out.WriteDirect(bytes.data(), bytes.size())) break;
        continue;
      }
      for (uint64_t id = r.begin; id < r.end && row_error.ok() && !out.failed(); ++id) {
        auto v = stored_row(id, r.end);  // buffered: one write per megabyte, not per row
        if (row_error.ok()) out.Put(reinterpret_cast<const char*>(v.data()), v.size());
      }
    }
  } else if (json) {
    out.Put('[');
    bool first = true;
    for (const IdRange& r : *ranges) {
      for (uint64_t id = r.begin; id < r.end && row_error.ok() && !out.failed(); ++id) {
        auto v = row(id, r.end);
        if (!row_error.ok()) break;
        char head[64];
        int n = std::snprintf(head, sizeof(head), "%s\n{\"id\": %llu, ", first ? "" : ",",
                              static_cast<unsigned long long>(id));
        out.Put(head, static_cast<size_t>(n));
        if (key_index != nullptr) {
          auto key = key_index->Key(id);
          if (!key.ok()) {
            row_error = key.status().WithContext(path);
            break;
          }
          const std::string quoted = nlohmann::json(std::string(*key)).dump();
          out.Put("\"key\": ", 7);
          out.Put(quoted.data(), quoted.size());
          out.Put(", ", 2);
        }
        out.Put("\"row\": [", 8);
        first = false;
        for (uint64_t i = 0; i < dim; ++i) {
          if (i) out.Put(", ", 2);
          PutJsonFloat(out, v[i], precision);
        }
        out.Put("]}", 2);
      }
    }
    // Closed only when every row is there: a row that cannot be read leaves
    // the array unclosed, so no JSON reader mistakes the rows before it for
    // the answer.
    if (row_error.ok()) out.Put("\n]\n", 3);
  } else {
    if (precision < 0) precision = 4;
    for (const IdRange& r : *ranges) {
      // A failed write (a full disk, a closed pipe) stops the formatting.
      for (uint64_t id = r.begin; id < r.end && row_error.ok() && !out.failed(); ++id) {
        auto v = row(id, r.end);
        if (!row_error.ok()) break;
        for (uint64_t i = 0; i < dim; ++i) {
          if (i) out.Put(' ');
          char* p = out.Reserve(128);
          auto res = std::to_chars(p, p + 128, v[i], std::chars_format::fixed, precision);
          out.Commit(static_cast<size_t>(res.ptr - p));
        }
        out.Put('\n');
      }
    }
  }
  if (!row_error.ok()) {
    out.Flush();
    return Report("get", row_error);
  }
  // A reader that stops early (| head) ends us with SIGPIPE, as it does cat.
  out.Flush();
  if (out.failed()) {
    return Report("get", Status::IOError(std::string("writing to stdout: ") + std::strerror(out.error())));
  }
  return kExitOk;
}

}  // namespace embstore::cli
