"""A small program typed throughout: mypy --strict passes on it with the
module's stubs (embstore/__init__.pyi, py.typed), and it runs.

    typed_example.py DIR
"""

import os
import sys

import numpy as np
import numpy.typing as npt

import embstore


def first_rows(path: str, ids: list[int]) -> npt.NDArray[np.float32]:
    with embstore.open(path) as table:
        rows, dim = table.shape
        assert all(0 <= i < rows for i in ids)
        out: npt.NDArray[np.float32] = table.gather(ids)
        assert out.shape == (len(ids), dim)
        return out


def main(folder: str) -> None:
    path = os.path.join(folder, "typed.emb")
    embstore.generate(6, 4, 123, path=path)
    in_memory: npt.NDArray[np.float32] = embstore.generate(6, 4, 123)
    rows = first_rows(path, [3, 1])
    assert np.array_equal(rows, in_memory[[3, 1]])
    report = embstore.verify(path)
    assert report["ok"] is True
    try:
        embstore.get(path, [6])
    except embstore.OutOfRangeError as e:  # also an IndexError
        print("out of range:", e)
    print(embstore.__version__, rows[0].tolist())


if __name__ == "__main__":
    main(sys.argv[1])
