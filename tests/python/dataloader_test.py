#!/usr/bin/python3
"""An embstore table in a torch.utils.data.DataLoader with worker processes
is shared, not copied. Run by ctest as
    dataloader_test.py EMBSTORE MODULE_DIR [--sanitized]

A 268 MB table (16384 x 4096; 67 MB, 4096 x 4096, in a sanitizer build,
--sanitized, where every worker's lookups run under the sanitizers). Four DataLoader workers each look up every
row through nn.Embedding.from_pretrained(torch.from_numpy(t.array)), then
wait at a barrier so that all of them hold the pages at once, and report
their PSS (/proc/self/smaps_rollup) and the PSS of the table's mapping
(/proc/self/smaps). Checked:

- workers started by fork (DataLoader's default on Linux) and by spawn (the
  Table pickled, reopened by path in each worker), and workers reading a
  shared-memory table ('shm:NAME'): the table's mappings sum to one table
  (0.9x to 1.1x) across all four workers;
- the same workers, each with a private copy (numpy.array(t.array)): the
  table's memory (its mappings plus the copies' own, by PSS) sums to at
  least 4.5 tables, one per worker and the page cache's. The PSS of whole
  processes is printed too; it is too noisy here (PyTorch's allocators) to
  assert on.
- every worker's lookups are the table's rows (SHA-256 of all of them).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

EMB, MODULE_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

import embstore  # noqa: E402
from checks import check, run  # noqa: E402
from procmem import mapping_pss_bytes, pss_bytes  # noqa: E402

warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
warnings.filterwarnings("ignore", message="This DataLoader will create")

WORKERS = 4
ROWS, DIM = (4096 if "--sanitized" in sys.argv[3:] else 16384), 4096


class EveryRow(Dataset):
    """Item k: worker k looks up every row, waits for the others, measures."""

    def __init__(self, table, mapped_path, barrier, private):
        self.table, self.mapped_path, self.barrier, self.private = table, mapped_path, barrier, private

    def __len__(self):
        return WORKERS

    def __getitem__(self, k):
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        weights = np.array(self.table.array) if self.private else self.table.array
        emb = torch.nn.Embedding.from_pretrained(torch.from_numpy(weights), freeze=True)
        digest = hashlib.sha256()
        with torch.no_grad():
            for i in range(0, ROWS, 1024):
                digest.update(emb(torch.arange(i, min(i + 1024, ROWS))).numpy().tobytes())
        self.barrier.wait(timeout=300)  # all four hold every page now
        copy = (weights.ctypes.data, weights.ctypes.data + weights.nbytes) if self.private else None
        measured = (os.getpid(), pss_bytes(), mapping_pss_bytes(self.mapped_path, also=copy), digest.hexdigest())
        self.barrier.wait(timeout=300)  # nobody leaves before all have measured
        return measured


def run_pool(spec, mapped_path, context, private=False):
    ctx = mp.get_context(context)
    barrier = ctx.Barrier(WORKERS)
    t = embstore.open(spec)
    loader = DataLoader(EveryRow(t, mapped_path, barrier, private), batch_size=None, num_workers=WORKERS,
                        multiprocessing_context=ctx)
    results = list(loader)
    pids = {r[0] for r in results}
    if len(pids) != WORKERS or os.getpid() in pids:
        raise RuntimeError(f"expected {WORKERS} worker processes, got {pids}")
    want = hashlib.sha256(t.array.tobytes()).hexdigest()
    same = all(r[3] == want for r in results)
    t.close()
    return sum(r[1] for r in results), sum(r[2] for r in results), same


def workers_share_one_copy():
    d = tempfile.mkdtemp(prefix="embstore-dataloader-")
    name = f"dataloader-test-{os.getpid()}"
    try:
        path = os.path.join(d, "big.emb")
        embstore.generate(ROWS, DIM, 5, path=path, fsync=False)
        size = os.path.getsize(path)

        shared = {}
        for context in ("fork", "spawn"):
            pss, mapped, same = run_pool(path, path, context)
            shared[context] = pss
            check(f"{context}: every worker read the right rows", same)
            # Each worker read every row through its mapping: together they
            # hold the table once (not 0: that would mean they read a copy).
            check(f"{context}: 4 DataLoader workers share one copy of the file",
                  0.9 * size <= mapped <= 1.1 * size, f"the table's mappings sum to {mapped / size:.3f}x the table")
            print(f"{context}: PSS sum {pss / 1e6:.0f} MB; table mappings {mapped / 1e6:.1f} MB = "
                  f"{mapped / size:.3f}x the {size / 1e6:.0f} MB table", flush=True)

        shm = os.environ.get("EMBSTORE_SHM_DIR", "/dev/shm")
        st = os.statvfs(shm) if os.path.isdir(shm) else None
        if st is None or st.f_bavail * st.f_frsize < 2 * size:
            os.environ["EMBSTORE_SHM_DIR"] = os.path.join(d, "shm")
            os.mkdir(os.environ["EMBSTORE_SHM_DIR"])
            print(f"note: {shm} has no room; shared tables go to {os.environ['EMBSTORE_SHM_DIR']}", flush=True)
        embstore.share(path, name)
        try:
            seg = os.path.join(os.environ.get("EMBSTORE_SHM_DIR", "/dev/shm"), "embstore-" + name)
            pss, mapped, same = run_pool("shm:" + name, seg, "fork")
            check("shm: every worker read the right rows", same)
            check("shm: 4 DataLoader workers share one copy of the shared table",
                  0.9 * size <= mapped <= 1.1 * size, f"{mapped / size:.3f}x")
            print(f"shm: table mappings {mapped / size:.3f}x", flush=True)
        finally:
            embstore.unshare(name)

        pss, mapped, same = run_pool(path, path, "fork", private=True)
        check("private copies: every worker read the right rows", same)
        check("private copies cost one table per worker", mapped >= (WORKERS + 0.5) * size,
              f"the table's memory sums to {mapped / size:.2f}x the table")
        print(f"private copies: PSS sum {pss / 1e6:.0f} MB; the table's memory {mapped / size:.3f}x the table",
              flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    return run("dataloader_test", [workers_share_one_copy])


if __name__ == "__main__":
    sys.exit(main())
