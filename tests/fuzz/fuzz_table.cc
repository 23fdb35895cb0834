// A table file (and a shared-memory segment, which holds the same bytes):
// header rules R1-R24, metadata, keys, then every read path on what opens
// (nearest neighbours included).
#include <cstdint>
#include <vector>

#include "store/core/table_reader.h"
#include "store/search/nearest.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  embstore::fuzz::MemFile file(data, size);
  auto t = embstore::TableReader::Open(file.path());
  if (!t.ok()) return 0;
  auto report = t->Verify({.threads = 1, .progress = {}});
  (void)report;
  std::vector<float> out(t->dim() * 2);
  const uint64_t ids[2] = {0, t->rows() - 1};
  (void)t->Gather(ids, out);  // widened to float32 from any dtype
  std::vector<uint8_t> stored(t->row_size() * 2);
  (void)t->Gather(ids, t->dtype(), stored);
  (void)t->RowChecked(t->rows());
  if (const embstore::KeysView* keys = t->keys()) {  // every key both ways, then the full check
    for (uint64_t r = 0; r < keys->size() && r < 256; ++r) {
      auto k = keys->Key(r);
      if (k.ok()) (void)keys->Find(*k);
    }
    (void)keys->Find("king");
    (void)keys->Validate();
  }
  // Nearest neighbours over whatever opened: every row's bytes, any values.
  std::vector<float> query(t->dim(), 1.0f);
  for (embstore::Metric m : {embstore::Metric::kCosine, embstore::Metric::kL2}) {
    embstore::SearchRequest req;
    req.queries = query;
    req.k = 2;
    req.metric = m;
    req.threads = 1;
    (void)embstore::Search(*t, req);
  }
  float sum = 0;
  for (uint64_t r = 0; r < t->rows() && r < 64; ++r) {
    if (t->dtype() == embstore::Dtype::kFloat32) {
      sum += t->row(r)[t->dim() - 1];
    } else {
      sum += static_cast<float>(t->row_as<uint16_t>(r)[t->dim() - 1]);
    }
  }
  return sum == 12345.0f ? 0 : 0;
}
