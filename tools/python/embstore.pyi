# Type stubs of the embstore module (tools/python/embstore_module.cc),
# installed as embstore/__init__.pyi beside py.typed. tests/python/
# stubtest_test.sh checks them against the built module with mypy's stubtest,
# and a typed example (tests/python/typed_example.py) with mypy --strict.

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, SupportsIndex, TypedDict, overload

import numpy as np
import numpy.typing as npt

__version__: str

# A path: str, bytes (a name that is not UTF-8) or os.PathLike; read
# commands also take "shm:NAME".
_Path = str | bytes | os.PathLike[str] | os.PathLike[bytes]
# Users whose shared tables are trusted: a name, a uid, or a list of them.
_Owners = str | int | Sequence[str | int] | None
# Row ids: an int, or any array of ints (a list, a NumPy array, a tensor).
_Ids = SupportsIndex | npt.ArrayLike
_Rows = npt.NDArray[np.float32]
# An element type: "float32", "float16", "bfloat16" (or "f32", "f16", "bf16",
# "half"), a NumPy dtype or type, or a torch dtype.
_Dtype = str | npt.DTypeLike
_DtypeName = Literal["float32", "float16", "bfloat16"]

class Error(Exception):
    """Base class of every error embstore raises."""

class InvalidArgumentError(Error, ValueError): ...
class OutOfRangeError(Error, IndexError): ...

class CorruptionError(Error):
    report: dict[str, Any] | None

class NotFoundError(Error, FileNotFoundError): ...
class AlreadyExistsError(Error, FileExistsError): ...
class NotSupportedError(Error): ...
class StorageError(Error, OSError): ...
class CancelledError(Error): ...

class Table:
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def dtype(self) -> _DtypeName: ...
    @property
    def metadata(self) -> dict[str, str | bytes]: ...
    @property
    def path(self) -> str: ...
    @property
    def compressed(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def array(self) -> npt.NDArray[np.float32 | np.float16]: ...
    # A torch.Tensor (typed Any: torch need not be installed to type-check).
    def tensor(self) -> Any: ...
    @overload
    def gather(self, ids: _Ids, out: _Rows | None = None, dtype: Literal["float32"] | None = None) -> _Rows: ...
    @overload
    def gather(self, ids: _Ids, out: npt.NDArray[Any] | None = None, dtype: _Dtype | None = None) -> Any: ...
    def __getitem__(self, key: _Ids | slice | str | list[str]) -> _Rows: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def index(self, key: str) -> int: ...
    def key(self, id: int) -> str: ...
    @property
    def has_keys(self) -> bool: ...
    @property
    def key_to_index(self) -> KeyToIndex: ...
    @property
    def index_to_key(self) -> IndexToKey: ...
    def nearest(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        metric: Literal["cosine", "dot", "ip", "inner_product", "l2", "l2sq", "euclidean"] = "cosine",
        *,
        exclude: Sequence[int] | Sequence[Sequence[int]] | None = None,
        threads: int = 0,
        restrict: int = 0,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
    @overload
    def most_similar(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[Any, float]]: ...
    @overload
    def most_similar(
        self,
        positive: Any,
        negative: Any,
        topn: None,
        restrict_vocab: int | None = None,
    ) -> npt.NDArray[np.float32]: ...
    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> npt.NDArray[Any]: ...
    def info(self) -> dict[str, Any]: ...
    def verify(self, threads: int = 0) -> dict[str, Any]: ...
    def shard(self, index: int) -> Table: ...
    @property
    def shards(self) -> list[_ShardEntry]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Table: ...
    def __exit__(self, *args: object) -> None: ...
    def __getstate__(self) -> tuple[Any, ...]: ...
    def __setstate__(self, state: tuple[Any, ...], /) -> None: ...

class KeyToIndex(Mapping[str, int]):
    def __init__(self, table: Table) -> None: ...
    def __getitem__(self, key: str) -> int: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...

class IndexToKey(Sequence[str]):
    def __init__(self, table: Table) -> None: ...
    @overload
    def __getitem__(self, i: SupportsIndex) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __len__(self) -> int: ...

class _TensorInfo(TypedDict):
    name: str
    dtype: str
    shape: tuple[int, ...]
    bytes: int

def open(path: _Path, *, cache_bytes: int = 67108864, trust_owner: _Owners = None) -> Table: ...
def info(path: _Path, *, trust_owner: _Owners = None) -> dict[str, Any]: ...
def get(path: _Path, ids: _Ids, *, trust_owner: _Owners = None) -> _Rows: ...
def verify(path: _Path, *, threads: int = 0, trust_owner: _Owners = None) -> dict[str, Any]: ...
@overload
def generate(
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    path: None = None,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    threads: int = 0,
    fsync: bool = True,
    dtype: Literal["float32"] = "float32",
    shard_rows: None = None,
) -> _Rows: ...
@overload
def generate(
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    path: None = None,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    threads: int = 0,
    fsync: bool = True,
    dtype: _Dtype,
    shard_rows: None = None,
) -> Any: ...
@overload
def generate(
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    path: _Path,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    threads: int = 0,
    fsync: bool = True,
    dtype: _Dtype = "float32",
    shard_rows: None = None,
) -> None: ...
@overload
def generate(
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    path: _Path,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    threads: int = 0,
    fsync: bool = True,
    dtype: _Dtype = "float32",
    shard_rows: int,
) -> str: ...

class _ShardEntry(TypedDict):
    path: str
    first_row: int
    rows: int
    checksum: str

def generate_shard(
    folder: _Path,
    index: int,
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    shard_rows: int,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    threads: int = 0,
    fsync: bool = True,
    dtype: _Dtype = "float32",
) -> _ShardEntry: ...
def write_generated_manifest(
    folder: _Path,
    entries: Sequence[_ShardEntry],
    rows: int,
    dim: int,
    seed: int = 0,
    *,
    shard_rows: int,
    init: Literal["normal", "uniform"] = "normal",
    mean: float | None = None,
    std: float | None = None,
    low: float | None = None,
    high: float | None = None,
    torch_kernel: Literal["avx2", "scalar"] = "avx2",
    fsync: bool = True,
    dtype: _Dtype = "float32",
) -> str: ...
def append(manifest: _Path, table: _Path, *, fsync: bool = True) -> _ShardEntry: ...
def shard_op(
    manifest: _Path,
    index: int,
    out_dir: _Path,
    op: Literal["compress", "decompress", "convert"],
    *,
    level: int = 3,
    dtype: _Dtype | None = None,
    threads: int = 0,
    fsync: bool = True,
) -> _ShardEntry: ...
def write_shard_op_manifest(
    manifest: _Path,
    out_dir: _Path,
    op: Literal["compress", "decompress", "convert"],
    entries: Sequence[_ShardEntry],
    *,
    dtype: _Dtype | None = None,
    fsync: bool = True,
) -> str: ...
def compress(
    src: _Path,
    dst: _Path,
    *,
    level: int = 3,
    threads: int = 0,
    frame_rows: int = 0,
    force: bool = False,
    fsync: bool = True,
    trust_owner: _Owners = None,
) -> None: ...
def decompress(src: _Path, dst: _Path, *, threads: int = 0, force: bool = False, fsync: bool = True) -> None: ...
def import_table(
    src: _Path,
    dst: _Path,
    *,
    tensor: str = "",
    format: Literal[
        "auto", "npy", "safetensors", "raw", "word2vec", "word2vec-binary", "fasttext", "glove"
    ] = "auto",
    rows: int = 0,
    dim: int = 0,
    force: bool = False,
    fsync: bool = True,
    dtype: _Dtype | None = None,
) -> None: ...
def list_tensors(src: _Path) -> list[_TensorInfo]: ...
def export_table(
    table: _Path | Table,
    dst: _Path,
    *,
    tensor_name: str = "weight",
    force: bool = False,
    fsync: bool = True,
    trust_owner: _Owners = None,
    dtype: _Dtype | None = None,
    format: Literal["auto", "npy", "safetensors", "word2vec"] = "auto",
    binary: bool = False,
) -> None: ...
def attach_keys(
    table: _Path | Table,
    vocab: _Path,
    dst: _Path,
    *,
    vocab_format: Literal["auto", "tokenizer.json", "vocab.json", "lines"] = "auto",
    force: bool = False,
    fsync: bool = True,
    trust_owner: _Owners = None,
) -> None: ...
def convert(
    table: _Path | Table,
    dst: _Path,
    *,
    dtype: _Dtype,
    force: bool = False,
    fsync: bool = True,
    trust_owner: _Owners = None,
) -> None: ...
def share(
    src: _Path,
    name: str,
    *,
    force: bool = False,
    mode: int = 0o600,
    threads: int = 0,
    trust_owner: _Owners = None,
) -> None: ...
def unshare(name: str) -> None: ...
def shared() -> list[dict[str, Any]]: ...
