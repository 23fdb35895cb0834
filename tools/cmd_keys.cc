// embstore keys: list a table's keys, or attach keys to a table from a
// vocabulary file (store/interop/wordvec.h).

#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "store/interop/wordvec.h"
#include "tools/cli.h"

namespace embstore::cli {

namespace {

int AttachMain(int argc, char** argv) {
  std::string input, vocab, output, format = "auto";
  bool force = false, quiet = false, no_fsync = false;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("table", po::value(&input)->required(), "FILE.emb, FILE.embz or shm:NAME")
      ("vocab", po::value(&vocab)->required(), "tokenizer.json, vocab.json, or one key per line")
      ("output,o", po::value(&output)->required(), "the new table, FILE.emb (never half-written)")
      ("vocab-format", po::value(&format)->default_value("auto"), "auto, tokenizer.json, vocab.json or lines")
      ("force,f", po::bool_switch(&force), "overwrite an existing output file")
      ("quiet,q", po::bool_switch(&quiet), "no progress bar")
      ("no-fsync", po::bool_switch(&no_fsync), "skip fsync before the rename");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("table", 1).add("vocab", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore keys attach TABLE VOCAB -o OUT.emb [--vocab-format auto|tokenizer.json|vocab.json|lines]\n\n"
      "Writes a copy of TABLE whose rows have keys: from a Hugging Face tokenizer.json (model.vocab and\n"
      "added_tokens), a GPT-2 style vocab.json ({\"token\": id, ...}) or a text file with one key per\n"
      "line (line N is row N-1). The ids must be exactly 0 .. rows-1, each once; keys must be unique\n"
      "UTF-8. Keys the table had are replaced.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  auto vf = ParseVocabFormat(format);
  if (!vf.ok()) throw UsageError{"--vocab-format: " + vf.status().message()};
  if (Status st = CheckOutput(output, force); !st.ok()) return Report("keys attach", st);
  auto table = OpenTable(input, OpenOptionsFrom(owners));
  if (!table.ok()) return Report("keys attach", table.status());
  auto keys = ReadVocabulary(vocab, (*table)->rows(), *vf);
  if (!keys.ok()) return Report("keys attach", keys.status());
  AttachOptions o;
  o.sync = !no_fsync;
  o.replace = force;
  ProgressBar bar("keys attach", (*table)->rows(), "rows");
  if (!quiet && bar.enabled()) o.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return AttachKeys(**table, *keys, std::filesystem::path(vocab).filename().string(), output, o);
  });
  bar.Done();
  return st.ok() ? kExitOk : Report("keys attach", st);
}

}  // namespace

int KeysMain(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "attach") == 0) return AttachMain(argc - 1, argv + 1);
  std::string path, prefix;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("table", po::value(&path)->required(), "FILE.emb, FILE.embz or shm:NAME")
      ("prefix", po::value(&prefix), "only keys that start with these bytes")
      ("json", "print a JSON array of {\"id\": N, \"key\": \"...\"} objects");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("table", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore keys TABLE [--prefix P] [--json]\n"
      "       embstore keys attach TABLE VOCAB -o OUT.emb   (see 'embstore keys attach --help')\n\n"
      "Lists a table's keys in row order, one 'ID<TAB>KEY' line each (control characters\n"
      "escaped; --json gives the exact keys).";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  const bool json = vm.count("json");
  auto opened = OpenTable(path, OpenOptionsFrom(owners));
  if (!opened.ok()) return Report("keys", opened.status());
  const KeysView* keys = (*opened)->keys();
  if (keys == nullptr) return Report("keys", Status::InvalidArgument(path + ": the table has no keys (rows by id only)"));
  std::string out;
  bool first = true;
  if (json) out += "[";
  for (uint64_t id = 0; id < keys->size(); ++id) {
    auto key = keys->Key(id);
    if (!key.ok()) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      return Report("keys", key.status().WithContext(path));
    }
    if (key->substr(0, prefix.size()) != prefix) continue;
    if (json) {
      out += first ? "\n" : ",\n";
      out += "{\"id\": " + std::to_string(id) + ", \"key\": " + nlohmann::json(std::string(*key)).dump() + "}";
    } else {
      out += std::to_string(id) + "\t" + EscapeForDisplay(std::string(*key)) + "\n";
    }
    first = false;
    if (out.size() >= (1 << 20)) {
      if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) break;
      out.clear();
    }
  }
  if (json) out += "\n]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return FinishStdout("keys");
}

}  // namespace embstore::cli
