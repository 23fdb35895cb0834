// The embstore Python module: tables as zero-copy NumPy arrays, and the
// command line's verbs as functions. A thin layer over store/: every check,
// every byte read or written is store/'s; this file converts arguments and
// results, releases the GIL around the work, and turns a Status into an
// exception carrying its message.
//
//   import embstore
//   t = embstore.open("table.emb")       # also "table.embz", "shm:NAME"
//   t.array                              # read-only numpy view of the mapping
//   t[[3, 1, 4]]                         # rows (a new array)

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/eval.h>
#include <pybind11/stl.h>

#include <signal.h>

#include <atomic>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/checksum.h"
#include "format/status.h"
#include "store/core/atomic_file.h"
#include "store/core/cancel.h"
#include "store/core/table_reader.h"
#include "store/core/version.h"
#include "store/embz/embz.h"
#include "store/interop/open_table.h"
#include "store/interop/convert.h"
#include "store/interop/shared_table.h"
#include "store/interop/shards.h"
#include "store/interop/wordvec.h"
#include "store/search/nearest.h"
#include "store/torch/generate.h"
#include "tools/progress.h"

namespace py = pybind11;

namespace embstore::python {

namespace {

// ---- errors ----------------------------------------------------------------

// The exception classes, one per Status code, made once at import. Each is
// also the builtin a Python user would catch for that failure.
// The lazy views of a table's keys: nothing is copied out of the mapping
// until asked for.
constexpr const char* kViewSource = R"(
import collections.abc as _abc

class KeyToIndex(_abc.Mapping):
    """A table's keys -> row ids, read-only, looked up in the table's mapping."""
    __slots__ = ("_table",)
    def __init__(self, table):
        if not table.has_keys:
            table.key(0)  # raises NotSupportedError naming the table
        self._table = table
    def __getitem__(self, key):
        if not isinstance(key, str):
            raise KeyError(key)
        return self._table.index(key)
    def __contains__(self, key):
        return key in self._table
    def __len__(self):
        return len(self._table)
    def __iter__(self):
        key = self._table.key
        return (key(i) for i in range(len(self._table)))
    def __repr__(self):
        return "<embstore key_to_index of %d keys>" % len(self)

class IndexToKey(_abc.Sequence):
    """A table's row ids -> keys, read-only, read from the table's mapping."""
    __slots__ = ("_table",)
    def __init__(self, table):
        if not table.has_keys:
            table.key(0)
        self._table = table
    def __getitem__(self, i):
        n = len(self._table)
        if isinstance(i, slice):
            return [self._table.key(j) for j in range(*i.indices(n))]
        i = i.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("index %d out of range for %d keys" % (i, n))
        return self._table.key(i)
    def __len__(self):
        return len(self._table)
    def __contains__(self, key):
        return key in self._table
    def index(self, value, start=0, stop=9223372036854775807):  # sys.maxsize, as Sequence.index
        start, stop, _ = slice(start, stop).indices(len(self._table))
        i = self._table.index(value) if value in self._table else -1
        if i < 0 or not start <= i < stop:
            raise ValueError("%r is not in the table's keys" % (value,))
        return i
    def count(self, value):
        return 1 if value in self._table else 0
    def __repr__(self):
        return "<embstore index_to_key of %d keys>" % len(self)

def most_similar(table, positive=None, negative=None, topn=10, restrict_vocab=None):
    # gensim 4.2's KeyedVectors.most_similar, step for step: the weighted
    # mean of the items' unit vectors, made a unit vector, then the rows of
    # highest cosine, the query keys left out.
    import numbers
    import numpy as np
    def _ensure_list(value):  # a single key or vector, or a list of them
        if value is None:
            return []
        if isinstance(value, (str, int, np.integer)) or (isinstance(value, np.ndarray) and value.ndim == 1):
            return [value]
        return list(value)
    if isinstance(topn, numbers.Integral) and topn < 1:
        return []
    positive = _ensure_list(positive)
    negative = _ensure_list(negative)
    items = positive + negative
    if not items:
        raise ValueError("cannot compute mean with no input")
    weight = np.concatenate((np.ones(len(positive)), -1.0 * np.ones(len(negative))))
    keys = []
    for i, item in enumerate(items):
        if isinstance(item, (str, int, np.integer, np.ndarray)):
            keys.append(item)
        else:
            keys.append(item[0])
            weight[i] = item[1]
    rows = len(table)
    for item in keys:
        if isinstance(item, np.ndarray) and not np.isfinite(item).all():
            raise ValueError("a vector in positive or negative holds NaN or an infinity")
    def index_of(key):
        if isinstance(key, str):
            return table.index(key) if key in table else -1
        key = int(key)
        return key if 0 <= key < rows else -1
    mean = np.zeros(table.shape[1], np.float32)
    total_weight = 0
    for i, key in enumerate(keys):
        if isinstance(key, np.ndarray):
            mean += weight[i] * key
        else:
            at = index_of(key)
            if at < 0:
                raise KeyError(f"Key '{key}' not present in vocabulary")
            vec = table.gather(at)
            length = np.linalg.norm(vec)
            if not length > 0:
                raise ValueError(f"key {key!r} has a row of zeros (or NaN): it has no unit vector")
            mean += weight[i] * (vec / length)
        total_weight += abs(weight[i])
    if total_weight > 0:
        mean = mean / total_weight
    length = np.linalg.norm(mean)
    if length > 0:
        mean = (mean * (1.0 / length)).astype(np.float32)
    exclude = sorted({index_of(k) for k in keys if not isinstance(k, np.ndarray)} - {-1})
    limit = rows
    if restrict_vocab:  # gensim slices vectors[0:restrict_vocab], negative included
        limit = min(int(restrict_vocab), rows) if restrict_vocab > 0 else max(0, rows + int(restrict_vocab))
    # A mean of zero (a key weighed against itself, a zero vector): gensim's
    # cosines are all 0, and so are the inner products, ranked by id here.
    metric = "cosine" if mean.any() else "dot"
    if limit == 0:
        return np.empty(0, np.float32) if not topn else []
    if not topn:
        ids, scores = table.nearest(mean, limit, metric, restrict=limit)
        dists = np.empty(limit, np.float32)
        dists[ids[0]] = scores[0]
        return dists
    exclude = [i for i in exclude if i < limit]
    k = min(int(topn), limit - len(exclude))
    if k < 1:
        return []
    ids, scores = table.nearest(mean, k, metric, exclude=exclude, restrict=limit)
    name = table.key if table.has_keys else int
    return [(name(int(i)), float(s)) for i, s in zip(ids[0], scores[0])]
)";

constexpr const char* kExceptionSource = R"(
class Error(Exception):
    """Base class of every error embstore raises."""

class InvalidArgumentError(Error, ValueError):
    """An argument embstore cannot act on (a bad size, option or name)."""

class OutOfRangeError(Error, IndexError):
    """A row id or range outside the table."""

class CorruptionError(Error):
    """Bytes on disk contradict the format, or a checksum does not match.
    From Table.verify(), .report holds the whole report."""
    report = None

class NotSupportedError(Error):
    """A valid file this version cannot handle (a newer format version), or an
    operation the table's kind has no answer for."""

class StorageError(Error, OSError):
    """The operating system said no: open, map, write, fsync, rename, full disk."""

class NotFoundError(Error, FileNotFoundError):
    """A file or shared table that does not exist."""

class AlreadyExistsError(Error, FileExistsError):
    """An output that exists, when replacing it was not asked for (force=True)."""

class CancelledError(Error):
    """Long work stopped by a signal whose Python handler did not raise (Ctrl-C
    raises KeyboardInterrupt instead). Nothing was written."""
)";

struct ExceptionTypes {
  py::handle invalid_argument, out_of_range, corruption, not_supported, io, not_found, already_exists, cancelled;
};
ExceptionTypes g_errors;  // set once at import, kept for the life of the interpreter

py::handle ExceptionFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument: return g_errors.invalid_argument;
    case Status::Code::kOutOfRange: return g_errors.out_of_range;
    case Status::Code::kCorruption: return g_errors.corruption;
    case Status::Code::kNotSupported: return g_errors.not_supported;
    case Status::Code::kNotFound: return g_errors.not_found;
    case Status::Code::kAlreadyExists: return g_errors.already_exists;
    case Status::Code::kCancelled: return g_errors.cancelled;
    case Status::Code::kIOError:
    case Status::Code::kOk: break;
  }
  return g_errors.io;
}

// Text for a person: the library's messages may quote bytes from a file or
// a path, which may hold terminal escapes or not be UTF-8; those become
// \xNN (as the command prints them), never raw, never an empty message or a
// UnicodeDecodeError.
py::str MessageText(const std::string& raw) {
  const std::string text = EscapeLinesForDisplay(raw);
  PyObject* s = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "backslashreplace");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

// A path as the OS gave it, back as Python names it (os.fsdecode: bytes
// that are not UTF-8 become surrogates, and os.fsencode gives them back).
py::str PathText(const std::string& path) {
  PyObject* s = PyUnicode_DecodeFSDefaultAndSize(path.data(), static_cast<Py_ssize_t>(path.size()));
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

struct Views {
  py::handle key_to_index, index_to_key, most_similar;
} g_views;

[[noreturn]] void Raise(const Status& status) {
  PyErr_SetObject(ExceptionFor(status).ptr(), MessageText(status.message()).ptr());
  throw py::error_already_set();
}

void Check(const Status& status) {
  if (!status.ok()) Raise(status);
}

template <typename T>
T Take(Result<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(*result);
}

// ---- arguments ---------------------------------------------------------------

// A path as the OS takes one, from what Python names one: str (encoded as
// os.fsencode does, so surrogate-escaped names round-trip), bytes, or any
// os.PathLike (pathlib.Path) of either.
std::string PathArg(py::handle h) {
  py::object raw = py::module_::import("os").attr("fsencode")(h);
  std::string path = raw.cast<py::bytes>();
  if (path.find('\0') != std::string::npos) {
    throw py::value_error("embedded null byte in path " + MessageText(path).cast<std::string>());
  }
  return path;
}

// A table spec: a path, or "shm:NAME".
std::string SpecArg(py::handle h) { return PathArg(h); }

// An output that exists is replaced only when asked, as the command line's
// -f. (Checked again, atomically, when the new file is put in place.)
void CheckOutput(const std::string& dst, bool force) {
  Check(CheckOutputIsFile(dst));
  if (!force && Exists(dst)) {
    Raise(Status::AlreadyExists(dst + " already exists; pass force=True to overwrite it"));
  }
}

// trust_owner=: a user name, a uid, or a list of them (shm: tables of those
// users are read too).
std::vector<uint32_t> OwnersArg(py::handle h) {
  std::vector<uint32_t> out;
  if (h.is_none()) return out;
  auto bad = [] { throw py::type_error("trust_owner takes a user name (str), a uid (int), or a list or tuple of them"); };
  std::vector<py::handle> items;
  if (py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    for (py::handle item : h) items.push_back(item);
  } else {
    items.push_back(h);
  }
  for (py::handle item : items) {
    if (PyBool_Check(item.ptr())) bad();
    if (PyLong_Check(item.ptr())) {
      int overflow = 0;
      const long long uid = PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
      if (overflow != 0 || uid < 0 || uid >= (1LL << 32) - 1) {
        Raise(Status::InvalidArgument("trust_owner: " + py::repr(item).cast<std::string>() + " is not a uid"));
      }
      out.push_back(static_cast<uint32_t>(uid));
    } else if (PyUnicode_Check(item.ptr())) {
      Py_ssize_t size = 0;
      const char* utf8 = PyUnicode_AsUTF8AndSize(item.ptr(), &size);
      if (utf8 == nullptr) {
        PyErr_Clear();
        Raise(Status::InvalidArgument("trust_owner: " + py::repr(item).cast<std::string>() + " is not a user name"));
      }
      const std::string user(utf8, static_cast<size_t>(size));
      if (user.find('\0') != std::string::npos) Raise(Status::InvalidArgument("trust_owner: a user name holds a NUL"));
      out.push_back(Take(ParseOwner(user)));
    } else {
      bad();
    }
  }
  return out;
}

unsigned ThreadsArg(unsigned threads) {
  if (threads > 1024) Raise(Status::InvalidArgument("threads: " + std::to_string(threads) + " is more than 1024"));
  return threads;
}

// A seed as torch.manual_seed takes it: any integer in [-2^63, 2^64).
// A dtype argument: None, a name ("float32", "float16", "bfloat16", or
// "f16", "bf16", ...), a NumPy dtype or type (numpy.float16), or a torch
// dtype (torch.bfloat16).
std::optional<Dtype> DtypeArg(py::handle h) {
  if (h.is_none()) return std::nullopt;
  std::string name;
  if (py::isinstance<py::str>(h)) {
    name = h.cast<std::string>();
  } else {
    const std::string text = py::str(h).cast<std::string>();
    if (text.rfind("torch.", 0) == 0) {
      name = text.substr(6);
    } else {
      try {
        name = py::module_::import("numpy").attr("dtype")(h).attr("name").cast<std::string>();
      } catch (const py::error_already_set&) {
        name = text;
      }
    }
  }
  auto d = ParseDtype(name);
  if (!d.ok()) Raise(Status::InvalidArgument("dtype: " + d.status().message()));
  return *d;
}

// The NumPy dtype that holds elements of d: float32, float16, or uint16
// (the bit patterns) for bfloat16, which NumPy has not got.
py::dtype NumpyDtype(Dtype d) {
  switch (d) {
    case Dtype::kFloat32: return py::dtype::of<float>();
    case Dtype::kFloat16: return py::dtype("float16");
    case Dtype::kBFloat16: return py::dtype::of<uint16_t>();
  }
  return py::dtype::of<float>();
}

// A uint16 array of bfloat16 bit patterns as a torch.bfloat16 tensor over
// the same memory (PyTorch's warning about read-only memory silenced: the
// caller says in its documentation that the tensor is read-only).
py::object AsTorchBFloat16(const py::array& bits) {
  py::object torch;
  try {
    torch = py::module_::import("torch");
  } catch (const py::error_already_set&) {
    Raise(Status::NotSupported("bfloat16 values need PyTorch (NumPy has no bfloat16), and torch cannot be imported; "
                               "ask for dtype='float32' (exact)"));
  }
  py::dict scope;
  scope["torch"] = torch;
  scope["bits"] = bits;
  py::exec(R"(
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    out = torch.from_numpy(bits.view("int16")).view(torch.bfloat16)
)", scope);
  return scope["out"];
}

uint64_t SeedArg(const py::int_& seed) {
  int overflow = 0;
  const long long s = PyLong_AsLongLongAndOverflow(seed.ptr(), &overflow);
  if (overflow == 0 && s == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow == 0) return static_cast<uint64_t>(s);
  if (overflow > 0) {
    const unsigned long long u = PyLong_AsUnsignedLongLong(seed.ptr());
    if (!(u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) return u;
    PyErr_Clear();
  }
  Raise(Status::InvalidArgument("seed: " + py::str(static_cast<const py::handle&>(seed)).cast<std::string>() + " is not in [-2^63, 2^64)"));
}

// ---- Ctrl-C ------------------------------------------------------------------

// Long work runs without the GIL, so Python's own SIGINT handler (which only
// sets a flag for the interpreter's loop) cannot stop it. While it runs on
// the main thread (the only one Python hands signals to), SIGINT and SIGTERM
// go instead to a handler that cancels its token, wherever Python has a
// handler of its own for them (not where they are ignored or left to their
// default action). The work then stops within milliseconds, leaving nothing
// behind, and the signal is raised again for Python's handler: Ctrl-C
// raises KeyboardInterrupt.
//
// The token is one of static storage (only the main thread's work uses it),
// so that a handler running late on another thread never writes to a token
// that is gone.
CancelToken g_main_token;
std::atomic<bool> g_main_armed{false};

extern "C" void CancelOnSignal(int sig) {
  if (g_main_armed.load()) g_main_token.Cancel(sig);
}

class SignalCancel {
 public:
  // On the main thread, takes SIGINT and SIGTERM for the work; elsewhere
  // does nothing (token() is then the caller's own). Throws the exception
  // of a signal that came before (KeyboardInterrupt: the work never starts).
  explicit SignalCancel(CancelToken* own) : token_(own) {
    py::object main = py::module_::import("threading").attr("main_thread")();
    if (py::cast<unsigned long>(main.attr("ident")) != PyThread_get_thread_ident()) return;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    token_ = &g_main_token;
    g_main_token.Reset();
    g_main_armed.store(true);
    armed_ = true;
    struct sigaction sa = {};
    sa.sa_handler = CancelOnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 2; ++i) {
      struct sigaction now;
      if (::sigaction(kSignals[i], nullptr, &now) != 0) continue;
      if (now.sa_handler == SIG_DFL || now.sa_handler == SIG_IGN) continue;
      if (::sigaction(kSignals[i], &sa, &old_[i]) == 0) installed_[i] = true;
    }
    // One that came while the handlers were being put in place.
    if (PyErr_CheckSignals() != 0) {
      Restore();
      throw py::error_already_set();
    }
  }
  ~SignalCancel() { Restore(); }
  SignalCancel(const SignalCancel&) = delete;
  SignalCancel& operator=(const SignalCancel&) = delete;

  CancelToken* token() const { return token_; }

  // Puts Python's handlers back; a signal that came meanwhile goes to
  // Python's handler now (an exception, if it raises one, is left set:
  // returns false then).
  bool Restore() {
    if (!armed_) return true;
    armed_ = false;
    for (int i = 0; i < 2; ++i) {
      if (installed_[i]) ::sigaction(kSignals[i], &old_[i], nullptr);
      installed_[i] = false;
    }
    g_main_armed.store(false);
    const int sig = g_main_token.signal();
    if (sig == 0) return true;
    // Raised again with Python's handler back in place: its C handler marks
    // the signal, and PyErr_CheckSignals runs the Python one.
    ::raise(sig);
    return PyErr_CheckSignals() == 0;
  }

 private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  CancelToken* token_;
  bool armed_ = false;
  struct sigaction old_[2] = {};
  bool installed_[2] = {false, false};
};

// Runs store work without the GIL (other Python threads go on), drawing the
// command's progress bar while stderr is a terminal; raises the Status it
// returns, if not OK. work(progress, cancel) gets a cancel token, which a
// SIGINT or SIGTERM cancels during long work (kCancellable: see above).
enum class WorkKind { kQuick, kCancellable };
template <typename Work>
void RunWork(const char* label, const char* unit, Work work, WorkKind kind = WorkKind::kCancellable) {
  Status st;
  CancelToken own;
  std::optional<SignalCancel> signals;
  if (kind == WorkKind::kCancellable) signals.emplace(&own);
  const CancelToken* token = signals ? signals->token() : &own;
  {
    py::gil_scoped_release nogil;
    cli::ProgressBar bar(label, unit);
    st = work(bar.Callback(), token);
  }
  if (signals && !signals->Restore()) {
    // KeyboardInterrupt, or what another handler raised. It says whether
    // the work had been stopped (nothing written) or had already finished.
    py::error_already_set e;
    if (st.IsCancelled() && py::hasattr(e.value(), "add_note")) {
      e.value().attr("add_note")(std::string("embstore ") + label + ": stopped; nothing was written");
    }
    throw e;
  }
  Check(st);
}

// Metadata values are bytes: a str where they are UTF-8, bytes otherwise.
py::dict MetadataDict(const Metadata& metadata) {
  py::dict d;
  for (const auto& [k, v] : metadata) {
    PyObject* s = PyUnicode_DecodeUTF8(v.data(), static_cast<Py_ssize_t>(v.size()), "strict");
    if (s == nullptr) {
      PyErr_Clear();
      d[py::str(k)] = py::bytes(v);
    } else {
      d[py::str(k)] = py::reinterpret_steal<py::object>(s);
    }
  }
  return d;
}

py::object JsonLoads(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

// Row ids as the caller gave them (an int, or anything numpy.asarray takes
// with an integer dtype), copied into memory of our own while the GIL is
// held: the caller's buffer could change under a gather that runs without
// it (another thread, or `out` overlapping the ids), and ids are checked
// once, then used. *shape gets the ids' shape.
std::vector<uint64_t> IdsArg(py::handle ids_arg, uint64_t rows, std::vector<py::ssize_t>* shape) {
  auto negative = [&](int64_t id) { Raise(Status::OutOfRange(OutOfRangeMessage(id, rows))); };
  if (PyLong_Check(ids_arg.ptr()) && !PyBool_Check(ids_arg.ptr())) {  // t[3]: no array to make
    int overflow = 0;
    const long long id = PyLong_AsLongLongAndOverflow(ids_arg.ptr(), &overflow);
    if (overflow == 0) {
      if (id < 0) negative(id);
      shape->clear();
      return {static_cast<uint64_t>(id)};
    }
  }
  py::module_ np = py::module_::import("numpy");
  py::array ids = np.attr("asarray")(ids_arg);
  const char kind = ids.dtype().kind();
  if (ids.size() != 0 && kind != 'i' && kind != 'u') {
    throw py::type_error("row ids must be integers, not " + py::str(ids.dtype()).cast<std::string>());
  }
  shape->assign(ids.shape(), ids.shape() + ids.ndim());
  std::vector<uint64_t> flat(static_cast<size_t>(ids.size()));
  if (!flat.empty()) {
    py::array dense = np.attr("ascontiguousarray")(ids, kind == 'i' ? "int64" : "uint64");
    std::memcpy(flat.data(), dense.data(), flat.size() * sizeof(uint64_t));
    if (kind == 'i') {
      for (uint64_t id : flat) {
        if (static_cast<int64_t>(id) < 0) negative(static_cast<int64_t>(id));
      }
    }
  }
  return flat;
}

// A gather smaller than this, from a plain table, keeps the GIL: the copy
// takes less time than handing the GIL to another thread and back.
constexpr size_t kGilFreeGatherBytes = 64 * 1024;

// ---- Table -----------------------------------------------------------------

using TablePtr = std::shared_ptr<const embstore::Table>;

// A bad run of a verify report, as the report dict lists it.
py::dict BadRowsDict(const BadRows& b) {
  py::dict d;
  d["unit"] = b.unit_name();
  d[b.unit_name()] = b.index;
  d["first_row"] = b.first_row;
  d["row_count"] = b.row_count;
  if (!b.shard.empty()) d["shard"] = PathText(b.shard);  // a sharded table: the shard's file (rows are the table's)
  if (b.unit == BadRows::Unit::kBlock) {
    d["stored"] = b.stored;
    d["computed"] = b.computed;
  } else {
    d["error"] = MessageText(b.error);
  }
  return d;
}

// embstore.Table: one class for every kind of table, over the library's
// one Table interface; only t.array asks for a capability (a mapping).
class PyTable {
 public:
  PyTable(const std::string& spec, const OpenOptions& options) : spec_(spec), options_(options) {
    std::unique_ptr<embstore::Table> opened;
    RunWork(
        "open", "",
        [&](auto, auto) {
          EMB_ASSIGN_OR_RETURN(opened, OpenTable(spec, options));
          return Status::OK();
        },
        WorkKind::kQuick);
    table_ = TablePtr(std::move(opened));
    // A pickled Table reopens by name in another process (DataLoader
    // workers under spawn), so a relative path is made absolute now.
    reopen_spec_ = IsShared(spec) ? spec : std::filesystem::absolute(spec).string();
  }

  // A table another holds (a shard of a sharded table): table keeps its
  // owner alive.
  PyTable(const std::string& spec, const OpenOptions& options, TablePtr table)
      : spec_(spec), reopen_spec_(spec), options_(options), table_(std::move(table)) {}

  // Shard i of a sharded table, opened and checked against the manifest,
  // as a Table of its own (its rows numbered from 0).
  PyTable Shard(uint64_t i) const {
    const TablePtr hold = shared();
    const auto* sharded = dynamic_cast<const ShardedTable*>(hold.get());
    if (sharded == nullptr) Raise(Status::InvalidArgument(spec_ + " is not a sharded table"));
    const embstore::Table* shard = nullptr;
    RunWork(
        "open", "",
        [&](auto, auto) {
          EMB_ASSIGN_OR_RETURN(shard, sharded->Shard(i));
          return Status::OK();
        },
        WorkKind::kQuick);
    return PyTable(sharded->ShardPath(i), options_, TablePtr(hold, shard));
  }

  // The open table. Work that releases the GIL holds shared() instead, so
  // that a close() from another thread cannot free the table under it.
  const embstore::Table& table() const { return *shared(); }
  const TablePtr& shared() const {
    if (!table_) Raise(Status::InvalidArgument("the table " + spec_ + " is closed"));
    return table_;
  }
  const std::string& spec() const { return spec_; }
  const std::string& reopen_spec() const { return reopen_spec_; }
  const OpenOptions& options() const { return options_; }
  bool closed() const { return table_ == nullptr; }

  // Drops this object's hold on the mapping; arrays made from it keep
  // theirs, so their memory stays valid.
  void Close() {
    array_ = py::object();
    table_.reset();
  }

  // The whole table as a read-only ndarray over the mapping. Its base holds
  // the mapping, so the array may outlive this Table.
  py::object Array() {
    const embstore::Table& t = table();
    if (t.dtype() == Dtype::kBFloat16) {
      Raise(Status::NotSupported(
          spec_ + " holds bfloat16, which NumPy has not got: t.tensor() is the whole table as a zero-copy "
                  "torch.bfloat16 tensor; t[ids] gives float32 rows (exact), t.gather(ids, dtype='bfloat16') "
                  "the stored values"));
    }
    return StoredArray();
  }

  // The whole table in its stored type over the mapping (bfloat16 as uint16
  // bit patterns).
  py::object StoredArray() {
    const embstore::Table& t = table();
    if (!array_) {
      const TableReader* r = t.mapped();
      if (r == nullptr) {
        Raise(Status::NotSupported(
            spec_ + " is a compressed table (.embz): its rows are decoded on demand, so there is no mapping "
                    "to view. Read rows with t[ids], or decompress it (embstore.decompress) or share it "
                    "(embstore.share, then open 'shm:NAME') for a zero-copy array"));
      }
      auto* hold = new TablePtr(table_);
      py::capsule base(hold, [](void* p) { delete static_cast<TablePtr*>(p); });
      const void* data = r->rows() ? static_cast<const void*>(r->row_bytes(0, 1).data()) : nullptr;
      py::array a(NumpyDtype(r->dtype()),
                  std::vector<py::ssize_t>{static_cast<py::ssize_t>(r->rows()), static_cast<py::ssize_t>(r->dim())},
                  std::vector<py::ssize_t>{static_cast<py::ssize_t>(r->header().row_stride),
                                           static_cast<py::ssize_t>(r->element_size())},
                  data, base);
      a.attr("flags").attr("writeable") = false;
      array_ = std::move(a);
    }
    return array_;
  }

  // The whole table in its stored type as a torch tensor over the mapping.
  py::object Tensor() {
    const embstore::Table& t = table();
    if (t.mapped() == nullptr) {
      Raise(Status::NotSupported(spec_ + " is a compressed table (.embz): there is no mapping to view; read rows "
                                         "with t[ids], or decompress or share it for a zero-copy tensor"));
    }
    py::array a = StoredArray();
    if (t.dtype() == Dtype::kBFloat16) return AsTorchBFloat16(a);
    py::dict scope;
    scope["torch"] = py::module_::import("torch");
    scope["a"] = a;
    py::exec(R"(
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    out = torch.from_numpy(a)
)", scope);
    return scope["out"];
  }

  // Rows ids (any shape of integers) as a new array of shape ids.shape +
  // (dim,), or written into `out`: float32 unless dtype names another type
  // (float16: numpy.float16; bfloat16: a torch.bfloat16 tensor, or into a
  // uint16 `out` as bit patterns).
  py::object Gather(py::handle ids_arg, py::object out, py::handle dtype_arg = py::none()) const {
    const TablePtr hold = shared();
    const embstore::Table& t = *hold;
    const Dtype as = DtypeArg(dtype_arg).value_or(Dtype::kFloat32);
    std::vector<py::ssize_t> shape;
    const std::vector<uint64_t> flat = IdsArg(ids_arg, t.rows(), &shape);
    shape.push_back(static_cast<py::ssize_t>(t.dim()));
    const py::dtype npdt = NumpyDtype(as);
    py::array result;
    if (out.is_none()) {
      result = py::array(npdt, shape);
    } else {
      const std::string want = as == Dtype::kBFloat16 ? "uint16 (bfloat16 bit patterns)" : DtypeName(as);
      if (!py::isinstance<py::array>(out)) Raise(Status::InvalidArgument("out must be a C-contiguous " + want + " numpy array"));
      result = out.cast<py::array>();
      std::vector<py::ssize_t> have(result.shape(), result.shape() + result.ndim());
      if (!result.dtype().is(npdt) && !result.dtype().equal(npdt)) {
        Raise(Status::InvalidArgument("out must be a C-contiguous " + want + " numpy array"));
      }
      if (have != shape || !result.writeable() || !(result.flags() & py::array::c_style)) {
        Raise(Status::InvalidArgument("out must be a writable C-contiguous " + want + " array of shape " +
                                      py::str(py::tuple(py::cast(shape))).cast<std::string>()));
      }
    }
    std::span<uint8_t> out_span(static_cast<uint8_t*>(result.mutable_data()), static_cast<size_t>(result.nbytes()));
    if (t.mapped() != nullptr && out_span.size() < kGilFreeGatherBytes) {
      Check(t.Gather(flat, as, out_span));  // a few rows from memory: quicker than handing the GIL over
    } else {
      RunWork("gather", "rows", [&](auto, auto) { return t.Gather(flat, as, out_span); }, WorkKind::kQuick);
    }
    if (as == Dtype::kBFloat16 && out.is_none()) return AsTorchBFloat16(result);
    return result;
  }

  // t[i] -> row (dim,); t[a:b:c] -> rows; t[ids] -> ids.shape + (dim,).
  // ---- keys (FORMAT.md 1.2) ----
  const KeysView& Keys() const {
    const KeysView* keys = table().keys();
    if (keys == nullptr) {
      Raise(Status::NotSupported(spec_ + " has no keys (rows by id only); 'embstore keys attach' gives it some"));
    }
    return *keys;
  }
  // The row of a str key, or nullopt; other objects are not keys.
  std::optional<uint64_t> FindKey(py::handle key) const {
    Py_ssize_t n = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(key.ptr(), &n);  // cached in the str object
    if (utf8 == nullptr) {  // a lone surrogate has no UTF-8: no key can be it
      PyErr_Clear();
      return std::nullopt;
    }
    const KeysView* keys = table().keys();
    if (keys == nullptr) return std::nullopt;
    auto found = keys->Find(std::string_view(utf8, static_cast<size_t>(n)));
    if (!found.ok()) Raise(found.status().WithContext(spec_));
    return *found;
  }
  uint64_t Index(py::handle key) const {
    if (!PyUnicode_Check(key.ptr())) throw py::type_error("a key is a str");
    auto id = FindKey(key);
    if (!id) {
      PyErr_SetObject(PyExc_KeyError, key.ptr());
      throw py::error_already_set();
    }
    return *id;
  }
  bool Contains(py::handle key) const {
    if (!PyUnicode_Check(key.ptr())) return false;
    return FindKey(key).has_value();
  }
  py::str Key(int64_t id) const {
    const KeysView& keys = Keys();
    if (id < 0 || static_cast<uint64_t>(id) >= keys.size()) {
      Raise(Status::OutOfRange(OutOfRangeMessage(id, keys.size())));
    }
    auto key = keys.Key(static_cast<uint64_t>(id));
    if (!key.ok()) Raise(key.status().WithContext(spec_));
    return py::str(key->data(), key->size());
  }
  bool HasKeys() const { return table().keys() != nullptr; }

  // t.nearest(queries, k, metric): (ids, scores), each (n_queries, k).
  py::tuple Nearest(py::handle queries_arg, uint64_t k, const std::string& metric_name, py::handle exclude_arg,
                    unsigned threads, uint64_t max_rows) const {
    TablePtr hold = shared();  // a close() from another thread cannot free it under the search
    const embstore::Table& t = *hold;
    auto metric = ParseMetric(metric_name);
    if (!metric.ok()) Raise(metric.status());
    using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
    FloatArray q = FloatArray::ensure(queries_arg);
    if (!q) {
      throw py::type_error("queries: expected an array of numbers of shape (dim,) or (n, dim), not " +
                           std::string(py::str(py::type::handle_of(queries_arg).attr("__name__"))));
    }
    const uint64_t dim = t.dim();
    uint64_t n = 0;
    if (q.ndim() == 1 && static_cast<uint64_t>(q.shape(0)) == dim) {
      n = 1;
    } else if (q.ndim() == 2 && static_cast<uint64_t>(q.shape(1)) == dim) {
      n = static_cast<uint64_t>(q.shape(0));
    } else {
      std::string shape = "(";
      for (py::ssize_t i = 0; i < q.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(q.shape(i));
      shape += q.ndim() == 1 ? ",)" : ")";
      Raise(Status::InvalidArgument("queries of shape " + shape + ": expected (" + std::to_string(dim) + ",) or (n, " +
                                    std::to_string(dim) + "), the table's dim"));
    }
    if (n == 0) Raise(Status::InvalidArgument("no queries"));
    SearchRequest req;
    req.queries = std::span<const float>(q.data(), n * dim);
    req.k = k;
    req.metric = *metric;
    req.threads = threads;
    req.max_rows = max_rows;
    if (!exclude_arg.is_none()) {
      // A list of ids (left out for every query), or one list per query.
      auto as_id = [&](py::handle v) -> uint64_t {
        if (!PyIndex_Check(v.ptr()) || PyBool_Check(v.ptr())) {
          throw py::type_error("exclude: ids are ints, not " +
                               std::string(py::str(py::type::handle_of(v).attr("__name__"))));
        }
        int64_t id = 0;
        try {
          id = v.cast<int64_t>();
        } catch (const py::cast_error&) {  // beyond int64: beyond any table
          Raise(Status::InvalidArgument("cannot exclude id " + std::string(py::str(v)) + ": out of range (the table has " +
                                        std::to_string(t.rows()) + " rows)"));
        }
        if (id < 0) Raise(Status::InvalidArgument("cannot exclude " + OutOfRangeMessage(id, t.rows())));
        return static_cast<uint64_t>(id);
      };
      if (!PySequence_Check(exclude_arg.ptr()) || PyUnicode_Check(exclude_arg.ptr())) {
        throw py::type_error("exclude: a list of ids (or one list per query), not " +
                             std::string(py::str(py::type::handle_of(exclude_arg).attr("__name__"))));
      }
      py::sequence seq = py::reinterpret_borrow<py::sequence>(exclude_arg);
      bool nested = py::len(seq) > 0 && py::isinstance<py::sequence>(seq[0]) && !py::isinstance<py::str>(seq[0]);
      if (nested) {
        for (py::handle item : seq) {
          if (!PySequence_Check(item.ptr()) || PyUnicode_Check(item.ptr())) {
            throw py::type_error("exclude: one list of ids per query, or one list for all");
          }
          std::vector<uint64_t> ids;
          for (py::handle v : py::reinterpret_borrow<py::sequence>(item)) ids.push_back(as_id(v));
          req.exclude.push_back(std::move(ids));
        }
      } else {
        std::vector<uint64_t> ids;
        for (py::handle v : seq) ids.push_back(as_id(v));
        req.exclude.push_back(std::move(ids));
      }
    }
    SearchResult result;
    bool out_of_memory = false;
    RunWork("nearest", "", [&](auto, const CancelToken* cancel) {
      req.cancel = cancel;
      auto r = Search(t, req);
      if (!r.ok()) {
        out_of_memory = r.status().message().rfind("out of memory", 0) == 0;
        if (!out_of_memory) return r.status();
        return Status::OK();
      }
      result = std::move(*r);
      return Status::OK();
    });
    if (out_of_memory) throw std::bad_alloc();  // MemoryError, as NumPy's own
    const auto rows = static_cast<py::ssize_t>(result.queries), cols = static_cast<py::ssize_t>(result.k);
    py::array_t<int64_t> ids({rows, cols});
    py::array_t<float> scores({rows, cols});
    std::memcpy(ids.mutable_data(), result.ids.data(), result.ids.size() * sizeof(int64_t));
    std::memcpy(scores.mutable_data(), result.scores.data(), result.scores.size() * sizeof(float));
    return py::make_tuple(ids, scores);
  }

  py::array GetItem(py::handle key) const {
    const embstore::Table& t = table();
    if (PyUnicode_Check(key.ptr())) {  // t["king"]: the row, as gensim's kv["king"]
      const uint64_t id = Index(key);
      py::array_t<float> row(static_cast<py::ssize_t>(t.dim()));
      Check(t.Gather(std::span<const uint64_t>(&id, 1), std::span<float>(row.mutable_data(), t.dim())));
      return row;
    }
    if (py::isinstance<py::list>(key) && py::len(key) > 0 && PyUnicode_Check(key.cast<py::list>()[0].ptr())) {
      // t[["king", "queen"]]: rows by key, every key looked up first.
      py::list keys = key.cast<py::list>();
      py::array_t<int64_t> ids(static_cast<py::ssize_t>(keys.size()));
      int64_t* p = ids.mutable_data();
      for (size_t i = 0; i < keys.size(); ++i) {
        if (!PyUnicode_Check(keys[i].ptr())) throw py::type_error("a list of keys holds only str");
        p[i] = static_cast<int64_t>(Index(keys[i]));
      }
      return Gather(ids, py::none()).cast<py::array>();
    }
    if (py::isinstance<py::slice>(key)) {
      size_t start, stop, step, length;
      if (!key.cast<py::slice>().compute(t.rows(), &start, &stop, &step, &length)) throw py::error_already_set();
      py::array_t<int64_t> ids(static_cast<py::ssize_t>(length));
      int64_t* p = ids.mutable_data();
      for (size_t i = 0; i < length; ++i) p[i] = static_cast<int64_t>(start + i * step);
      return Gather(ids, py::none()).cast<py::array>();
    }
    if (py::isinstance<py::tuple>(key)) {
      throw py::type_error("index a Table with row ids (an int, a slice or an array of ints); "
                           "for element access use t.array[...]");
    }
    if (PyBool_Check(key.ptr())) throw py::type_error("row ids must be integers, not bool");
    return Gather(key, py::none()).cast<py::array>();
  }

  // One report, whatever the table: what was checked, and each bad block
  // or frame with its rows.
  py::dict Verify(unsigned threads) const {
    const TablePtr hold = shared();
    const embstore::Table& t = *hold;
    VerifyReport v;
    const unsigned resolved = ThreadsArg(threads);  // may raise: only while the GIL is held
    RunWork("verify", "bytes", [&](auto progress, const CancelToken* cancel) {
      VerifyOptions options;
      options.threads = resolved;
      options.progress = progress;
      options.cancel = cancel;
      EMB_ASSIGN_OR_RETURN(v, t.Verify(options));
      return Status::OK();
    });
    py::dict report;
    report["rows"] = t.rows();
    report["blocks_checked"] = v.blocks_checked;
    report["frames_checked"] = v.frames_checked;
    report["bytes_checked"] = v.bytes_checked;
    report["bad_block_count"] = v.bad_block_count;
    report["bad_frame_count"] = v.bad_frame_count;
    py::list bad;
    for (const BadRows& b : v.bad) bad.append(BadRowsDict(b));
    report["bad"] = bad;
    report["bad_padding"] = v.bad_regions;
    report["bad_keys"] = v.bad_keys;
    if (t.manifest() != nullptr) {
      report["shards_checked"] = v.shards_checked;
      py::list shards;
      for (const std::string& m : v.bad_shards) shards.append(MessageText(m));
      report["bad_shards"] = shards;
    }
    report["ok"] = v.ok();
    if (!v.ok()) {
      // The command's verdict.
      py::object error = g_errors.corruption(MessageText(spec_ + ": FAILED: " + v.Summary()));
      error.attr("report") = report;
      PyErr_SetObject(g_errors.corruption.ptr(), error.ptr());
      throw py::error_already_set();
    }
    return report;
  }

  py::str Repr() const {
    if (!table_) return MessageText("<embstore.Table " + spec_ + " (closed)>");
    return MessageText("<embstore.Table " + spec_ + ": " + std::to_string(table_->rows()) + " x " +
                       std::to_string(table_->dim()) + " " + DtypeName(table_->dtype()) +
                       (table_->embz() ? ", compressed" : "") + ">");
  }

 private:
  std::string spec_, reopen_spec_;
  OpenOptions options_;
  TablePtr table_;
  py::object array_;
};

// ---- verbs -------------------------------------------------------------------

GenerateSpec SpecFromArgs(uint64_t rows, uint64_t dim, const py::int_& seed, const std::string& init, py::object mean,
                          py::object std_dev, py::object low, py::object high, const std::string& kernel,
                          unsigned threads, bool fsync, py::handle dtype) {
  GenerateSpec spec;
  spec.dtype = DtypeArg(dtype).value_or(Dtype::kFloat32);
  spec.rows = rows;
  spec.dim = dim;
  spec.seed = SeedArg(seed);
  spec.threads = ThreadsArg(threads);
  spec.sync = fsync;
  spec.init = Take(ParseInit(init));
  spec.kernel = Take(ParseTorchKernel(kernel));
  // As the command: the parameters of the other init are refused, not ignored.
  const bool uniform = spec.init == Init::kUniform;
  if (uniform && (!mean.is_none() || !std_dev.is_none())) {
    Raise(Status::InvalidArgument("mean and std apply to init='normal'; uniform takes low and high"));
  }
  if (!uniform && (!low.is_none() || !high.is_none())) {
    Raise(Status::InvalidArgument("low and high apply to init='uniform'"));
  }
  if (!mean.is_none()) spec.mean = mean.cast<double>();
  if (!std_dev.is_none()) spec.std = std_dev.cast<double>();
  if (!low.is_none()) spec.low = low.cast<double>();
  if (!high.is_none()) spec.high = high.cast<double>();
  // SOURCE_DATE_EPOCH records a creation time, as it does for the command.
  const std::string created = Take(CreatedFromEnvironment());
  if (!created.empty()) spec.extra_metadata["created"] = created;
  Check(ValidateGenerateSpec(spec));
  return spec;
}

py::dict EntryDict(const ShardEntry& e) {
  py::dict d;
  d["path"] = PathText(e.path);
  d["first_row"] = e.first_row;
  d["rows"] = e.rows;
  d["checksum"] = Hex64(e.checksum);
  return d;
}

ShardEntry EntryArg(py::handle h) {
  ShardEntry e;
  try {
    py::dict d = py::reinterpret_borrow<py::dict>(h);
    e.path = d["path"].cast<std::string>();
    e.first_row = d["first_row"].cast<uint64_t>();
    e.rows = d["rows"].cast<uint64_t>();
    const std::string sum = d["checksum"].cast<std::string>();
    if (sum.size() != 16 || sum.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw std::invalid_argument("checksum");
    }
    e.checksum = std::stoull(sum, nullptr, 16);
  } catch (const std::exception&) {
    Raise(Status::InvalidArgument("a shard entry is a dict of path (str), first_row, rows (int) and checksum "
                                  "(16 hex digits), as generate_shard and shard_op return"));
  }
  return e;
}

std::vector<ShardEntry> EntriesArg(py::handle entries) {
  std::vector<ShardEntry> out;
  for (py::handle h : entries) out.push_back(EntryArg(h));
  return out;
}

py::object Generate(uint64_t rows, uint64_t dim, const py::int_& seed, py::object path, const std::string& init,
                    py::object mean, py::object std_dev, py::object low, py::object high, const std::string& kernel,
                    unsigned threads, bool fsync, py::handle dtype, py::object shard_rows) {
  GenerateSpec spec =
      SpecFromArgs(rows, dim, seed, init, mean, std_dev, low, high, kernel, threads, fsync, dtype);
  if (!shard_rows.is_none()) {
    if (path.is_none()) Raise(Status::InvalidArgument("shard_rows writes a sharded table: give path, its folder"));
    const std::string dir = PathArg(path);
    const uint64_t n = shard_rows.cast<uint64_t>();
    std::string manifest;
    RunWork("generate", "rows", [&](auto progress, const CancelToken* cancel) {
      ShardWorkOptions o;
      o.threads = spec.threads;
      o.sync = spec.sync;
      o.cancel = cancel;
      o.progress = progress;
      EMB_ASSIGN_OR_RETURN(manifest, GenerateSharded(dir, spec, n, o));
      return Status::OK();
    });
    return PathText(manifest);
  }
  if (path.is_none()) {
    py::array out(NumpyDtype(spec.dtype),
                  std::vector<py::ssize_t>{static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(dim)});
    std::span<uint8_t> span(static_cast<uint8_t*>(out.mutable_data()), static_cast<size_t>(out.nbytes()));
    RunWork("generate", "values", [&](auto progress, const CancelToken* cancel) {
      spec.cancel = cancel;
      return GenerateRows(spec, span, OutputMemory::kFresh, 0, nullptr, progress);
    });
    if (spec.dtype == Dtype::kBFloat16) return AsTorchBFloat16(out);
    return out;
  }
  const std::string dst = PathArg(path);
  RunWork("generate", "rows", [&](auto progress, const CancelToken* cancel) {
    spec.cancel = cancel;
    return GenerateTable(dst, spec, progress);
  });
  return py::none();
}

void Compress(py::handle src_arg, py::handle dst_arg, int level, unsigned threads, uint64_t frame_rows, bool force,
              bool fsync, py::handle trust_owner) {
  const std::string src = SpecArg(src_arg), dst = PathArg(dst_arg);
  OpenOptions oo;
  oo.trusted_owners = OwnersArg(trust_owner);
  if (level < kMinLevel || level > kMaxLevel) {
    Raise(Status::InvalidArgument("level: " + std::to_string(level) + " is outside [1, 19]"));
  }
  CompressOptions o;
  o.level = level;
  o.threads = ThreadsArg(threads);
  o.frame_rows = frame_rows;
  o.sync = fsync;
  o.replace = force;
  CheckOutput(dst, force);
  RunWork("compress", "bytes", [&](auto progress, const CancelToken* cancel) {
    auto table = OpenMappedTable(src, oo);
    if (!table.ok()) return table.status();
    o.progress = progress;
    o.cancel = cancel;
    return CompressTable(*table, dst, o);
  });
}

void Decompress(py::handle src_arg, py::handle dst_arg, unsigned threads, bool force, bool fsync) {
  const std::string src = PathArg(src_arg), dst = PathArg(dst_arg);
  threads = ThreadsArg(threads);
  CheckOutput(dst, force);
  RunWork("decompress", "bytes", [&](auto progress, const CancelToken* cancel) {
    auto z = EmbzReader::Open(src);
    if (!z.ok()) return z.status();
    DecompressOptions o;
    o.threads = threads;
    o.sync = fsync;
    o.replace = force;
    o.progress = progress;
    o.cancel = cancel;
    return (*z)->Decompress(dst, o);
  });
}

void ImportTableVerb(py::handle src_arg, py::handle dst_arg, const std::string& tensor, const std::string& format,
                     uint64_t rows, uint64_t dim, bool force, bool fsync, py::handle dtype) {
  const std::string src = PathArg(src_arg), dst = PathArg(dst_arg);
  ImportOptions o;
  o.dtype = DtypeArg(dtype);
  o.format = Take(ParseSourceFormat(format));
  o.tensor = tensor;
  o.rows = rows;
  o.dim = dim;
  o.sync = fsync;
  o.replace = force;
  CheckOutput(dst, force);
  RunWork("import", "bytes", [&](auto progress, const CancelToken* cancel) {
    o.progress = progress;
    o.cancel = cancel;
    return ImportTable(src, dst, o);
  });
}

py::list ListTensors(py::handle src_arg) {
  const std::string src = PathArg(src_arg);
  std::vector<SafetensorsTensor> tensors;
  RunWork(
      "list", "",
      [&](auto, auto) {
        EMB_ASSIGN_OR_RETURN(tensors, ListSafetensors(src));
        return Status::OK();
      },
      WorkKind::kQuick);
  py::list out;
  for (const SafetensorsTensor& t : tensors) {
    py::dict d;
    d["name"] = t.name;
    d["dtype"] = t.dtype;
    d["shape"] = py::tuple(py::cast(t.shape));
    d["bytes"] = t.end - t.begin;
    out.append(d);
  }
  return out;
}

// A table argument: an open Table, or a path or 'shm:NAME' to open.
TablePtr TableArg(py::handle src, py::handle trust_owner) {
  if (py::isinstance<PyTable>(src)) return src.cast<const PyTable&>().shared();
  OpenOptions oo;
  oo.trusted_owners = OwnersArg(trust_owner);
  PyTable opened(SpecArg(src), oo);
  return opened.shared();
}

void ConvertVerb(py::handle src, py::handle dst_arg, py::handle dtype, bool force, bool fsync, py::handle trust_owner) {
  const std::string dst = PathArg(dst_arg);
  ConvertOptions o;
  const std::optional<Dtype> d = DtypeArg(dtype);
  if (!d) Raise(Status::InvalidArgument("dtype: name the new table's type (float32, float16 or bfloat16)"));
  o.dtype = *d;
  const TablePtr table = TableArg(src, trust_owner);
  CheckOutput(dst, force);
  o.sync = fsync;
  o.replace = force;
  RunWork("convert", "rows", [&](auto progress, const CancelToken* cancel) {
    o.progress = progress;
    o.cancel = cancel;
    return ConvertTable(*table, dst, o);
  });
}

void ExportTableVerb(py::handle src, py::handle dst_arg, const std::string& tensor_name, bool force, bool fsync,
                     py::handle trust_owner, py::handle dtype, const std::string& format, bool binary) {
  const std::string dst = PathArg(dst_arg);
  if (format != "auto" && format != "npy" && format != "safetensors" && format != "word2vec") {
    Raise(Status::InvalidArgument("format '" + format + "' is not auto, npy, safetensors or word2vec"));
  }
  // As the command: a .bin or .vec name means word2vec (binary, text).
  const auto ends = [&](const std::string& suffix) {
    return dst.size() >= suffix.size() && dst.compare(dst.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool by_name = format == "auto" && (ends(".bin") || ends(".vec"));
  const bool word2vec = format == "word2vec" || by_name;
  if (by_name && ends(".bin")) binary = true;
  if (binary && !word2vec) Raise(Status::InvalidArgument("binary=True applies to format='word2vec'"));
  if (word2vec && !dtype.is_none()) Raise(Status::InvalidArgument("word2vec is always float32: no dtype"));
  const TablePtr table = TableArg(src, trust_owner);
  CheckOutput(dst, force);
  ExportOptions o;
  o.tensor_name = tensor_name;
  o.dtype = DtypeArg(dtype);
  o.sync = fsync;
  o.replace = force;
  RunWork("export", "rows", [&](auto progress, const CancelToken* cancel) {
    o.progress = progress;
    o.cancel = cancel;
    return word2vec ? ExportWord2Vec(*table, dst, binary, o) : ExportTable(*table, dst, o);
  });
}

void AttachKeysVerb(py::handle src, py::handle vocab_arg, py::handle dst_arg, const std::string& vocab_format,
                    bool force, bool fsync, py::handle trust_owner) {
  const std::string dst = PathArg(dst_arg), vocab = PathArg(vocab_arg);
  const VocabFormat vf = Take(ParseVocabFormat(vocab_format));
  const TablePtr table = TableArg(src, trust_owner);
  CheckOutput(dst, force);
  AttachOptions o;
  o.sync = fsync;
  o.replace = force;
  RunWork("keys attach", "rows", [&](auto progress, const CancelToken* cancel) {
    o.progress = progress;
    o.cancel = cancel;
    EMB_ASSIGN_OR_RETURN(KeyList keys, ReadVocabulary(vocab, table->rows(), vf));
    return AttachKeys(*table, keys, std::filesystem::path(vocab).filename().string(), dst, o);
  });
}

std::string SharedNameArg(std::string name) {
  if (name.rfind(kSharedScheme, 0) == 0) name = name.substr(sizeof(kSharedScheme) - 1);
  Check(ValidateSharedName(name));
  return name;
}

void Share(py::handle src_arg, const std::string& name_arg, bool force, uint32_t mode, unsigned threads,
           py::handle trust_owner) {
  const std::string src = SpecArg(src_arg), name = SharedNameArg(name_arg);
  ShareOptions o;
  o.mode = mode;
  o.replace = force;
  o.threads = ThreadsArg(threads);
  o.trusted_owners = OwnersArg(trust_owner);
  RunWork("share", "bytes", [&](auto progress, const CancelToken* cancel) {
    o.progress = progress;
    o.cancel = cancel;
    return ShareTable(src, name, o);
  });
}

void Unshare(const std::string& name_arg) {
  const std::string name = SharedNameArg(name_arg);
  Check(UnshareTable(name));
}

py::list SharedList() {
  const std::vector<SharedSegmentInfo> segments = Take(ListShared());
  py::list out;
  for (const SharedSegmentInfo& s : segments) {
    py::dict d;
    d["name"] = s.name;
    d["path"] = PathText(SharedPath(s.name));
    d["bytes"] = s.bytes;
    d["mode"] = s.mode;
    d["uid"] = s.uid;
    if (s.valid) {
      d["rows"] = s.rows;
      d["dim"] = s.dim;
    } else {
      d["error"] = MessageText(s.error);
    }
    out.append(d);
  }
  return out;
}

constexpr uint64_t kDefaultCacheBytes = uint64_t{64} << 20;

}  // namespace
}  // namespace embstore::python

PYBIND11_MODULE(embstore, m) {
  using namespace embstore;
  using namespace embstore::python;
  m.doc() =
      "embstore: memory-mapped embedding tables.\n\n"
      "  t = embstore.open('table.emb')     # also a .embz, or 'shm:NAME'\n"
      "  t.array                            # read-only numpy view, no copy\n"
      "  t[[3, 1, 4]]                       # rows, as a new array\n"
      "  embstore.generate(6, 4, seed=123)  # torch.manual_seed(123); nn.Embedding(6, 4).weight\n";
  m.attr("__version__") = kEmbstoreVersion;

  // NumPy is loaded now, while the import holds the GIL and no other thread
  // can be inside this module. Loaded lazily instead, the first thread to
  // need it would wait in pybind11's one-time set-up (a C++ static guard)
  // holding the GIL while it imports NumPy, and a second thread blocked on
  // that guard would hold what the import needs: a deadlock (four threads
  // doing t[0] right after `import threading, embstore` hung every time).
  py::module_::import("numpy");
  (void)py::detail::npy_api::get();
  (void)py::dtype::of<float>();
  (void)py::array_t<float>(0);
  (void)py::array_t<int64_t>(0);
  (void)py::array_t<uint64_t>(0);

  py::dict ns;
  py::exec(kExceptionSource, py::globals(), ns);
  for (const char* name : {"Error", "InvalidArgumentError", "OutOfRangeError", "CorruptionError", "NotSupportedError",
                           "StorageError", "NotFoundError", "AlreadyExistsError", "CancelledError"}) {
    py::object cls = ns[name];
    cls.attr("__module__") = "embstore";
    m.attr(name) = cls;
  }
  auto keep = [&](const char* name) { return py::object(ns[name]).release(); };  // held for the interpreter's life
  py::dict views;
  py::exec(kViewSource, py::globals(), views);
  for (const char* name : {"KeyToIndex", "IndexToKey"}) {
    py::object cls = views[name];
    cls.attr("__module__") = "embstore";
    m.attr(name) = cls;
  }
  g_views = {py::object(views["KeyToIndex"]).release(), py::object(views["IndexToKey"]).release(),
             py::object(views["most_similar"]).release()};
  g_errors = {keep("InvalidArgumentError"), keep("OutOfRangeError"), keep("CorruptionError"),
              keep("NotSupportedError"),    keep("StorageError"),    keep("NotFoundError"),
              keep("AlreadyExistsError"), keep("CancelledError")};

  py::class_<PyTable>(m, "Table",
                    "An open table. Rows of a .emb or shared table come straight from its read-only mapping;\n"
                    "rows of a .embz are decoded a frame at a time. Safe to use from several threads.")
      .def_property_readonly("shape", [](const PyTable& t) { return py::make_tuple(t.table().rows(), t.table().dim()); },
                             "(rows, dim)")
      .def_property_readonly("dtype", [](const PyTable& t) { return std::string(DtypeName(t.table().dtype())); },
                             "The stored element type: 'float32', 'float16' or 'bfloat16'.")
      .def_property_readonly("metadata", [](const PyTable& t) { return MetadataDict(t.table().metadata()); },
                             "The table's metadata: str values (bytes where not UTF-8).")
      .def_property_readonly("path", [](const PyTable& t) { return PathText(t.spec()); }, "The name it was opened by.")
      .def_property_readonly("compressed", [](const PyTable& t) { return t.table().embz() != nullptr; },
                             "True for a .embz.")
      .def_property_readonly("closed", &PyTable::closed)
      .def_property_readonly("array", &PyTable::Array,
                             "The whole table as a read-only numpy.ndarray over the mapping (no copy): float32,\n"
                             "or numpy.float16 for a float16 table. It keeps the mapping alive on its own, after\n"
                             "close() and after the file is replaced or deleted. torch.from_numpy(t.array) shares\n"
                             "the same memory. Not for a .embz, nor for bfloat16 (NumPy has none: see tensor()).")
      .def("tensor", &PyTable::Tensor,
           "The whole table as a torch tensor of its stored type (torch.float32, torch.float16 or\n"
           "torch.bfloat16) over the mapping, no copy. The memory is read-only: writing to it\n"
           "crashes the process, as writing to torch.from_numpy(t.array) would. Not for a .embz.")
      .def("gather", &PyTable::Gather, py::arg("ids"), py::arg("out") = py::none(), py::arg("dtype") = py::none(),
           "Rows ids (an int or any array of ints) as a new array of shape ids.shape + (dim,), or into\n"
           "out (a C-contiguous array of that shape and type). float32 by default, whatever the table\n"
           "holds (half types widen exactly), since that is what models and NumPy compute with; dtype=\n"
           "'float16' gives numpy.float16 and 'bfloat16' a torch.bfloat16 tensor (or, into a uint16 out,\n"
           "the bit patterns): the stored values when that is the table's type, else rounded as\n"
           "PyTorch's .to(dtype). Every id is checked first; one out of range raises OutOfRangeError\n"
           "(an IndexError) and copies nothing.")
      .def("__getitem__", &PyTable::GetItem, py::arg("key"),
           "t[i], t[a:b], t[ids]: rows as a new float32 array (as gather). Ids are not negative, as in\n"
           "nn.Embedding. t[\"king\"], t[[\"king\", \"queen\"]]: rows by key (KeyError names a missing one).")
      .def("__len__", [](const PyTable& t) { return t.table().rows(); })
      .def("__contains__", &PyTable::Contains, py::arg("key"),
           "\"king\" in t: whether the table has that key (False for a table without keys).")
      .def("index", &PyTable::Index, py::arg("key"),
           "The row id of a key (a str), found in the table's mapped hash index; KeyError if absent.")
      .def("key", &PyTable::Key, py::arg("id"), "The key (a str) of row id.")
      .def_property_readonly("has_keys", &PyTable::HasKeys, "True when the table's rows have keys.")
      .def("nearest", &PyTable::Nearest, py::arg("queries"), py::arg("k") = 10, py::arg("metric") = "cosine",
           py::kw_only(), py::arg("exclude") = py::none(), py::arg("threads") = 0, py::arg("restrict") = 0,
           "The k rows closest to each query, by an exact scan of the table in place (no copy; half\n"
           "rows widened in registers; a .embz a frame at a time), without the GIL. queries: (dim,)\n"
           "or (n, dim), any float type (converted to float32). metric: 'cosine' or 'dot' (larger\n"
           "is closer) or 'l2' (the squared distance, smaller is closer). Returns (ids, scores):\n"
           "int64 and float32 arrays of shape (n, k), closest first, equal scores by lower id, NaN\n"
           "scores last. exclude: ids never returned (a list for every query, or one list per\n"
           "query); restrict: search only rows [0, restrict) (0: all). A row of zeros has cosine 0.")
      .def("most_similar", [](py::object self, py::object positive, py::object negative, py::object topn,
                              py::object restrict_vocab) {
             return g_views.most_similar(self, positive, negative, topn, restrict_vocab);
           },
           py::arg("positive") = py::none(), py::arg("negative") = py::none(), py::arg("topn") = 10,
           py::arg("restrict_vocab") = py::none(),
           "gensim's KeyedVectors.most_similar over this table: keys (or row ids, or vectors, or\n"
           "(item, weight) pairs) in positive and negative; their unit vectors are averaged with\n"
           "weights 1 and -1, and the topn rows of highest cosine with that mean are returned as\n"
           "[(key, similarity), ...], the query keys left out. topn=None: the cosine of every row,\n"
           "as an array. A row of zeros has similarity 0 (gensim: NaN).")
      .def_property_readonly("key_to_index", [](py::object self) { return g_views.key_to_index(self); },
                             "A read-only mapping view: key -> row id, looked up in the mapping (no dict is\n"
                             "built). NotSupportedError for a table without keys.")
      .def_property_readonly("index_to_key", [](py::object self) { return g_views.index_to_key(self); },
                             "A read-only sequence view: row id -> key, read from the mapping.")
      .def("__array__",
           [](PyTable& t, py::object dtype, py::object copy) -> py::object {
             // A .embz has no mapping, and NumPy has no bfloat16: the rows are
             // decoded (or widened to float32) into a new array.
             const bool view = t.table().mapped() && t.table().dtype() != Dtype::kBFloat16;
             py::object a = view ? t.Array() : py::object(t.GetItem(py::slice(0, t.table().rows(), 1)));
             py::module_ np = py::module_::import("numpy");
             if (!copy.is_none() && copy.cast<bool>()) return np.attr("array")(a, dtype);
             return dtype.is_none() ? a : np.attr("asarray")(a, dtype);
           },
           py::arg("dtype") = py::none(), py::arg("copy") = py::none(),
           "np.asarray(t): the array (no copy) for a .emb or shm: table; the decoded rows for a .embz;\n"
           "float32 rows (exact) for a bfloat16 table.")
      .def("info", [](const PyTable& t) { return JsonLoads(TableInfoJson(t.table(), t.spec())); },
           "What `embstore info --json` prints, as a dict.")
      .def("verify", &PyTable::Verify, py::arg("threads") = 0,
           "Recomputes every checksum (on `threads` threads, 0: all cores). Returns a report dict;\n"
           "raises CorruptionError naming the bad rows (the report in its .report) when any fail.")
      .def("shard", &PyTable::Shard, py::arg("index"),
           "Shard `index` of a sharded table, opened and checked against the manifest, as a Table of\n"
           "its own (rows from 0; a .emb shard maps as any table).")
      .def_property_readonly("shards",
                             [](const PyTable& t) {
                               py::list out;
                               if (const Manifest* man = t.table().manifest()) {
                                 for (const ShardEntry& e : man->shards) out.append(EntryDict(e));
                               }
                               return out;
                             },
                             "A sharded table's shards as the manifest lists them (dicts of path,\n"
                             "first_row, rows, checksum); [] for any other table.")
      .def("close", &PyTable::Close,
           "Releases this object's hold on the mapping. Arrays made from it stay valid.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyTable& t, py::args) { t.Close(); })
      .def("__repr__", &PyTable::Repr)
      .def(py::pickle(
          [](const PyTable& t) {
            t.table();
            return py::make_tuple(py::bytes(t.reopen_spec()), t.options().cache_bytes,
                                  py::cast(t.options().trusted_owners));
          },
          [](const py::tuple& state) {
            // (path bytes, cache_bytes, trusted uids); (path str, cache_bytes) from 0.1.0.
            if (state.size() != 3 && state.size() != 2) throw py::value_error("not a pickled embstore.Table");
            OpenOptions o;
            o.cache_bytes = state[1].cast<uint64_t>();
            if (state.size() == 3) o.trusted_owners = state[2].cast<std::vector<uint32_t>>();
            return PyTable(PathArg(state[0]), o);
          }));

  m.def(
      "open",
      [](py::handle spec, uint64_t cache_bytes, py::handle trust_owner) {
        OpenOptions o;
        o.cache_bytes = cache_bytes;
        o.trusted_owners = OwnersArg(trust_owner);
        return PyTable(SpecArg(spec), o);
      },
      py::arg("path"), py::kw_only(), py::arg("cache_bytes") = kDefaultCacheBytes, py::arg("trust_owner") = py::none(),
      "Opens a table: a .emb file, a .embz file, or 'shm:NAME' (a shared table). Instant at any\n"
      "size: only the header is read. cache_bytes bounds a .embz's cache of decoded frames.\n"
      "A shared table is read only if it belongs to you or root, or to a user named in\n"
      "trust_owner (a name, a uid, or a list): another user may have taken the name first.");
  m.def(
      "info",
      [](py::handle spec, py::handle trust_owner) {
        OpenOptions o;
        o.trusted_owners = OwnersArg(trust_owner);
        PyTable t(SpecArg(spec), o);
        return JsonLoads(TableInfoJson(t.table(), t.spec()));
      },
      py::arg("path"), py::kw_only(), py::arg("trust_owner") = py::none(),
      "What `embstore info --json PATH` prints, as a dict.");
  m.def(
      "get",
      [](py::handle spec, py::handle ids, py::handle trust_owner) {
        OpenOptions o;
        o.trusted_owners = OwnersArg(trust_owner);
        return PyTable(SpecArg(spec), o).Gather(ids, py::none()).cast<py::array>();
      },
      py::arg("path"), py::arg("ids"), py::kw_only(), py::arg("trust_owner") = py::none(),
      "Rows of a table, as open(path).gather(ids).");
  m.def(
      "verify",
      [](py::handle spec, unsigned threads, py::handle trust_owner) {
        OpenOptions o;
        o.trusted_owners = OwnersArg(trust_owner);
        return PyTable(SpecArg(spec), o).Verify(threads);
      },
      py::arg("path"), py::kw_only(), py::arg("threads") = 0, py::arg("trust_owner") = py::none(),
      "open(path).verify(): raises CorruptionError on a bad table.");
  m.def("generate", &Generate, py::arg("rows"), py::arg("dim"), py::arg("seed") = 0, py::kw_only(),
        py::arg("path") = py::none(), py::arg("init") = "normal", py::arg("mean") = py::none(), py::arg("std") = py::none(),
        py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("torch_kernel") = "avx2", py::arg("threads") = 0,
        py::arg("fsync") = true, py::arg("dtype") = "float32", py::arg("shard_rows") = py::none(),
        "The rows x dim table PyTorch makes with torch.manual_seed(seed) and\n"
        "nn.Embedding(rows, dim, dtype=dtype) (= torch.randn), or with init='normal', mean, std:\n"
        "normal_(mean, std), or init='uniform', low, high: uniform_(low, high); bit for bit, for\n"
        "torch_kernel 'avx2' (x86-64's default) or 'scalar', and dtype float32, float16 or bfloat16\n"
        "(PyTorch's own half-precision path). mean, std default to 0.0, 1.0; low, high to 0.0, 1.0.\n"
        "With path, writes the table file (replacing any file there atomically, as the command does;\n"
        "SOURCE_DATE_EPOCH records a creation time) and returns None; without, returns a numpy array\n"
        "(float32 or float16) or, for bfloat16, a torch.bfloat16 tensor. With shard_rows, path is a\n"
        "folder: a sharded table of shards of shard_rows rows and manifest.json, whose path is returned.");
  m.def(
      "generate_shard",
      [](py::handle folder, uint64_t index, uint64_t rows, uint64_t dim, const py::int_& seed, uint64_t shard_rows,
         const std::string& init, py::object mean, py::object std_dev, py::object low, py::object high,
         const std::string& kernel, unsigned threads, bool fsync, py::handle dtype) {
        GenerateSpec spec = SpecFromArgs(rows, dim, seed, init, mean, std_dev, low, high, kernel, threads, fsync, dtype);
        const std::string dir = PathArg(folder);
        auto plan = Take(PlanShards(rows, shard_rows));
        if (index >= plan.size()) {
          Raise(Status::InvalidArgument("shard " + std::to_string(index) + " out of range: the table has " +
                                        std::to_string(plan.size()) + " shards"));
        }
        spec.first_row = plan[index].first;
        spec.row_count = plan[index].second;
        ShardEntry entry;
        RunWork("generate", "", [&](auto, const CancelToken* cancel) {
          spec.cancel = cancel;
          EMB_ASSIGN_OR_RETURN(entry, GenerateShard(dir + "/" + ShardFileName(index), spec,
                                                    GeneratedTableId(spec, shard_rows), index, plan.size()));
          return Status::OK();
        });
        return EntryDict(entry);
      },
      py::arg("folder"), py::arg("index"), py::arg("rows"), py::arg("dim"), py::arg("seed") = 0, py::kw_only(),
      py::arg("shard_rows"), py::arg("init") = "normal", py::arg("mean") = py::none(), py::arg("std") = py::none(),
      py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("torch_kernel") = "avx2",
      py::arg("threads") = 0, py::arg("fsync") = true, py::arg("dtype") = "float32",
      "Shard `index` of the sharded table generate(..., path=folder, shard_rows=...) writes:\n"
      "folder/shard-NNNNNN.emb, written whole or not at all and verified, the same bytes every\n"
      "time. Returns its manifest entry (a dict); write_generated_manifest lists the entries.\n"
      "What each task of embstore.dask.generate runs.");
  m.def(
      "write_generated_manifest",
      [](py::handle folder, py::handle entries, uint64_t rows, uint64_t dim, const py::int_& seed, uint64_t shard_rows,
         const std::string& init, py::object mean, py::object std_dev, py::object low, py::object high,
         const std::string& kernel, bool fsync, py::handle dtype) {
        GenerateSpec spec = SpecFromArgs(rows, dim, seed, init, mean, std_dev, low, high, kernel, 0, fsync, dtype);
        auto plan = Take(PlanShards(rows, shard_rows));
        std::vector<ShardEntry> shards = EntriesArg(entries);
        if (shards.size() != plan.size()) {
          Raise(Status::InvalidArgument(std::to_string(shards.size()) + " entries for a table of " +
                                        std::to_string(plan.size()) + " shards"));
        }
        const std::string manifest = PathArg(folder) + "/" + kManifestFileName;
        Check(WriteManifest(manifest, GeneratedManifest(spec, GeneratedTableId(spec, shard_rows), std::move(shards)),
                            fsync));
        return PathText(manifest);
      },
      py::arg("folder"), py::arg("entries"), py::arg("rows"), py::arg("dim"), py::arg("seed") = 0, py::kw_only(),
      py::arg("shard_rows"), py::arg("init") = "normal", py::arg("mean") = py::none(), py::arg("std") = py::none(),
      py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("torch_kernel") = "avx2",
      py::arg("fsync") = true, py::arg("dtype") = "float32",
      "Writes folder/manifest.json (atomically) listing the entries generate_shard returned,\n"
      "in order; returns its path. The manifest is checked first (row ranges, paths).");
  m.def(
      "append",
      [](py::handle manifest, py::handle table, bool fsync) {
        const std::string to = SpecArg(manifest), from = SpecArg(table);
        ShardEntry entry;
        RunWork("append", "rows", [&](auto progress, const CancelToken* cancel) {
          ShardWorkOptions o;
          o.sync = fsync;
          o.cancel = cancel;
          o.progress = progress;
          EMB_ASSIGN_OR_RETURN(entry, AppendShard(to, from, o));
          return Status::OK();
        });
        return EntryDict(entry);
      },
      py::arg("manifest"), py::arg("table"), py::kw_only(), py::arg("fsync") = true,
      "embstore append: adds table's rows after the sharded table's last row, as a new shard\n"
      "beside the manifest; the manifest is replaced last, atomically. Returns the new entry.");
  m.def(
      "shard_op",
      [](py::handle manifest, uint64_t index, py::handle out_dir, const std::string& op, int level, py::handle dtype,
         unsigned threads, bool fsync) {
        const std::string spec = SpecArg(manifest), out = PathArg(out_dir);
        ShardOpOptions o;
        if (op == "compress") {
          o.op = ShardOp::kCompress;
        } else if (op == "decompress") {
          o.op = ShardOp::kDecompress;
        } else if (op == "convert") {
          o.op = ShardOp::kConvert;
          if (dtype.is_none()) Raise(Status::InvalidArgument("convert needs a dtype"));
        } else {
          Raise(Status::InvalidArgument("unknown op '" + op + "' (known: compress, decompress, convert)"));
        }
        o.dtype = DtypeArg(dtype).value_or(Dtype::kFloat32);
        o.level = level;
        o.threads = ThreadsArg(threads);
        o.sync = fsync;
        ShardEntry entry;
        RunWork(op.c_str(), "", [&](auto, const CancelToken* cancel) {
          o.cancel = cancel;
          EMB_ASSIGN_OR_RETURN(auto opened, OpenTable(spec));
          const auto* t = dynamic_cast<const ShardedTable*>(opened.get());
          if (t == nullptr) return Status::InvalidArgument(spec + " is not a sharded table");
          if (index >= t->shards().shards.size()) return Status::OutOfRange("shard " + std::to_string(index) + " out of range");
          EMB_ASSIGN_OR_RETURN(entry, ShardOpOne(*t, index, out, o));
          return Status::OK();
        });
        return EntryDict(entry);
      },
      py::arg("manifest"), py::arg("index"), py::arg("out_dir"), py::arg("op"), py::kw_only(),
      py::arg("level") = kDefaultLevel, py::arg("dtype") = py::none(), py::arg("threads") = 0, py::arg("fsync") = true,
      "Shard `index` of a sharded table compressed ('compress': NAME.embz), decompressed\n"
      "('decompress': NAME.emb) or converted to dtype ('convert') into out_dir, written whole and\n"
      "verified. Returns its entry for write_shard_op_manifest. What embstore.dask's tasks run.");
  m.def(
      "write_shard_op_manifest",
      [](py::handle manifest, py::handle out_dir, const std::string& op, py::handle entries, py::handle dtype,
         bool fsync) {
        const std::string spec = SpecArg(manifest), out = PathArg(out_dir);
        auto opened = Take(OpenTable(spec));
        const auto* t = dynamic_cast<const ShardedTable*>(opened.get());
        if (t == nullptr) Raise(Status::InvalidArgument(spec + " is not a sharded table"));
        ShardOpOptions o;
        o.op = op == "compress" ? ShardOp::kCompress : op == "decompress" ? ShardOp::kDecompress : ShardOp::kConvert;
        if (op != "compress" && op != "decompress" && op != "convert") {
          Raise(Status::InvalidArgument("unknown op '" + op + "' (known: compress, decompress, convert)"));
        }
        o.dtype = DtypeArg(dtype).value_or(Dtype::kFloat32);
        std::vector<ShardEntry> shards = EntriesArg(entries);
        if (shards.size() != t->shards().shards.size()) {
          Raise(Status::InvalidArgument(std::to_string(shards.size()) + " entries for a table of " +
                                        std::to_string(t->shards().shards.size()) + " shards"));
        }
        o.sync = fsync;
        return PathText(Take(WriteShardOpManifest(*t, out, o, std::move(shards))));
      },
      py::arg("manifest"), py::arg("out_dir"), py::arg("op"), py::arg("entries"), py::kw_only(),
      py::arg("dtype") = py::none(), py::arg("fsync") = true,
      "Writes out_dir/manifest.json for the shards shard_op made (atomically); returns its path.");
  m.def("compress", &Compress, py::arg("src"), py::arg("dst"), py::kw_only(), py::arg("level") = kDefaultLevel,
        py::arg("threads") = 0, py::arg("frame_rows") = 0, py::arg("force") = false, py::arg("fsync") = true,
        py::arg("trust_owner") = py::none(),
        "embstore compress: a .emb (or 'shm:NAME') into a .embz that keeps random row access.");
  m.def("decompress", &Decompress, py::arg("src"), py::arg("dst"), py::kw_only(), py::arg("threads") = 0,
        py::arg("force") = false, py::arg("fsync") = true,
        "embstore decompress: the original .emb, byte for byte; nothing is left on a damaged frame.");
  m.def("import_table", &ImportTableVerb, py::arg("src"), py::arg("dst"), py::kw_only(), py::arg("tensor") = "",
        py::arg("format") = "auto", py::arg("rows") = 0, py::arg("dim") = 0, py::arg("force") = false,
        py::arg("fsync") = true, py::arg("dtype") = py::none(),
        "embstore import: a table from a .npy, a safetensors tensor, or raw float32 (format='raw',\n"
        "rows, dim), keeping the source's type (float64: float32) unless dtype names another; or,\n"
        "with keys, from word vectors (format 'word2vec', 'word2vec-binary', 'fasttext', 'glove', or\n"
        "by the name: .bin, .vec, .txt). Streams: the source is never loaded whole.");
  m.def("list_tensors", &ListTensors, py::arg("src"),
        "embstore import --list: the tensors of a safetensors file (name, dtype, shape, bytes).");
  m.def("export_table", &ExportTableVerb, py::arg("table"), py::arg("dst"), py::kw_only(),
        py::arg("tensor_name") = "weight", py::arg("force") = false, py::arg("fsync") = true,
        py::arg("trust_owner") = py::none(), py::arg("dtype") = py::none(), py::arg("format") = "auto",
        py::arg("binary") = false,
        "embstore export: a table (a path, 'shm:NAME' or an open Table) to a .npy that\n"
        "numpy.load(mmap_mode='r') maps, or to a .safetensors file, in the table's own type unless\n"
        "dtype names another (a .npy cannot hold bfloat16); format='word2vec' writes a table with\n"
        "keys for gensim's load_word2vec_format (binary=True: float32 bits; else text).");
  m.def("attach_keys", &AttachKeysVerb, py::arg("table"), py::arg("vocab"), py::arg("dst"), py::kw_only(),
        py::arg("vocab_format") = "auto", py::arg("force") = false, py::arg("fsync") = true,
        py::arg("trust_owner") = py::none(),
        "embstore keys attach: a copy of the table whose rows have keys, from a tokenizer.json\n"
        "(model.vocab, added_tokens), a vocab.json (token -> id) or one key per line; the ids must be\n"
        "exactly 0 .. rows-1.");
  m.def("convert", &ConvertVerb, py::arg("table"), py::arg("dst"), py::kw_only(), py::arg("dtype"),
        py::arg("force") = false, py::arg("fsync") = true, py::arg("trust_owner") = py::none(),
        "embstore convert: a new table of another dtype (float32, float16, bfloat16), rounded as\n"
        "PyTorch's Tensor.to(dtype) rounds.");
  m.def("share", &Share, py::arg("src"), py::arg("name"), py::kw_only(), py::arg("force") = false,
        py::arg("mode") = 0600, py::arg("threads") = 0, py::arg("trust_owner") = py::none(),
        "embstore share: places a table (.emb, .embz inflated once, or 'shm:NAME') in shared memory as\n"
        "'shm:NAME', verified, whole or not at all. mode: permission bits (0o600: owner only).");
  m.def("unshare", &Unshare, py::arg("name"), "embstore unshare: removes a shared table's name.");
  m.def("shared", &SharedList, "embstore shared --json: the shared tables, as a list of dicts.");
}
