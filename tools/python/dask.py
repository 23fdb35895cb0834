"""embstore.dask: sharded tables worked on by a Dask cluster, one task per shard.

A sharded table (FORMAT.md, "Sharded tables") is a folder holding ordinary
table files, its shards, and manifest.json, which lists them and their rows.
Each shard is work of its own: it is generated from the row where PyTorch's
stream reaches it, verified, compressed or converted without a look at the
others. The functions here hand that work to a Dask cluster, one task per
shard, and do on the client only what needs every shard: the manifest is
written after every task has returned, that is after every shard it lists is
written whole and verified. A run that fails or is stopped leaves the old
manifest (or none), never one that lists a missing or half-written shard.

    import distributed
    import embstore.dask

    client = distributed.Client("tcp://scheduler:8786")
    m = embstore.dask.generate(client, "/shared/gpt", 50257, 12288, seed=7, shard_rows=4096)
    embstore.dask.verify(client, m)["ok"]              # True
    x = embstore.dask.to_dask_array(m)                 # one chunk per shard
    x[:1000].mean(axis=0).compute()
    embstore.dask.compress(client, m, "/shared/gpt-z")

Every function takes the client first, opens nothing but manifests itself,
and sends the workers paths, shard numbers and options, never rows: each
worker reads and writes the shards in place. The client, the scheduler and
the workers must therefore see the table at the same path. Relative paths
are made absolute on the client.

On a real cluster: start the scheduler on one host (`dask-scheduler`, which
listens on tcp://HOST:8786), and a worker on each of the others
(`dask-worker tcp://HOST:8786 --nthreads 1`, `--nworkers N` for N processes
on one host). Every host needs embstore installed for the same Python, and
the folder at the same path: NFS or a cluster filesystem mounted alike.
Then `distributed.Client("tcp://HOST:8786")` from anywhere, and the same
calls as above. On one machine, `distributed.LocalCluster()` makes the
scheduler and workers as processes of its own. A task works on one shard
with `threads` threads (1 by default: the worker's own threads run as many
tasks at once); give workers fewer threads and tasks more for large shards.

Retries are safe. A shard is written as every embstore file is: into a
temporary file put in place whole, or not at all. A task redone writes the
same bytes again (table ids are derived from what makes the table, and the
generator jumps to the shard's first row), and a temporary file left by a
worker that died is removed by the next writer in that folder. So a worker
that dies mid-task, whose tasks the scheduler then gives to others, costs
only the time the task had run, and `retries=N` (passed to client.map) is
safe for failures that may pass (a full disk, a filesystem gone for a
while). A task that fails for good fails the call: the exception of the
first failed task is raised on the client, the remaining tasks are
cancelled, and no manifest is written.

`import embstore.dask` needs no Dask: dask and distributed are imported by
the functions that use them (Debian: python3-dask, python3-distributed).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

import numpy as np

import embstore

if TYPE_CHECKING:
    from embstore import _ShardEntry

# The types of Dask's objects are named, not imported: type checkers (the
# package's stubtest and mypy --strict) would otherwise analyse all of dask
# and distributed, which took a minute of every test run.
_Client = Any       # a distributed.Client
_DaskArray = Any    # a dask.array.Array

__all__ = ["generate", "verify", "compress", "decompress", "convert", "to_dask_array"]

# The most shards a manifest lists (format/manifest.h, kMaxShards): checked
# here before any task is submitted.
_MAX_SHARDS = 1 << 15


def _shard_count(rows: int, shard_rows: int) -> int:
    """How many shards PlanShards (store/interop/shards.h) cuts rows into."""
    if shard_rows < 1:
        raise embstore.InvalidArgumentError(f"shard_rows {shard_rows}: a shard holds 1 row or more")
    count = rows // shard_rows + (rows % shard_rows != 0)
    if count > _MAX_SHARDS:
        raise embstore.InvalidArgumentError(
            f"{rows} rows in shards of {shard_rows} make {count} shards, over the limit of {_MAX_SHARDS} "
            "(take larger shards)")
    return count


def _run(client: _Client, task: Callable[..., Any], count: int, name: str, retries: int,
         **kwargs: Any) -> list[Any]:
    """task(i, **kwargs) for i in range(count) on the cluster, one task each;
    their results in order. The first failure is raised, after the other
    tasks are cancelled."""
    if count == 0:
        return []
    c: Any = client  # (distributed's Client is not typed)
    futures = c.map(task, range(count), key="embstore-" + name, pure=False, retries=retries or None, **kwargs)
    try:
        results: list[Any] = c.gather(futures)
    except BaseException:
        c.cancel(futures)
        raise
    return results


def _sharded(manifest: str) -> embstore.Table:
    """The sharded table at manifest, opened (manifest errors raise here)."""
    t = embstore.open(manifest)
    if not t.shards:
        raise embstore.InvalidArgumentError(f"{manifest} is not a sharded table (a manifest)")
    return t


# ---- generate ----------------------------------------------------------------

def _generate_task(index: int, folder: str, rows: int, dim: int, seed: int, params: dict[str, Any],
                   epoch: Optional[str], shard_fn: Optional[Callable[..., Any]]) -> Any:
    # The client's SOURCE_DATE_EPOCH, which the table's id and its shards'
    # metadata record (as the manifest the client writes does): a worker
    # whose own differed would write shards of another table. Set for the
    # worker process, and left so (tasks of one client all set the same).
    if os.environ.get("SOURCE_DATE_EPOCH") != epoch:
        if epoch is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = epoch
    fn: Callable[..., Any] = embstore.generate_shard
    if shard_fn is not None:
        fn = shard_fn
    return fn(folder, index, rows, dim, seed, **params)


def generate(client: _Client, folder: str | os.PathLike[str], rows: int, dim: int, seed: int = 0, *,
             shard_rows: int, dtype: str = "float32", init: Literal["normal", "uniform"] = "normal",
             mean: Optional[float] = None, std: Optional[float] = None, low: Optional[float] = None,
             high: Optional[float] = None, torch_kernel: Literal["avx2", "scalar"] = "avx2", threads: int = 1,
             fsync: bool = True, retries: int = 0, _task: Optional[Callable[..., Any]] = None) -> str:
    """The table embstore.generate(rows, dim, seed, path=folder,
    shard_rows=shard_rows, ...) writes, the same bytes, made by the cluster:
    each task writes and verifies one shard (embstore.generate_shard), then
    the client writes folder/manifest.json. Returns the manifest's path.

    The folder is made if missing; a manifest.json already in it is removed
    before any shard is written. threads: per task. retries: how many times
    the scheduler reruns a failed task (safe: a rerun writes the same bytes).
    The client's SOURCE_DATE_EPOCH, if set, is the creation time every shard
    records (the tasks set it on the workers), as the command's would be.
    _task is for tests: a function called as embstore.generate_shard is.
    """
    folder = os.path.abspath(os.fspath(folder))
    count = _shard_count(rows, shard_rows)
    os.makedirs(folder, exist_ok=True)
    # A manifest already there goes first (a reader that has it open keeps
    # it): the shards written next may be another table's, and no manifest
    # may list shards of two tables. A run stopped midway leaves none.
    try:
        os.remove(os.path.join(folder, "manifest.json"))
    except FileNotFoundError:
        pass
    spec: dict[str, Any] = dict(shard_rows=shard_rows, init=init, mean=mean, std=std, low=low, high=high,
                                torch_kernel=torch_kernel, dtype=dtype)
    entries: list[_ShardEntry] = _run(client, _generate_task, count, "generate", retries, folder=folder, rows=rows,
                                      dim=dim, seed=seed, params=dict(spec, threads=threads, fsync=fsync),
                                      epoch=os.environ.get("SOURCE_DATE_EPOCH"), shard_fn=_task)
    return embstore.write_generated_manifest(folder, entries, rows, dim, seed, fsync=fsync, **spec)


# ---- verify ------------------------------------------------------------------

def _verify_task(index: int, manifest: str, threads: int) -> dict[str, Any]:
    """Shard index checked: what went wrong with it, rows numbered as in
    the whole table."""
    t = embstore.open(manifest)
    entry = t.shards[index]
    first = entry["first_row"]
    out: dict[str, Any] = {
        "index": index, "path": entry["path"], "first_row": first, "rows": entry["rows"], "ok": True,
        "checked": False, "error": None, "blocks_checked": 0, "frames_checked": 0, "bytes_checked": 0,
        "bad_block_count": 0, "bad_frame_count": 0, "bad": [], "bad_padding": [], "bad_keys": "",
    }
    report: Optional[dict[str, Any]] = None
    try:
        # Opening the shard checks it against the manifest: there, a regular
        # file, of this table, at this place, with the checksums listed.
        report = t.shard(index).verify(threads=threads)
    except embstore.Error as e:
        out["ok"] = False
        report = getattr(e, "report", None)  # a CorruptionError from verify() carries it
        if report is None:
            out["error"] = str(e)
    if report is not None:
        out["checked"] = True
        for k in ("blocks_checked", "frames_checked", "bytes_checked", "bad_block_count", "bad_frame_count",
                  "bad_padding", "bad_keys"):
            out[k] = report[k]
        out["bad"] = [dict(b, first_row=b["first_row"] + first) for b in report["bad"]]
    return out


def verify(client: _Client, manifest: str | os.PathLike[str], threads: int = 1,
           retries: int = 0) -> dict[str, Any]:
    """Every shard of the sharded table checked by the cluster, one task
    each: the shard against the manifest (present, a regular file, of this
    table, at its place, its checksums those listed) and its rows against
    its checksums. Returns one report, without raising for a bad table:

        ok            True when every shard is fine
        manifest      the manifest's path
        rows, shards  the table's rows and shards
        shards_checked, blocks_checked, frames_checked, bytes_checked,
        bad_block_count, bad_frame_count   summed over the shards
        bad_shards    one dict per shard that is not fine: index, path,
                      first_row and rows (its range in the table); checked
                      (whether the shard could be checked at all) and error
                      (when not, why: missing, another table's, a symlink,
                      not a table; else None); bad (its bad blocks or frames
                      as Table.verify lists them, rows numbered as in the
                      whole table), bad_block_count, bad_frame_count,
                      bad_padding, bad_keys

    A manifest that cannot be read raises (embstore.CorruptionError, ...).
    """
    manifest = os.path.abspath(os.fspath(manifest))
    t = _sharded(manifest)
    count = len(t.shards)
    results: list[dict[str, Any]] = _run(client, _verify_task, count, "verify", retries, manifest=manifest,
                                         threads=threads)
    report: dict[str, Any] = {"ok": all(r["ok"] for r in results), "manifest": manifest, "rows": t.shape[0],
                              "shards": count, "shards_checked": sum(r["checked"] for r in results)}
    for k in ("blocks_checked", "frames_checked", "bytes_checked", "bad_block_count", "bad_frame_count"):
        report[k] = sum(r[k] for r in results)
    report["bad_shards"] = [{k: v for k, v in r.items() if k != "ok" and not k.endswith("_checked")}
                            for r in results if not r["ok"]]
    return report


# ---- compress, decompress, convert ---------------------------------------------

def _shard_op_task(index: int, manifest: str, out_dir: str, op: Literal["compress", "decompress", "convert"],
                   level: int, dtype: Optional[str], threads: int, fsync: bool) -> Any:
    return embstore.shard_op(manifest, index, out_dir, op, level=level, dtype=dtype, threads=threads, fsync=fsync)


def _shard_ops(client: _Client, manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str],
               op: Literal["compress", "decompress", "convert"], *, level: int = 3, dtype: Optional[str] = None,
               threads: int, fsync: bool, retries: int) -> str:
    manifest = os.path.abspath(os.fspath(manifest))
    out_dir = os.path.abspath(os.fspath(out_dir))
    t = _sharded(manifest)
    os.makedirs(out_dir, exist_ok=True)
    # The folder the shards are in: the manifest's (given as its folder, or
    # through a symlink, the real one's).
    manifest_file = os.path.join(manifest, "manifest.json") if os.path.isdir(manifest) else manifest
    if op == "convert" and os.path.samefile(out_dir, os.path.dirname(os.path.realpath(manifest_file))):
        # As `embstore convert` refuses: the converted shards would replace
        # the ones the other tasks (and a rerun of this one) read.
        raise embstore.InvalidArgumentError(
            f"{out_dir}: converted shards would replace the source's; write them to another folder")
    entries: list[_ShardEntry] = _run(client, _shard_op_task, len(t.shards), op, retries, manifest=manifest,
                                      out_dir=out_dir, op=op, level=level, dtype=dtype, threads=threads,
                                      fsync=fsync)
    return embstore.write_shard_op_manifest(manifest, out_dir, op, entries, dtype=dtype, fsync=fsync)


def compress(client: _Client, manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str],
             level: int = 3, threads: int = 1, *, fsync: bool = True, retries: int = 0) -> str:
    """Every shard compressed into out_dir (shard-NNNNNN.embz, as `embstore
    compress` makes them: the same rows and checksums), one task each, then
    out_dir/manifest.json. Returns its path. out_dir may be the source's
    folder: the new manifest then replaces the old one, last."""
    return _shard_ops(client, manifest, out_dir, "compress", level=level, threads=threads, fsync=fsync,
                      retries=retries)


def decompress(client: _Client, manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str],
               threads: int = 1, *, fsync: bool = True, retries: int = 0) -> str:
    """Every .embz shard decompressed into out_dir (shard-NNNNNN.emb: the
    bytes of the .emb it was compressed from), one task each, then
    out_dir/manifest.json. Returns its path."""
    return _shard_ops(client, manifest, out_dir, "decompress", threads=threads, fsync=fsync, retries=retries)


def convert(client: _Client, manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str],
            dtype: str, threads: int = 1, *, fsync: bool = True, retries: int = 0) -> str:
    """A new sharded table of another dtype (float32, float16, bfloat16;
    rounded as PyTorch's Tensor.to rounds) in out_dir, another folder than
    the source's: its shards, one task each, then out_dir/manifest.json.
    Returns its path."""
    return _shard_ops(client, manifest, out_dir, "convert", dtype=dtype, threads=threads, fsync=fsync,
                      retries=retries)


# ---- dask.array --------------------------------------------------------------

def _read_shard(manifest: str, index: int, dtype: str, checksum: str) -> np.ndarray[Any, Any]:
    """Shard index's rows: in the stored type, the array over the mapping
    (no copy) for a .emb shard."""
    t = embstore.open(manifest)
    entry = t.shards[index] if index < len(t.shards) else None
    if entry is None or entry["checksum"] != checksum:
        # The array's keys name its shards' contents.
        raise embstore.CorruptionError(
            f"{manifest}: shard {index} is not the one the dask array was made from (the manifest was replaced)")
    shard = t.shard(index)
    if dtype == shard.dtype or (dtype == "float32" and shard.dtype == "bfloat16"):
        # float32 and float16: a view (a .embz: the decoded rows); bfloat16:
        # its float32 values, exact.
        return np.asarray(shard)
    # float16 from float32 or bfloat16, rounded as PyTorch's .to(); float32
    # from float16, exact.
    rows: np.ndarray[Any, Any] = shard.gather(np.arange(len(shard), dtype=np.int64), dtype=dtype)
    return rows


def to_dask_array(manifest: str | os.PathLike[str], dtype: Optional[str] = None) -> _DaskArray:
    """The sharded table as a dask.array of shape (rows, dim), one chunk per
    shard (its rows, every column). dtype: 'float32' or 'float16'; by
    default the table's own, and float32 for bfloat16 (NumPy has none).

    Each chunk is computed where the scheduler places it, by opening the
    manifest and mapping the shard: for a .emb shard of the array's type
    the chunk is a read-only view over the mapping, no copy. The graph holds
    the manifest's path, the shard's number and checksum only, so nothing
    of the table goes through the scheduler, and the array can be made on
    a client that never reads a row. Keys are named after the table's id,
    the dtype and the shards' checksums: the same table gives the same
    keys. Computing a chunk after the manifest was replaced by one whose
    shard differs raises embstore.CorruptionError.
    """
    # Imported by name, so that type checkers do not analyse all of dask
    # (Dask's own functions are not typed anyway).
    array: Any = importlib.import_module("dask.array.core").Array
    tokenize: Any = importlib.import_module("dask.base").tokenize
    graph_of: Any = importlib.import_module("dask.highlevelgraph").HighLevelGraph.from_collections

    manifest = os.path.abspath(os.fspath(manifest))
    t = _sharded(manifest)
    stored = t.dtype
    want = (("float32" if stored == "bfloat16" else stored) if dtype is None
            else "bfloat16" if str(dtype) in ("bfloat16", "bf16") else np.dtype(dtype).name)
    if want not in ("float32", "float16"):
        raise embstore.InvalidArgumentError(
            f"dtype {dtype!r}: a dask array of a table is float32 or float16 (NumPy has no bfloat16)")
    shards = t.shards
    table_id = t.info()["sharded"]["table_id"]
    name = f"embstore-{table_id}-{want}-" + tokenize([(s["first_row"], s["rows"], s["checksum"]) for s in shards])
    dsk: dict[Any, Any] = {(name, i, 0): (_read_shard, manifest, i, want, s["checksum"])
                           for i, s in enumerate(shards)}
    chunks = (tuple(s["rows"] for s in shards), (t.shape[1],))
    result: _DaskArray = array(graph_of(name, dsk, dependencies=()), name, chunks, dtype=np.dtype(want))
    return result
