// embstore nearest: the k rows closest to a query, by cosine, inner
// product or squared L2 (store/search/nearest.h).

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "format/endian.h"
#include "format/half.h"
#include "format/metadata.h"
#include "format/npy.h"
#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/search/nearest.h"
#include "tools/cli.h"

#include <nlohmann/json.hpp>

namespace embstore::cli {

namespace {

// "0.5,-1,2e3" (commas and/or spaces) as float32 values.
std::vector<float> ParseQueryVector(const std::string& text) {
  std::vector<float> out;
  const char* p = text.data();
  const char* end = p + text.size();
  size_t item = 0;
  while (p < end) {
    while (p < end && (*p == ',' || *p == ' ' || *p == '\t')) ++p;
    if (p == end) break;
    const char* start = p;
    while (p < end && *p != ',' && *p != ' ' && *p != '\t') ++p;
    std::string tok(start, p);
    // Read as a double, then rounded to float32 as NumPy's float32(x) does:
    // 1e-50 becomes 0, 1e39 an infinity (which the search then refuses).
    double v = 0;
    const char* b = tok.data();
    if (tok.size() > 1 && tok[0] == '+' && tok[1] != '-' && tok[1] != '+') ++b;
    auto r = std::from_chars(b, tok.data() + tok.size(), v);
    if (r.ec == std::errc::result_out_of_range) {
      throw UsageError{"--vector: value " + std::to_string(item) + " '" + tok + "' is out of range"};
    }
    if (r.ec != std::errc() || r.ptr != tok.data() + tok.size()) {
      throw UsageError{"--vector: value " + std::to_string(item) + " '" + tok + "' is not a number"};
    }
    out.push_back(static_cast<float>(v));
    ++item;
  }
  if (out.empty()) throw UsageError{"--vector: no values (give them as \"x,y,...\")"};
  return out;
}

// A .npy of float32 or float16 queries: shape (dim,) or (n, dim).
Status ReadQueryNpy(const std::string& path, uint64_t dim, std::vector<float>* out) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  const auto bytes = file->bytes();
  auto h = ParseNpyHeader(bytes.first(std::min<uint64_t>(bytes.size(), kNpyMaxHeaderSize + 12)), bytes.size());
  const std::string want = "queries must be little-endian float32 or float16 ('<f4' or '<f2')";
  if (!h.ok()) {
    // A dtype no table is made from (integers, strings): the same usage
    // error as float64, not import's message.
    if (h.status().code() == Status::Code::kNotSupported) {
      const std::string& m = h.status().message();
      const size_t end = m.find("' is not supported");
      if (m.rfind("dtype '", 0) == 0 && end != std::string::npos) {  // integers, strings, ...
        return Status::InvalidArgument(path + ": " + want + ", not '" + m.substr(7, end - 7) + "'");
      }
      return Status::InvalidArgument(path + ": " + want + ", not Python objects or a structured dtype");
    }
    return h.status().WithContext(path);
  }
  if ((h->type != SourceType::kFloat32 && h->type != SourceType::kFloat16) || h->big_endian) {
    return Status::InvalidArgument(path + ": " + want + ", not '" + h->descr + "'");
  }
  if (h->fortran_order && h->shape.size() == 2 && h->shape[0] > 1 && h->shape[1] > 1) {
    return Status::InvalidArgument(path + ": queries are in Fortran order; save them C-ordered (np.ascontiguousarray)");
  }
  uint64_t n = 0, d = 0;
  if (h->shape.size() == 1) {
    n = h->shape[0] == 0 ? 0 : 1;
    d = h->shape[0];
  } else if (h->shape.size() == 2) {
    n = h->shape[0];
    d = h->shape[1];
  } else {
    return Status::InvalidArgument(path + ": queries must have shape (dim,) or (n, dim), not " +
                                   std::to_string(h->shape.size()) + " dimensions");
  }
  if (n == 0 || d == 0) return Status::InvalidArgument(path + ": the query file is empty");
  if (d != dim) {
    return Status::InvalidArgument(path + ": queries have " + std::to_string(d) + " values each; the table's dim is " +
                                   std::to_string(dim));
  }
  // The header's shape is checked against the file's size by ParseNpyHeader:
  // this allocation is bounded by the file.
  const uint8_t* data = bytes.data() + h->data_offset;
  out->resize(n * d);
  if (h->type == SourceType::kFloat32) {
    std::memcpy(out->data(), data, n * d * 4);
  } else {
    for (uint64_t i = 0; i < n * d; ++i) (*out)[i] = HalfToFloat(LoadLE16(data + 2 * i));
  }
  return Status::OK();
}

void PutScore(std::string& s, float v) {
  if (std::isnan(v)) {
    s += "NaN";
    return;
  }
  if (std::isinf(v)) {
    s += v > 0 ? "Infinity" : "-Infinity";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  s.append(buf, r.ptr);
}

// The results as a NumPy structured array of shape (queries, k), fields
// 'id' (int64) and 'score' (float32): np.load(OUT)["id"], ["score"].
Status WriteNearestNpy(const std::string& path, bool force, const SearchResult& r) {
  std::string head = EncodeNpyHeaderRaw("[('id', '<i8'), ('score', '<f4')]", {r.queries, r.k});
  std::string body(r.ids.size() * 12, '\0');
  for (size_t i = 0; i < r.ids.size(); ++i) {
    StoreLE64(reinterpret_cast<uint8_t*>(&body[i * 12]), r.ids[i]);
    uint32_t bits;
    std::memcpy(&bits, &r.scores[i], 4);
    StoreLE32(reinterpret_cast<uint8_t*>(&body[i * 12 + 8]), bits);
  }
  AtomicFileOptions options;
  options.no_replace = !force;
  auto out = AtomicFile::Create(path, head.size() + body.size(), options);
  if (!out.ok()) return out.status();
  Status s = (*out)->WriteAt(head.data(), head.size(), 0);
  if (s.ok()) s = (*out)->WriteAt(body.data(), body.size(), head.size());
  if (s.ok()) s = (*out)->Commit();
  return s;
}

}  // namespace

int NearestMain(int argc, char** argv) {
  std::string path, vector_text, queries_path, metric_name = "cosine", output, threads_text = "0";
  std::vector<std::string> id_texts, keys, owners;
  std::string k_text = "10";
  bool force = false;
  po::options_description options("options");
  options.add_options()
      ("table", po::value(&path)->required(), "FILE.emb, FILE.embz or shm:NAME")
      ("id", po::value(&id_texts)->multitoken(), "query by row: --id 3 (several: one query each)")
      ("key", po::value(&keys)->multitoken(), "query by key (a table with keys): --key king")
      ("vector", po::value(&vector_text), "query by values: --vector \"x,y,...\" (dim of them)")
      ("queries", po::value(&queries_path), "queries from a .npy: float32 or float16, shape (dim,) or (n, dim)")
      (",k", po::value(&k_text)->default_value("10"), "results per query (1 to the table's rows)")
      ("metric", po::value(&metric_name)->default_value("cosine"), "cosine, dot or l2 (squared distance)")
      ("exclude-self", "leave each --id/--key query's own row out of its results")
      ("threads,T", po::value(&threads_text)->default_value("0"), "worker threads, 0: all cores")
      ("json", "print a JSON array: one object per query, its results closest first")
      ("output,o", po::value(&output), "write the results to OUT.npy instead: a (queries, k) array of "
                                       "records ('id' int64, 'score' float32)")
      ("force,f", po::bool_switch(&force), "overwrite an existing output file");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("table", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore nearest TABLE (--id N | --key K | --vector \"x,y,...\" | --queries Q.npy)\n"
      "                        [-k 10] [--metric cosine|dot|l2] [--exclude-self] [--threads N] [--json] [-o OUT.npy]\n\n"
      "Prints the k rows closest to each query, closest first: 'RANK<TAB>ID<TAB>[KEY<TAB>]SCORE'\n"
      "lines under a '# query' line. An exact scan of every row, in place (half-precision rows\n"
      "widened in registers, a .embz a frame at a time). Scores: cosine and dot, larger is\n"
      "closer; l2 is the squared distance, smaller is closer. Equal scores list the lower id\n"
      "first; a row holding NaN scores NaN and comes last (an infinity: NaN under cosine, NaN or\n"
      "+inf under l2).";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  std::vector<uint64_t> ids;
  for (const std::string& text : id_texts) ids.push_back(ParseU64(text, "--id"));
  const uint64_t k = ParseU64(k_text, "-k");
  const int sources = (!ids.empty()) + (!keys.empty()) + (vm.count("vector") > 0) + (vm.count("queries") > 0);
  if (sources == 0) throw UsageError{"no query given (--id, --key, --vector or --queries)"};
  if (sources > 1) throw UsageError{"give one of --id, --key, --vector and --queries"};
  const bool exclude_self = vm.count("exclude-self") > 0;
  if (exclude_self && ids.empty() && keys.empty()) throw UsageError{"--exclude-self needs --id or --key queries"};
  const bool json = vm.count("json") > 0;
  if (vm.count("output") && output.empty()) throw UsageError{"-o: the output path is empty"};
  if (!output.empty() && (output.size() < 5 || output.compare(output.size() - 4, 4, ".npy") != 0)) {
    throw UsageError{"-o: results are written as a NumPy .npy file: name it OUT.npy, not '" + output + "'"};
  }
  if (json && !output.empty()) throw UsageError{"--json and -o cannot be combined"};
  if (k == 0) throw UsageError{"-k must be at least 1"};
  auto metric = ParseMetric(metric_name);
  if (!metric.ok()) throw UsageError{"--metric: " + metric.status().message()};
  const unsigned threads = ParseThreads(threads_text);
  std::vector<float> vector;
  if (vm.count("vector")) vector = ParseQueryVector(vector_text);
  if (!output.empty()) {
    if (Status s = CheckOutput(output, force); !s.ok()) return Report("nearest", s);
  }

  auto opened = OpenTable(path, OpenOptionsFrom(owners));
  if (!opened.ok()) return Report("nearest", opened.status());
  const Table& table = **opened;
  const uint64_t dim = table.dim();
  const KeysView* key_index = table.keys();

  SearchRequest req;
  req.k = k;
  req.metric = *metric;
  req.threads = threads;
  std::vector<float> queries;
  std::vector<uint64_t> query_ids;  // the row each query came from (--id, --key)
  if (!keys.empty()) {
    auto found = FindKeys(table, path, keys, "query by --id or --vector");
    if (!found.ok()) return Report("nearest", found.status());
    query_ids = std::move(*found);
  } else if (!ids.empty()) {
    for (uint64_t id : ids) {
      if (id >= table.rows()) return Report("nearest", Status::OutOfRange(path + ": " + OutOfRangeMessage(id, table.rows())));
      query_ids.push_back(id);
    }
  }
  if (!query_ids.empty()) {
    queries.resize(query_ids.size() * dim);
    if (Status s = table.Gather(query_ids, queries); !s.ok()) return Report("nearest", s);
    if (exclude_self)
      for (uint64_t id : query_ids) req.exclude.push_back({id});
  } else if (!vector.empty()) {
    if (vector.size() != dim) {
      return Report("nearest", Status::InvalidArgument("--vector has " + std::to_string(vector.size()) +
                                                       " values; the table's dim is " + std::to_string(dim)));
    }
    queries = std::move(vector);
  } else {
    if (Status s = ReadQueryNpy(queries_path, dim, &queries); !s.ok()) return Report("nearest", s);
  }
  req.queries = queries;
  auto result = Interruptible([&](const CancelToken* cancel) {
    req.cancel = cancel;
    return Search(table, req);
  });
  if (!result.ok()) return Report("nearest", result.status().WithContext(path));
  const SearchResult& r = *result;

  if (!output.empty()) {
    if (Status s = WriteNearestNpy(output, force, r); !s.ok()) return Report("nearest", s);
    return kExitOk;
  }
  // Keys of the results, looked up before anything is printed.
  auto key_of = [&](uint64_t id) -> Result<std::string> {
    auto key = key_index->Key(id);
    if (!key.ok()) return key.status().WithContext(path);
    return std::string(*key);
  };
  std::string out;
  if (json) out += "[";
  for (uint64_t q = 0; q < r.queries; ++q) {
    if (json) {
      out += q == 0 ? "\n{\"query\": " : ",\n{\"query\": ";
      out += std::to_string(q);
      if (!query_ids.empty()) {
        out += ", \"id\": " + std::to_string(query_ids[q]);
        if (key_index != nullptr) {
          auto key = key_of(query_ids[q]);
          if (!key.ok()) return Report("nearest", key.status());
          out += ", \"key\": " + nlohmann::json(*key).dump();
        }
      }
      out += ", \"metric\": \"" + std::string(MetricName(r.metric)) + "\", \"results\": [";
    } else {
      out += "# query " + std::to_string(q);
      if (!query_ids.empty()) {
        out += ": id " + std::to_string(query_ids[q]);
        if (key_index != nullptr) {
          auto key = key_of(query_ids[q]);
          if (!key.ok()) return Report("nearest", key.status());
          out += " " + EscapeForDisplay(*key);
        }
      }
      out += std::string(" (") + MetricName(r.metric) + ", k " + std::to_string(r.k) + ")\n";
    }
    for (uint64_t i = 0; i < r.k; ++i) {
      const uint64_t id = r.ids_of(q)[i];
      std::string key;
      if (key_index != nullptr) {
        auto got = key_of(id);
        if (!got.ok()) return Report("nearest", got.status());
        key = std::move(*got);
      }
      if (json) {
        out += i == 0 ? "{\"id\": " : ", {\"id\": ";
        out += std::to_string(id);
        if (key_index != nullptr) out += ", \"key\": " + nlohmann::json(key).dump();
        out += ", \"score\": ";
        PutScore(out, r.scores_of(q)[i]);
        out += "}";
      } else {
        out += std::to_string(i + 1) + "\t" + std::to_string(id) + "\t";
        if (key_index != nullptr) out += EscapeForDisplay(key) + "\t";
        PutScore(out, r.scores_of(q)[i]);
        out += "\n";
      }
    }
    if (json) out += "]}";
  }
  if (json) out += "\n]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return FinishStdout("nearest");
}

}  // namespace embstore::cli
