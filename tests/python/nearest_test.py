#!/usr/bin/python3
"""Exact nearest neighbours (store/search/nearest.h), run by ctest as
    nearest_test.py EMBSTORE [--sanitized] MODULE_DIR
Two oracles, both computed here from the rows as stored (float16 and
bfloat16 rounded by NumPy, not read back from embstore):
  * a float64 reference of the formulas in nearest.h (dot, cosine, squared
    L2): every id returned is the true top k, any id that differs from the
    reference's explained by a tie within twice the stated error bound, and
    every score within that bound;
  * the canonical float32 sum nearest.h defines (16 lanes of fused
    multiply-adds, then pairwise), emulated in NumPy bit for bit: the ids
    and the score bits must be exactly those.
Then ties, zero, NaN and infinite rows, k = 1 and k = rows, one row, one
column; .embz, shm:, threads and EMBSTORE_ISA give the same bits; exclude
and restrict; most_similar against gensim 4.2 itself (float32 and bfloat16);
the GIL is released during a search; bad arguments raise the right
exception. The command: text, --json and -o OUT.npy against Table.nearest,
--key, --exclude-self, --queries .npy files, and bad input (exit code,
message, nothing written, no temporary left).
A sanitizer build (--sanitized) leaves out the instruction sets (the C++
NearestTest compares them under the sanitizers), gensim and the GIL: the
Python-level logic they check runs the same C++ as the rest.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

SANITIZED = "--sanitized" in sys.argv
EMB, MODULE_DIR = [a for a in sys.argv[1:] if a != "--sanitized"][:2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402

try:
    from gensim.models import KeyedVectors  # noqa: E402
except ImportError:
    print("nearest_test: gensim is not installed (Debian: python3-gensim); skipped")
    sys.exit(77)

import embstore  # noqa: E402
from checks import check, raises, run  # noqa: E402

warnings.filterwarnings("ignore", category=RuntimeWarning)

TMP = tempfile.mkdtemp(prefix="embstore-nearest-")
METRICS = ("cosine", "dot", "l2")
DTYPES = ("float32", "float16", "bfloat16")


def cli(*args, ok=True, env=None, timeout=60):
    r = subprocess.run([EMB, *map(str, args)], capture_output=True, env=env, timeout=timeout)
    if ok and r.returncode != 0:
        raise RuntimeError(f"embstore {args}: {r.stderr.decode()}")
    return r


def path(name):
    return os.path.join(TMP, name)


def u32(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def same_scores(a, b):
    """Equal float32 bits, NaN matching any NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return np.array_equal(nan, np.isnan(b)) and np.array_equal(u32(a)[~nan], u32(b)[~nan])



# ---------------------------------------------------------------------------
# Tables from NumPy arrays, and the values they store.

def bf16(x):
    """float32 -> the bfloat16 value, as float32: round to nearest, ties to even (PyTorch's .to)."""
    x = np.asarray(x, np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    r = (((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), r).astype(np.float32)


def stored_values(x, dtype):
    x = np.asarray(x, np.float32)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return bf16(x)
    return x.copy()


def make_table(name, x, dtype="float32"):
    """A table NAME.emb of x rounded to dtype; returns its path and its rows as stored (widened to float32)."""
    src = path(name + ".npy")
    np.save(src, np.asarray(x, np.float32))
    dst = path(name + ".emb")
    embstore.import_table(src, dst, dtype=dtype, force=True, fsync=False)
    return dst, stored_values(x, dtype)


def sanity(what, t, rows, dtype):
    check(f"{what}: the table holds the rows the test computes (dtype {dtype})",
          t.dtype == dtype and t.shape == rows.shape and same_scores(t.gather(np.arange(len(rows))), rows),
          (t.dtype, t.shape))


# ---------------------------------------------------------------------------
# Oracle 1: float64 reference of nearest.h's formulas, and its error bound.

def bound_e(dim):
    return (math.ceil(dim / 16) + 4) * 2.0**-24


def reference(q, rows, metric):
    """(scores, tol): float64 (n, R) scores by nearest.h's formulas, and the stated error bound of each."""
    q = np.atleast_2d(np.asarray(q, np.float64))
    r = np.asarray(rows, np.float64)
    e = bound_e(r.shape[1])
    good = np.isfinite(r).all(1)
    with np.errstate(all="ignore"):
        rc = np.where(good[:, None], r, 0.0)
        dot = q @ rc.T
        absdot = np.abs(q) @ np.abs(rc).T
        if not good.all():  # rows with NaN or inf: elementwise, IEEE semantics (0 * inf = NaN)
            bad = np.flatnonzero(~good)
            prod = q[:, None, :] * r[None, bad, :]
            dot[:, bad] = prod.sum(-1)
            absdot[:, bad] = np.abs(prod).sum(-1)
        nq = (q * q).sum(1)[:, None]
        nr = (r * r).sum(1)[None, :]
        if metric == "dot":
            return dot, e * absdot
        if metric == "cosine":
            cos = np.where(nr == 0, 0.0, dot / np.sqrt(nq * nr))
            return cos, np.full(cos.shape, 2 * e + 2.0**-23)
        l2 = np.maximum(0.0, nq + nr - 2 * dot)
        return l2, 2 * e * (nq + nr) + 2.0**-24 * np.abs(l2)


def allowed_mask(n, rows, exclude=None, restrict=0):
    ok = np.ones((n, rows), bool)
    if restrict:
        ok[:, restrict:] = False
    if exclude is not None and len(exclude) > 0:
        nested = not np.isscalar(exclude[0])
        for qi in range(n):
            ids = exclude[qi] if nested else exclude
            ok[qi, list(ids)] = False
    return ok


def order_of(scores, metric, ok):
    """Ids of each query by nearest.h's order: closest first, ties by lower id, NaN last (by id)."""
    out = []
    for qi in range(scores.shape[0]):
        ids = np.flatnonzero(ok[qi])
        s = scores[qi, ids].astype(np.float64)
        nan = np.isnan(s)
        closeness = np.where(nan, 0.0, -s if metric != "l2" else s)  # ascending: closest first
        out.append(ids[np.lexsort((ids, closeness, nan))])
    return out


def check_topk(what, ids, scores, q, rows, metric, k, exclude=None, restrict=0):
    """ids/scores against the float64 reference: shapes, distinct allowed ids, scores within the bound, and
    at each rank the id's reference score within 2x the bound of the reference's score at that rank (a tie);
    NaN scores exactly where the reference has them, in id order. Also the result's own order."""
    q = np.atleast_2d(q)
    n, nrows = q.shape[0], rows.shape[0]
    if ids.shape != (n, k) or scores.shape != (n, k) or ids.dtype != np.int64 or scores.dtype != np.float32:
        check(f"{what}: shapes and types", False, (ids.shape, ids.dtype, scores.shape, scores.dtype, (n, k)))
        return
    ref, tol = reference(q, rows, metric)
    ok = allowed_mask(n, nrows, exclude, restrict)
    want = order_of(ref, metric, ok)
    problems, differ = [], 0
    for qi in range(n):
        ours = ids[qi]
        if len(set(ours.tolist())) != k:
            problems.append((qi, "repeated ids", ours.tolist()))
            continue
        if ours.min() < 0 or ours.max() >= nrows or not ok[qi, ours].all():
            problems.append((qi, "an id not allowed (excluded, restricted or out of range)", ours.tolist()))
            continue
        r_ours, t_ours = ref[qi, ours], tol[qi, ours]
        s = scores[qi].astype(np.float64)
        both_nan = np.isnan(s) & np.isnan(r_ours)
        with np.errstate(invalid="ignore"):
            close = both_nan | (s == r_ours) | (np.abs(s - r_ours) <= t_ours)
        if not close.all():
            i = int(np.argmin(close))
            problems.append((qi, f"rank {i}: id {ours[i]} scores {s[i]!r}, reference {r_ours[i]!r} "
                                 f"(bound {t_ours[i]:.3g})"))
        ref_ids = want[qi][:k]
        for i in range(k):
            if ours[i] == ref_ids[i]:
                continue
            differ += 1
            a, b = r_ours[i], ref[qi, ref_ids[i]]
            slack = 2 * max(t_ours[i], tol[qi, ref_ids[i]])
            if np.isnan(a) or np.isnan(b) or not (a == b or abs(a - b) <= slack):
                problems.append((qi, f"rank {i}: id {ours[i]} (reference score {a!r}) where the reference has id "
                                     f"{ref_ids[i]} ({b!r}); not a tie within {slack:.3g}"))
                break
        # The result's own order: closest first, equal scores by id, NaN last by id.
        closeness = s if metric != "l2" else -s
        for i in range(k - 1):
            x, y = closeness[i], closeness[i + 1]
            if np.isnan(x):
                bad = not np.isnan(y) or ours[i] > ours[i + 1]
            else:
                bad = (not np.isnan(y)) and (x < y or (x == y and ours[i] > ours[i + 1]))
            if bad:
                problems.append((qi, f"ranks {i}, {i + 1} out of order: ({ours[i]}, {s[i]!r}), "
                                     f"({ours[i + 1]}, {s[i + 1]!r})"))
                break
    check(f"{what}: the true top {k} (ties within 2x the bound), scores within the bound", not problems,
          problems[:3])
    return differ


# ---------------------------------------------------------------------------
# Oracle 2: the canonical float32 sum, emulated bit for bit.

def fma32(a, b, c):
    """float32 a * b + c rounded once. The product is exact in float64; the sum is rounded to float64 and
    its error kept (TwoSum), so that a float64 result on a float32 midpoint rounds the right way."""
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    bb = s - p
    e = (p - (s - bb)) + (c64 - bb)
    f = s.astype(np.float32)
    toward = np.where(s > f, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
    g = np.nextafter(f, toward)
    mid = np.isfinite(s) & (f != s) & (f.astype(np.float64) + g.astype(np.float64) == 2 * s) & (e != 0)
    if mid.any():
        f = np.where(mid, np.where(e > 0, np.maximum(f, g), np.minimum(f, g)), f)
    return f


def canonical_sums(q, rows):
    """dot (n, R), nq (n,), nr (R,) in float32, by the canonical order of nearest.h."""
    q = np.atleast_2d(np.asarray(q, np.float32))
    rows = np.asarray(rows, np.float32)
    pad = (-q.shape[1]) % 16
    qp, rp = np.pad(q, ((0, 0), (0, pad))), np.pad(rows, ((0, 0), (0, pad)))
    acc = np.zeros((q.shape[0], rows.shape[0], 16), np.float32)
    accq, accr = np.zeros((q.shape[0], 16), np.float32), np.zeros((rows.shape[0], 16), np.float32)
    with np.errstate(all="ignore"):
        for i in range(0, qp.shape[1], 16):
            qc, rc = qp[:, i:i + 16], rp[:, i:i + 16]
            acc = fma32(qc[:, None, :], rc[None, :, :], acc)
            accq = fma32(qc, qc, accq)
            accr = fma32(rc, rc, accr)

        def reduce(a):
            s8 = a[..., :8] + a[..., 8:]
            s4 = s8[..., :4] + s8[..., 4:]
            return (s4[..., 0] + s4[..., 2]) + (s4[..., 1] + s4[..., 3])

        return reduce(acc), reduce(accq), reduce(accr)


def canonical_scores(sums, metric):
    dot, nq, nr = sums
    with np.errstate(all="ignore"):
        if metric == "dot":
            return dot
        d, qn, rn = dot.astype(np.float64), nq.astype(np.float64)[:, None], nr.astype(np.float64)[None, :]
        if metric == "cosine":
            return np.where(nr[None, :] == 0, np.float32(0), (d / np.sqrt(qn * rn)).astype(np.float32))
        x = (qn + rn) - 2.0 * d
        return np.where(x < 0, 0.0, x).astype(np.float32)


def check_canonical(what, ids, scores, canon, metric, k, exclude=None, restrict=0):
    """Exactly the ids of the canonical scores' order, and their bits."""
    ok = allowed_mask(canon.shape[0], canon.shape[1], exclude, restrict)
    want = np.array([o[:k] for o in order_of(canon, metric, ok)])
    if ids.shape != want.shape or scores.shape != want.shape:
        check(f"{what}: shapes", False, (ids.shape, scores.shape, want.shape))
        return
    got = np.take_along_axis(canon, want, 1)
    bad = np.argwhere(ids != want)
    check(f"{what}: exactly the ids of the canonical float32 sums' order", bad.size == 0,
          [(int(a), int(b), int(ids[a, b]), int(want[a, b])) for a, b in bad[:3]])
    check(f"{what}: exactly the canonical float32 score bits", same_scores(scores, got),
          np.argwhere(~((u32(scores) == u32(got)) | (np.isnan(scores) & np.isnan(got))))[:3].tolist())


def queries_for(rows, n, rng):
    """n float32 queries: rows of the table, rows nudged, and random vectors."""
    dim = rows.shape[1]
    pick = rng.choice(len(rows), n, replace=len(rows) < n)
    q = rows[pick].astype(np.float32).copy()
    third = n // 3
    q[third:2 * third] += (0.05 * rng.standard_normal((2 * third - third, dim))).astype(np.float32)
    q[2 * third:] = rng.standard_normal((n - 2 * third, dim)).astype(np.float32)
    q[np.abs(q).sum(1) == 0, 0] = 1  # never an all-zero query (cosine refuses it)
    return q


# ---------------------------------------------------------------------------
# Scores and ids, every metric and type.

SHAPES = [(2000, 64), (1000, 37), (400, 15), (400, 17), (300, 1), (300, 300), (160, 770)]


def accuracy():
    rng = np.random.default_rng(1)
    for nrows, dim in SHAPES:
        x = rng.standard_normal((nrows, dim)).astype(np.float32) * np.float32(rng.uniform(0.1, 3))
        batch = 66 if dim <= 64 else 5  # more than one batch of 64 queries where it is cheap
        for dtype in DTYPES:
            name = f"acc-{nrows}x{dim}-{dtype}"
            p, rows = make_table(name, x, dtype)
            q = queries_for(rows, batch, rng)
            sums = canonical_sums(q, rows)
            with embstore.open(p) as t:
                sanity(name, t, rows, dtype)
                for metric in METRICS:
                    what = f"{name} {metric}"
                    canon = canonical_scores(sums, metric)
                    ids, sc = t.nearest(q, k=10, metric=metric)
                    check_topk(f"{what}, a batch of {batch}, k 10", ids, sc, q, rows, metric, 10)
                    check_canonical(f"{what}, a batch of {batch}, k 10", ids, sc, canon, metric, 10)
                    ids1, sc1 = t.nearest(q[1], k=10, metric=metric)
                    check_topk(f"{what}, a single query (1-D), k 10", ids1, sc1, q[1], rows, metric, 10)
                    check("{}: a single query gives the bits it gets in a batch".format(what),
                          same_bits(ids1[0], ids[1]) and same_scores(sc1[0], sc[1]))
                    ids1, sc1 = t.nearest(q[2:3], k=1, metric=metric)
                    check_topk(f"{what}, k 1", ids1, sc1, q[2:3], rows, metric, 1)
                    check_canonical(f"{what}, k 1", ids1, sc1, canon[2:3], metric, 1)
                    if nrows <= 400:
                        ids1, sc1 = t.nearest(q[:3], k=nrows, metric=metric)
                        check_topk(f"{what}, k = rows", ids1, sc1, q[:3], rows, metric, nrows)
                        check_canonical(f"{what}, k = rows", ids1, sc1, canon[:3], metric, nrows)
                        check(f"{what}, k = rows: every row once",
                              all(sorted(r.tolist()) == list(range(nrows)) for r in ids1))
                # The query equal to a row: L2 exactly 0, and that row first.
                # (A half table of one column holds repeats: the first copy, by id, is first.)
                at = [0, nrows // 2, nrows - 1]
                first = [int(np.flatnonzero((u32(rows) == u32(rows[a])).all(1))[0]) for a in at]
                ids1, sc1 = t.nearest(rows[at], k=3, metric="l2")
                check(f"{name}: a query equal to a row: that row (its first copy) first, at L2 exactly 0.0",
                      ids1[:, 0].tolist() == first and u32(sc1[:, 0]).tolist() == [0, 0, 0], (ids1[:, 0], sc1[:, :2]))
                if dim > 1:
                    ids1, sc1 = t.nearest(rows[at], k=1, metric="cosine")
                    check(f"{name}: a query equal to a row: that row first under cosine, about 1",
                          ids1[:, 0].tolist() == first and
                          np.all(np.abs(sc1[:, 0] - 1) <= 2 * bound_e(dim) + 2.0**-23), (ids1[:, 0], sc1[:, 0]))


# ---------------------------------------------------------------------------
# Exact ties, zero rows, NaN and infinite rows, tiny tables.

def ties_and_specials():
    rng = np.random.default_rng(2)
    # Duplicated rows: the same bits give the same score, so exact ties, the lower id first.
    x = rng.standard_normal((4000, 24)).astype(np.float32)
    v = rng.standard_normal(24).astype(np.float32)
    copies = np.sort(rng.choice(4000, 40, replace=False))
    x[copies] = v
    for dtype in DTYPES:
        p, rows = make_table(f"dup-{dtype}", x, dtype)
        with embstore.open(p) as t:
            for metric in METRICS:
                ids, sc = t.nearest(rows[copies[17]], k=25, metric=metric)
                check(f"duplicated rows ({dtype}, {metric}): the 25 lowest ids of the 40 copies, in order",
                      ids[0].tolist() == copies[:25].tolist(), (ids[0], copies[:25]))
                check(f"duplicated rows ({dtype}, {metric}): one score, bit for bit",
                      len(set(u32(sc[0]).tolist())) == 1, sc[0])
                if metric == "l2":
                    check(f"duplicated rows ({dtype}): L2 exactly 0", u32(sc[0]).tolist() == [0] * 25, sc[0])
                check_topk(f"duplicated rows ({dtype}, {metric}) k 25", ids, sc, rows[copies[17]], rows, metric, 25)
            # Excluding the first copies moves the cut along the same ties.
            ids, _ = t.nearest(rows[copies[0]], k=10, metric="l2", exclude=copies[:5].tolist())
            check(f"duplicated rows ({dtype}): with the 5 lowest excluded, the next 10 copies",
                  ids[0].tolist() == copies[5:15].tolist(), ids[0])

    # Small integers: the float32 sums are exact, so many distinct rows tie
    # exactly, and the float64 reference is the exact answer: the ids and
    # scores must equal it exactly, all k = rows of them.
    xi = rng.integers(-1, 2, (1500, 8)).astype(np.float32)
    xi[[3, 700, 1499]] = 0  # zero rows: cosine 0, tied with the orthogonal rows
    qi = rng.integers(-2, 3, (6, 8)).astype(np.float32)
    qi[np.abs(qi).sum(1) == 0, 0] = 1
    for dtype in DTYPES:  # small integers are exact in every type
        p, rows = make_table(f"int-{dtype}", xi, dtype)
        with embstore.open(p) as t:
            for metric in METRICS:
                ref, _ = reference(qi, rows, metric)
                want = np.array(order_of(ref, metric, np.ones(ref.shape, bool)))
                ids, sc = t.nearest(qi, k=len(rows), metric=metric)
                check(f"integer rows ({dtype}, {metric}): every tie by the lower id, all 1500 ranks exactly",
                      np.array_equal(ids, want), np.argwhere(ids != want)[:3].tolist())
                check(f"integer rows ({dtype}, {metric}): the exact scores, bit for bit",
                      same_scores(sc, np.take_along_axis(ref, want, 1).astype(np.float32)))
            ids, sc = t.nearest(qi, k=len(rows), metric="cosine")
            zero_at = [sc[j][np.isin(ids[j], [3, 700, 1499])] for j in range(len(qi))]
            check(f"integer rows ({dtype}): a row of zeros scores 0 under cosine (not NaN)",
                  all(u32(z).tolist() == [0, 0, 0] for z in zero_at), zero_at)

    # NaN and infinite rows. A row holding NaN scores NaN under every metric.
    # A row holding an infinity, under cosine: NaN (inf / inf, or NaN / inf).
    # Under dot: +inf, -inf or NaN as the sum gives (inf - inf; 0 * inf where
    # the query is 0). Under L2, nearest.h says NaN (inf - inf), but that is
    # only so when the dot is +inf or NaN: row 60 below (-inf where the query
    # is positive, so dot = -inf) scores nq + inf + inf = +inf, which ranks it
    # after every finite distance but before the NaNs. NaN scores come after
    # every number, by id.
    x = rng.standard_normal((300, 20)).astype(np.float32)
    x[3] = np.nan
    x[10, 5] = np.nan
    x[50, 0] = np.inf
    x[60, 0] = -np.inf
    x[70] = 0
    x[80, 0], x[80, 1] = np.inf, -np.inf
    x[90] = np.inf
    nan_rows = [3, 10, 50, 60, 80, 90]
    qpos = (np.abs(rng.standard_normal((2, 20))) + 0.1).astype(np.float32)  # all positive
    qzero0 = qpos.copy()
    qzero0[:, 0] = 0  # 0 * inf
    for dtype in DTYPES:
        p, rows = make_table(f"nan-{dtype}", x, dtype)
        with embstore.open(p) as t:
            sums = canonical_sums(np.vstack([qpos, qzero0]), rows)
            for metric in METRICS:
                ids, sc = t.nearest(qpos, k=300, metric=metric)
                check_topk(f"NaN/inf rows ({dtype}, {metric}), k = rows", ids, sc, qpos, rows, metric, 300)
                check_canonical(f"NaN/inf rows ({dtype}, {metric}), k = rows", ids, sc,
                                canonical_scores(sums, metric)[:2], metric, 300)
                if metric == "cosine":
                    check(f"NaN/inf rows ({dtype}, cosine): the rows with NaN or inf last, by id, scoring NaN",
                          all(r[-6:].tolist() == nan_rows for r in ids) and np.isnan(sc[:, -6:]).all() and
                          not np.isnan(sc[:, :-6]).any(), (ids[:, -7:], sc[:, -7:]))
                elif metric == "l2":
                    check(f"NaN/inf rows ({dtype}, l2): rows 3, 10, 50, 80, 90 last, by id, scoring NaN",
                          all(r[-5:].tolist() == [3, 10, 50, 80, 90] for r in ids) and np.isnan(sc[:, -5:]).all() and
                          not np.isnan(sc[:, :-5]).any(), (ids[:, -7:], sc[:, -7:]))
                    # Row 60 ([-inf, ...] against a positive query): nq + inf - 2 * -inf = +inf, the
                    # farthest number (nearest.h), after the finite distances and before the NaNs.
                    check(f"NaN/inf rows ({dtype}, l2): row 60 (holding -inf) scores +inf, the last number",
                          all(r[-6] == 60 for r in ids) and np.all(sc[:, -6] == np.inf) and
                          np.isfinite(sc[:, :-6]).all(), (ids[:, -6], sc[:, -6]))
                else:
                    # +inf first (row 50, then row 90 of all inf: a tie at +inf, by id); -inf (row 60) the
                    # last number; then NaN: 3 and 10 (NaN), 80 (inf - inf).
                    check(f"NaN/inf rows ({dtype}, dot): rows 50 and 90 first at +inf, row 60 last of the "
                          f"numbers at -inf, then 3, 10, 80 at NaN",
                          all(r[:2].tolist() == [50, 90] and r[-4] == 60 and r[-3:].tolist() == [3, 10, 80]
                              for r in ids) and np.all(sc[:, :2] == np.inf) and np.all(sc[:, -4] == -np.inf) and
                          np.isnan(sc[:, -3:]).all() and not np.isnan(sc[:, :-3]).any(),
                          (ids[:, :2], ids[:, -6:], sc[:, -6:]))
                    ids0, sc0 = t.nearest(qzero0, k=300, metric="dot")
                    check_topk(f"NaN/inf rows ({dtype}, dot), a query with 0 where rows hold inf", ids0, sc0, qzero0,
                               rows, "dot", 300)
                    check(f"NaN/inf rows ({dtype}, dot): 0 * inf is NaN, so all six last by id",
                          all(r[-6:].tolist() == nan_rows for r in ids0) and np.isnan(sc0[:, -6:]).all())
                # The zero row: 0 under cosine and dot; under L2 the query's own squared norm, exactly.
                at70 = [sc[j, int(np.flatnonzero(ids[j] == 70)[0])] for j in range(2)]
                want70 = [np.float32(0)] * 2 if metric != "l2" else [sums[1][0], sums[1][1]]
                check(f"NaN/inf rows ({dtype}, {metric}): the zero row scores exactly "
                      f"{'0' if metric != 'l2' else 'the query norm nq'}", same_bits(np.array(at70), np.array(want70)),
                      (at70, want70))
                # k that cuts the NaN group: the lowest NaN ids kept.
                ids, sc = t.nearest(qpos, k=299, metric=metric)
                last_nan = 80 if metric == "dot" else 90
                check(f"NaN/inf rows ({dtype}, {metric}), k = 299: all but the NaN row of highest id ({last_nan})",
                      all(set(range(300)) - set(r.tolist()) == {last_nan} for r in ids) and np.isnan(sc[:, -1]).all(),
                      ids[:, -4:])
                if metric == "cosine":
                    ids, sc = t.nearest(qpos, k=297, metric=metric)
                    check(f"NaN/inf rows ({dtype}, cosine), k = 297: the 3 NaN rows of lowest id",
                          all(r[-3:].tolist() == [3, 10, 50] for r in ids) and np.isnan(sc[:, -3:]).all(), ids[:, -4:])
                ids, sc = t.nearest(qpos, k=5, metric=metric)
                check(f"NaN/inf rows ({dtype}, {metric}), k 5: no NaN score", not np.isnan(sc).any())

    # Mostly NaN: the heap full of NaNs must still take the numbers.
    x = np.full((100, 5), np.nan, np.float32)
    num = [7, 33, 64, 98]
    x[num] = rng.standard_normal((4, 5)).astype(np.float32)
    p, rows = make_table("mostly-nan", x)
    cli("compress", p, "-o", path("mostly-nan.embz"), "--frame-rows", 8, "-q")
    for src in (p, path("mostly-nan.embz")):
        with embstore.open(src) as t:
            for metric in METRICS:
                ids, sc = t.nearest(np.ones(5, np.float32), k=10, metric=metric, threads=2)
                check(f"{os.path.basename(src)} ({metric}): the 4 numbers first, then the 6 lowest NaN ids",
                      sorted(ids[0, :4].tolist()) == num and ids[0, 4:].tolist() == [0, 1, 2, 3, 4, 5] and
                      not np.isnan(sc[0, :4]).any() and np.isnan(sc[0, 4:]).all(), (ids, sc))
                check_topk(f"{os.path.basename(src)} ({metric})", ids, sc, np.ones(5, np.float32), rows, metric, 10)

    # One row, one column, both.
    for nrows, dim in ((1, 40), (50, 1), (1, 1)):
        x = rng.standard_normal((nrows, dim)).astype(np.float32)
        for dtype in DTYPES:
            p, rows = make_table(f"tiny-{nrows}x{dim}-{dtype}", x, dtype)
            q = rng.standard_normal((3, dim)).astype(np.float32)
            q[q == 0] = 1
            with embstore.open(p) as t:
                for metric in METRICS:
                    ids, sc = t.nearest(q, k=nrows, metric=metric)
                    check_topk(f"a {nrows} x {dim} {dtype} table ({metric}), k = rows", ids, sc, q, rows, metric,
                               nrows)
                    check_canonical(f"a {nrows} x {dim} {dtype} table ({metric}), k = rows", ids, sc,
                                    canonical_scores(canonical_sums(q, rows), metric), metric, nrows)
                raises(f"a {nrows} x {dim} table: k = rows + 1 is refused", lambda: t.nearest(q, k=nrows + 1),
                       embstore.InvalidArgumentError, f"more than the table's {nrows} rows")
    # Dim 1 cosine: every score is about +-1, the ties decided by the float32 bits, then ids.
    p, rows = make_table("dim1-signs", np.array([[2], [-1], [3], [0.5], [-4], [0], [1]], np.float32))
    with embstore.open(p) as t:
        ids, sc = t.nearest(np.array([1.0], np.float32), k=7, metric="cosine")
        check_canonical("dim 1, cosine: the +1 rows, the zero row, the -1 rows", ids, sc,
                        canonical_scores(canonical_sums(np.ones((1, 1), np.float32), rows), "cosine"), "cosine", 7)
        check("dim 1, cosine: positive rows, then the zero row (0), then the negative rows",
              sorted(ids[0, :4].tolist()) == [0, 2, 3, 6] and ids[0, 4] == 5 and sorted(ids[0, 5:].tolist()) == [1, 4]
              and sc[0, 4] == 0, (ids, sc))


# ---------------------------------------------------------------------------
# exclude and restrict.

def exclude_and_restrict():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 33)).astype(np.float32)
    p, rows = make_table("excl", x)
    q = queries_for(rows, 3, rng)
    q[0] = rows[5]
    with embstore.open(p) as t:
        for metric in METRICS:
            flat = [5, 17, 599, 0, 5]  # a repeat counts once
            ids, sc = t.nearest(q, k=20, metric=metric, exclude=flat)
            check_topk(f"exclude a flat list ({metric})", ids, sc, q, rows, metric, 20, exclude=flat)
            check(f"exclude a flat list ({metric}): none of them returned", not np.isin(ids, flat).any())
            per = [[5, 6], [], list(range(0, 600, 2))]
            ids, sc = t.nearest(q, k=20, metric=metric, exclude=per)
            check_topk(f"exclude per query ({metric})", ids, sc, q, rows, metric, 20, exclude=per)
            check(f"exclude per query ({metric}): the third query only odd ids", (ids[2] % 2 == 1).all(), ids[2])
            ids2, sc2 = t.nearest(q, k=20, metric=metric, exclude=np.array([[5, 6], [7, 8], [9, 10]]))
            check_topk(f"exclude as a 2-D NumPy array: per query ({metric})", ids2, sc2, q, rows, metric, 20,
                       exclude=[[5, 6], [7, 8], [9, 10]])
            ids3, sc3 = t.nearest(q, k=20, metric=metric, exclude=np.array([5, 17]))
            check_topk(f"exclude as a 1-D NumPy array: for every query ({metric})", ids3, sc3, q, rows, metric, 20,
                       exclude=[5, 17])
            for restrict in (1, 77, 600, 10**6):
                k = min(10, restrict)
                ids, sc = t.nearest(q, k=k, metric=metric, restrict=restrict)
                check_topk(f"restrict={restrict} ({metric})", ids, sc, q, rows, metric, k,
                           restrict=restrict if restrict < 600 else 0)
            ids, sc = t.nearest(q, k=77, metric=metric, restrict=77)
            check(f"restrict=77, k=77 ({metric}): each of the first 77 rows once",
                  all(sorted(r.tolist()) == list(range(77)) for r in ids))
            ids, sc = t.nearest(q, k=70, metric=metric, restrict=77, exclude=[1, 2, 3, 4, 5, 6, 7, 500])
            check_topk(f"restrict=77 with 7 excluded below it and one beyond, k = 70 ({metric})", ids, sc, q, rows,
                       metric, 70, exclude=[1, 2, 3, 4, 5, 6, 7, 500], restrict=77)
        ids, _ = t.nearest(q, k=598, exclude=[0, 1, 1, 0])
        check("k = rows - the distinct excluded", ids.shape == (3, 598) and not np.isin(ids, [0, 1]).any())
        raises("k = rows - excluded + 1 is refused, saying so", lambda: t.nearest(q, k=599, exclude=[0, 1]),
               embstore.InvalidArgumentError, "k = 599 is more than the table's 600 rows less 2 excluded")
        raises("k over the restricted rows is refused, saying so", lambda: t.nearest(q, k=11, restrict=10),
               embstore.InvalidArgumentError, "k = 11 is more than the first 10 rows searched")
        raises("exclude an id past the table", lambda: t.nearest(q, exclude=[600]), embstore.InvalidArgumentError,
               "cannot exclude id 600 out of range: the table has rows [0, 600)")
        raises("exclude an id past the table, per query", lambda: t.nearest(q, exclude=[[1], [2], [10**9]]),
               embstore.InvalidArgumentError, "cannot exclude id 1000000000 out of range")
        raises("exclude a negative id", lambda: t.nearest(q, exclude=[-1]), embstore.InvalidArgumentError,
               "cannot exclude id -1 out of range")
        raises("an excluded id beyond int64: named, out of range", lambda: t.nearest(q, exclude=[2 ** 63]),
               embstore.InvalidArgumentError, "cannot exclude id 9223372036854775808: out of range")
        raises("one exclude list per query, but 2 lists for 3 queries",
               lambda: t.nearest(q, exclude=[[1], [2]]), embstore.InvalidArgumentError,
               "exclusions name 2 queries, not 3")
        raises("exclude of strings: a TypeError naming exclude", lambda: t.nearest(q, exclude=["a"]), TypeError,
               "exclude: ids are ints, not str")


# ---------------------------------------------------------------------------
# The same bits everywhere: .embz, shm:, threads, instruction sets.

def same_bits_everywhere():
    rng = np.random.default_rng(4)
    for dtype in DTYPES:
        x = rng.standard_normal((1000, 50)).astype(np.float32)
        x[[10, 500]] = np.nan
        x[20, 3] = np.inf
        x[30] = 0
        p, rows = make_table(f"z-{dtype}", x, dtype)
        z = path(f"z-{dtype}.embz")
        embstore.compress(p, z, frame_rows=64, fsync=False)
        q = queries_for(rows[np.isfinite(rows).all(1)], 9, rng)
        name = f"nearest-test-{os.getpid()}-{dtype}"
        embstore.share(p, name, force=True)
        try:
            with embstore.open(p) as t, embstore.open(z) as tz, embstore.open(f"shm:{name}") as ts:
                check(f".embz ({dtype}): opened compressed", tz.compressed)
                for metric in METRICS:
                    for qq, k in ((q, 10), (q[0], 7), (q[:2], 1000)):
                        want = t.nearest(qq, k=k, metric=metric)
                        for other, label in ((tz, ".embz"), (ts, "shm:")):
                            for threads in (0, 1, 3):
                                got = other.nearest(qq, k=k, metric=metric, threads=threads)
                                check(f"{label} ({dtype}, {metric}, k {k}, threads {threads}): the .emb's ids and "
                                      f"scores, bit for bit (NaN too)",
                                      same_bits(got[0], want[0]) and same_bits(got[1], want[1]))
                    ids, sc = tz.nearest(q, k=10, metric=metric)
                    check_topk(f".embz ({dtype}, {metric})", ids, sc, q, rows, metric, 10)
        finally:
            embstore.unshare(name)

    # A table big enough for several threads (4 MiB of rows each), with ties
    # across the threads' halves.
    x = rng.standard_normal((32768, 64)).astype(np.float32)
    copies = [5, 100, 16383, 16384, 20000, 32767]
    x[copies] = x[copies[0]]
    p, rows = make_table("big", x)
    q = queries_for(rows, 12, rng)
    q[0] = rows[5]
    with embstore.open(p) as t:
        for metric in METRICS:
            want = t.nearest(q, k=10, metric=metric, threads=1)
            for threads in (0, 2, 3, 8):
                got = t.nearest(q, k=10, metric=metric, threads=threads)
                check(f"32768 x 64 ({metric}): threads={threads} gives the bits of threads=1",
                      same_bits(got[0], want[0]) and same_bits(got[1], want[1]))
            ids, sc = t.nearest(q, k=10, metric=metric)
            check_topk(f"32768 x 64 ({metric})", ids, sc, q, rows, metric, 10)
            check(f"32768 x 64 ({metric}): the 6 copies, split across the threads, first by id",
                  ids[0, :6].tolist() == copies, ids[0])


ISA_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import embstore
cases = np.load(sys.argv[2], allow_pickle=True)["cases"]
out = {}
for i, (table, qfile, metric, k, single) in enumerate(cases):
    q = np.load(qfile)
    with embstore.open(table) as t:
        ids, sc = t.nearest(q[0] if single else q, k=int(k), metric=metric)
    out[f"ids{i}"], out[f"sc{i}"] = ids, sc
np.savez(sys.argv[3], **out)
"""


def instruction_sets():
    """EMBSTORE_ISA=portable and =avx2: the default's bits (a promise of nearest.h)."""
    rng = np.random.default_rng(5)
    cases = []
    for nrows, dim in ((700, 1), (700, 15), (700, 17), (500, 64), (300, 300), (200, 770)):
        x = rng.standard_normal((nrows, dim)).astype(np.float32)
        x[7] = 0
        if dim > 1:
            x[9, 0] = np.nan
            x[11, dim - 1] = np.inf
        for dtype in DTYPES:
            p, rows = make_table(f"isa-{nrows}x{dim}-{dtype}", x, dtype)
            qf = path(f"isa-{nrows}x{dim}-{dtype}-q.npy")
            np.save(qf, queries_for(rows[np.isfinite(rows).all(1)], 70, rng))
            for metric in METRICS:
                cases.append((p, qf, metric, 10, True))
                cases.append((p, qf, metric, 10, False))
                cases.append((p, qf, metric, nrows, False))
    np.savez(path("isa-cases.npz"), cases=np.array(cases, dtype=object))
    script = path("isa.py")
    with open(script, "w") as f:
        f.write(ISA_SCRIPT)
    results = {}
    for isa in ("default", "portable", "avx2"):
        env = dict(os.environ)
        env.pop("EMBSTORE_ISA", None)
        if isa != "default":
            env["EMBSTORE_ISA"] = isa
        r = subprocess.run([sys.executable, script, MODULE_DIR, path("isa-cases.npz"), path(f"isa-{isa}.npz")],
                           env=env, capture_output=True, timeout=120)
        check(f"EMBSTORE_ISA={isa}: the searches ran", r.returncode == 0, r.stderr.decode()[-2000:])
        if r.returncode == 0:
            results[isa] = np.load(path(f"isa-{isa}.npz"))
    if "default" not in results:
        return
    base = results["default"]
    for isa in ("portable", "avx2"):
        if isa not in results:
            continue
        got = results[isa]
        bad = [(os.path.basename(c[0]), c[2], c[3], "single" if c[4] else "batch") for i, c in enumerate(cases)
               if not (same_bits(got[f"ids{i}"], base[f"ids{i}"]) and same_bits(got[f"sc{i}"], base[f"sc{i}"]))]
        check(f"EMBSTORE_ISA={isa}: every id and score bit for bit the default's ({len(cases)} searches)", not bad,
              bad[:4])
        bad_nan_aside = [i for i in range(len(cases))
                         if not (same_bits(got[f"ids{i}"], base[f"ids{i}"]) and
                                 same_scores(got[f"sc{i}"], base[f"sc{i}"]))]
        check(f"EMBSTORE_ISA={isa}: the same ids and number bits (NaN payloads aside)", not bad_nan_aside,
              bad_nan_aside[:4])
    # The command too.
    p = cases[-1][0]
    outs = []
    for isa in ("default", "portable", "avx2"):
        env = dict(os.environ)
        env.pop("EMBSTORE_ISA", None)
        if isa != "default":
            env["EMBSTORE_ISA"] = isa
        out = path(f"isa-cli-{isa}.npy")
        cli("nearest", p, "--queries", cases[-1][1], "-k", 50, "--metric", "l2", "-o", out, env=env)
        outs.append(open(out, "rb").read())
    check("embstore nearest -o under EMBSTORE_ISA=portable, avx2 and the default: the same bytes",
          outs[0] == outs[1] == outs[2])


# ---------------------------------------------------------------------------
# most_similar against gensim 4.2.

def gensim_tol(dim):
    # Ours: the cosine bound; gensim's: a float32 BLAS dot over dim terms
    # (divided by float32 norms), and its mean vector rounded in float32.
    return 2 * bound_e(dim) + 2.0**-23 + (2 * dim + 16) * 2.0**-24


def same_ranking(what, ours, theirs, tol):
    """[(key, score)] lists: the same keys in the same order but for ties within 2 tol, scores within tol."""
    if len(ours) != len(theirs):
        check(what, False, f"{len(ours)} results, gensim {len(theirs)}")
        return
    their_score = dict(theirs)
    problems = []
    keys_ours = [k for k, _ in ours]
    if len(set(keys_ours)) != len(keys_ours):
        problems.append("repeated keys")
    for i, ((ka, sa), (kb, sb)) in enumerate(zip(ours, theirs)):
        if not isinstance(sa, float):
            problems.append((i, "score is not a float", type(sa)))
        if abs(sa - sb) > 2 * tol:  # our score against gensim's at this rank (equal keys: tol each side)
            problems.append((i, ka, sa, kb, sb))
        if ka != kb and (ka not in their_score or abs(their_score[ka] - sb) > 2 * tol):
            problems.append((i, "not a tie", ka, kb))
        if ka == kb and abs(sa - sb) > tol:
            problems.append((i, ka, "score", sa, "gensim", sb))
    check(what, not problems, problems[:3])


def word_vectors(n=800, dim=50, seed=6):
    rng = np.random.default_rng(seed)
    keys = ["king", "queen", "man", "woman", "naïve", "日本", "paris", "france"] + [f"w{i}" for i in range(n - 8)]
    vecs = rng.standard_normal((n, dim)).astype(np.float32) * rng.uniform(0.2, 2, (n, 1)).astype(np.float32)
    vecs[1] = vecs[0] - vecs[2] + vecs[3] + 0.1 * rng.standard_normal(dim).astype(np.float32)
    return keys, vecs


def gensim_table(name, keys, vecs, dtype="float32"):
    kv = KeyedVectors(vecs.shape[1])
    kv.add_vectors(keys, vecs)
    kv.save_word2vec_format(path(name + ".bin"), binary=True)
    embstore.import_table(path(name + ".bin"), path(name + ".emb"), dtype=dtype, force=True, fsync=False)
    return kv, path(name + ".emb")


def most_similar():
    keys, vecs = word_vectors()
    dim = vecs.shape[1]
    tol = gensim_tol(dim)
    kv, p = gensim_table("ms", keys, vecs)
    # bfloat16: the table rounds; gensim gets the widened values.
    kvb = KeyedVectors(dim)
    kvb.add_vectors(keys, bf16(vecs))
    _, pb = gensim_table("ms-bf16", keys, vecs, dtype="bfloat16")
    rng = np.random.default_rng(7)
    raw = (vecs[0] + 0.3 * rng.standard_normal(dim)).astype(np.float32)
    calls = [
        ("a single positive key", dict(positive="king")),
        ("a list of one key", dict(positive=["日本"])),
        ("positive and negative (the analogy)", dict(positive=["king", "woman"], negative=["man"])),
        ("several of each", dict(positive=["king", "paris", "w5"], negative=["man", "france"], topn=25)),
        ("(key, weight) tuples", dict(positive=[("king", 2.0), ("woman", 0.5)], negative=[("man", -1.5)])),
        ("a raw vector in positive", dict(positive=[raw])),
        ("a raw vector and a key", dict(positive=[raw, "queen"], negative=["w3"])),
        ("a row id (int) as gensim takes it", dict(positive=[3], topn=5)),
        ("restrict_vocab=100", dict(positive=["king"], restrict_vocab=100)),
        ("restrict_vocab=100, a query key beyond it", dict(positive=["w500", "king"], restrict_vocab=100)),
        ("topn larger than the table", dict(positive=["queen"], negative=["w7"], topn=5000)),
        ("topn = the table's rows less the query keys", dict(positive=["king", "man"], topn=798)),
        ("restrict_vocab=-5 (gensim slices vectors[0:-5])", dict(positive=["king"], restrict_vocab=-5, topn=900)),
    ]
    for label, t_path, oracle in (("float32", p, kv), ("bfloat16", pb, kvb)):
        with embstore.open(t_path) as t:
            check(f"most_similar ({label}): the table has gensim's keys and vectors", list(t.index_to_key) == keys and
                  t.dtype == label and same_scores(t.gather(np.arange(len(t))), oracle.vectors))
            for what, kw in calls:
                ours = t.most_similar(**kw)
                theirs = oracle.most_similar(**kw)
                same_ranking(f"most_similar ({label}), {what}: gensim's keys in gensim's order, scores within "
                             f"{tol:.2g}", ours, theirs, tol)
            for what, kw in (("topn=None", dict(positive=["king"], topn=None)),
                             ("topn=None, negative too", dict(positive=["king", "woman"], negative=["man"], topn=None)),
                             ("topn=None, restrict_vocab=50", dict(positive=["queen"], topn=None, restrict_vocab=50))):
                ours, theirs = t.most_similar(**kw), oracle.most_similar(**kw)
                check(f"most_similar ({label}), {what}: an array of every cosine, as gensim's",
                      isinstance(ours, np.ndarray) and ours.shape == theirs.shape and ours.dtype == np.float32 and
                      np.all(np.abs(ours.astype(np.float64) - theirs) <= tol),
                      (type(ours), getattr(ours, "shape", None), theirs.shape,
                       np.max(np.abs(np.asarray(ours, np.float64) - theirs)) if np.shape(ours) == theirs.shape
                       else None))
            check(f"most_similar ({label}), topn=0: [] as gensim", t.most_similar("king", topn=0) == [] ==
                  oracle.most_similar("king", topn=0))
            e = raises(f"most_similar ({label}) of an unknown key: KeyError", lambda: t.most_similar("nope"),
                       KeyError, "nope")
            try:
                oracle.most_similar("nope")
            except KeyError as g:
                check(f"most_similar ({label}): gensim's KeyError message", e is not None and str(e) == str(g),
                      (str(e), str(g)))
            raises(f"most_similar ({label}) of an unknown key among good ones: KeyError",
                   lambda: t.most_similar(positive=["king"], negative=["nope"]), KeyError, "nope")
            raises(f"most_similar ({label}) of nothing: ValueError as gensim",
                   lambda: t.most_similar(positive=[]), ValueError, "cannot compute mean with no input")
            # Against the float64 reference too: the mean vector gensim makes, searched.
            mean = oracle.get_mean_vector(["king", "woman", "man"], weights=[1, 1, -1], pre_normalize=True,
                                          post_normalize=True)
            ids, sc = t.nearest(mean, k=20)
            check_topk(f"nearest of gensim's analogy mean ({label})", ids, sc, mean,
                       t.gather(np.arange(len(t))), "cosine", 20)
    # A mean of zero (a key weighed against itself, a zero vector): gensim's
    # similarities are all 0; ours too, the lowest ids first, the key left out.
    with embstore.open(p) as t:
        for what, kw in (("king against itself", dict(positive=["king"], negative=["king"], topn=7)),
                         ("a zero vector", dict(positive=[np.zeros(dim, np.float32)], topn=7)),
                         ("a weight of 0", dict(positive=[("king", 0.0)], topn=7))):
            ours, theirs = t.most_similar(**kw), kv.most_similar(**kw)
            king = t.index("king")
            want = [t.key(i) for i in range(9) if not (i == king and "vector" not in what)][:7]
            check(f"most_similar of {what}: scores 0 as gensim's, the lowest ids first",
                  [k for k, _ in ours] == want and all(sc == 0.0 for _, sc in ours) and
                  all(sc == 0.0 for _, sc in theirs) and len(theirs) == 7, (ours, theirs))
        raises("most_similar of a vector holding NaN: ValueError",
               lambda: t.most_similar(positive=[np.full(dim, np.nan, np.float32)]), ValueError, "holds NaN")
    # A zero row: ours scores 0, gensim NaN (documented); the other rows as gensim.
    keys2, vecs2 = word_vectors(200, 20, 8)
    vecs2[50] = 0
    kvz, pz = gensim_table("ms-zero", keys2, vecs2)
    with embstore.open(pz) as t:
        ours = t.most_similar("king", topn=None)
        theirs = kvz.most_similar("king", topn=None)
        check("most_similar with a zero row: it scores 0 (gensim: NaN), the rest as gensim",
              ours[50] == 0 and np.isnan(theirs[50]) and
              np.all(np.abs(np.delete(ours, 50) - np.delete(theirs, 50)) <= gensim_tol(20)))
        ranked = t.most_similar("king", topn=199)
        check("most_similar with a zero row: it ranks among the rows by its 0",
              "w42" in dict(ranked) and dict(ranked)["w42"] == 0.0)
        raises("most_similar of the zero row's key: ValueError naming it (gensim: NaN everywhere)",
               lambda: t.most_similar(t.key(50)), ValueError, f"key {t.key(50)!r} has a row of zeros")


# ---------------------------------------------------------------------------
# The GIL is released while a search runs.

def gil_released():
    rng = np.random.default_rng(9)
    p, _ = make_table("gil", rng.standard_normal((32768, 64)).astype(np.float32))
    with embstore.open(p) as t:
        q = rng.standard_normal((64, 64)).astype(np.float32)
        t0 = time.perf_counter()
        t.nearest(q, k=10, threads=1)
        per_query = max((time.perf_counter() - t0) / 64, 1e-6)
        n = int(min(max(0.4 / per_query, 64), 200000))  # about 0.4 s of work
        q = rng.standard_normal((n, 64)).astype(np.float32)
        count, stop, started = [0], [False], threading.Event()

        def spin():
            # time.sleep(0) gives the GIL back each time round, so while the
            # main thread holds the GIL this loop waits, and while nearest
            # runs without it the loop turns freely.
            started.set()
            while not stop[0]:
                count[0] += 1
                time.sleep(0)

        th = threading.Thread(target=spin)
        th.start()
        started.wait()
        time.sleep(0.01)
        c0 = count[0]
        t0 = time.perf_counter()
        ids, _ = t.nearest(q, k=10, threads=1)
        elapsed = time.perf_counter() - t0
        c1 = count[0]
        stop[0] = True
        th.join()
        check("the GIL test's search took long enough to mean something (>= 0.1 s)", elapsed >= 0.1, elapsed)
        check(f"another Python thread ran while nearest searched ({n} queries, {elapsed:.2f} s)", c1 - c0 > 50,
              f"{c1 - c0} turns of the other thread's loop")
        check("... and the search's result is whole", ids.shape == (n, 10))


# ---------------------------------------------------------------------------
# Bad arguments from Python.

def python_errors():
    rng = np.random.default_rng(10)
    p, rows = make_table("err", rng.standard_normal((100, 20)).astype(np.float32))
    q = rows[0]
    with embstore.open(p) as t:
        IA = embstore.InvalidArgumentError
        check("InvalidArgumentError is a ValueError and an embstore.Error",
              issubclass(IA, ValueError) and issubclass(IA, embstore.Error))
        raises("a query of 19 values for dim 20", lambda: t.nearest(np.ones(19)), IA,
               "queries of shape (19,): expected (20,) or (n, 20), the table's dim")
        raises("queries of shape (2, 21)", lambda: t.nearest(np.ones((2, 21))), IA, "queries of shape (2, 21)")
        raises("queries of 3 dimensions", lambda: t.nearest(np.ones((1, 2, 20))), IA, "queries of shape (1, 2, 20)")
        raises("no queries: shape (0, 20)", lambda: t.nearest(np.ones((0, 20))), IA, "no queries")
        raises("k=0", lambda: t.nearest(q, k=0), IA, "k must be at least 1")
        raises("k > rows", lambda: t.nearest(q, k=101), IA, "k = 101 is more than the table's 100 rows")
        raises("k negative: a TypeError (k is unsigned)", lambda: t.nearest(q, k=-1), TypeError)
        bad = q.copy()
        bad[3] = np.nan
        raises("a NaN in the query, named with its element", lambda: t.nearest(bad), IA,
               "the query holds NaN at element 3")
        raises("a NaN in the second query of a batch", lambda: t.nearest(np.vstack([q, bad])), IA,
               "query 1 holds NaN at element 3")
        bad[3] = -np.inf
        raises("an infinity in the query", lambda: t.nearest(bad), IA, "the query holds an infinity at element 3")
        raises("a float64 query that overflows float32 is an infinity",
               lambda: t.nearest(np.full(20, 1e300)), IA, "infinity")
        raises("a zero query under cosine", lambda: t.nearest(np.zeros(20)), IA,
               "the query is all zeros: its cosine with any row is undefined")
        raises("a zero query, the second of a batch, under cosine", lambda: t.nearest(np.vstack([q, np.zeros(20)])),
               IA, "query 1 is all zeros")
        for metric in ("dot", "l2"):
            ids, sc = t.nearest(np.zeros(20), k=100, metric=metric)
            check_topk(f"a zero query is fine under {metric}", ids, sc, np.zeros(20, np.float32), rows, metric, 100)
        raises("an unknown metric, the choices named", lambda: t.nearest(q, metric="cos"), IA,
               "unknown metric 'cos' (expected cosine, dot or l2)")
        for alias, metric in (("ip", "dot"), ("inner_product", "dot"), ("l2sq", "l2"), ("euclidean", "l2")):
            a, b = t.nearest(q, metric=alias), t.nearest(q, metric=metric)
            check(f"metric={alias!r} is {metric!r}", same_bits(a[0], b[0]) and same_bits(a[1], b[1]))
        a = t.nearest(rows[:3].astype(np.float64))
        b = t.nearest([list(map(float, r)) for r in rows[:3]])
        c = t.nearest(np.asfortranarray(rows[:3]))
        d = t.nearest(rows[:6:2])  # not contiguous
        want = t.nearest(rows[:3])
        check("float64 arrays, nested lists and Fortran arrays are taken as float32",
              all(same_bits(x[0], want[0]) and same_bits(x[1], want[1]) for x in (a, b, c)))
        check("a strided view is taken", same_bits(d[0], t.nearest(np.ascontiguousarray(rows[:6:2]))[0]))
        raises("a query of strings: a TypeError or ValueError", lambda: t.nearest("abc"), (TypeError, ValueError))
        raises("a query of None: a TypeError or ValueError", lambda: t.nearest(None), (TypeError, ValueError))
        raises("exclude=5 (not a list): a TypeError", lambda: t.nearest(q, exclude=5), TypeError)
        raises("most_similar of an unknown id: KeyError", lambda: t.most_similar(positive=[100]), KeyError)
    raises("nearest on a closed table", lambda: t.nearest(q), IA, "closed")


# ---------------------------------------------------------------------------
# The command.

def parse_text(out):
    """'# query N...' headers and 'RANK<TAB>ID<TAB>[KEY<TAB>]SCORE' lines -> [(header, [(rank, id, key, score)])]."""
    blocks = []
    for line in out.decode().splitlines():
        if line.startswith("# query "):
            blocks.append((line, []))
            continue
        f = line.split("\t")
        rank, rid, score = int(f[0]), int(f[1]), f[-1]
        key = f[2] if len(f) == 4 else None
        blocks[-1][1].append((rank, rid, key, score))
    return blocks


def sig_digits(s):
    return len(s.lower().lstrip("+-").split("e")[0].replace(".", "").strip("0"))


def float_text(s):
    return np.float32({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(s, s))


def command_line():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((300, 12)).astype(np.float32)
    x[8] = np.nan
    x[9] = 0
    p, rows = make_table("cli", x)
    with embstore.open(p) as t:
        # Text: '# query N: id I (metric, k K)' and 'RANK\tID\tSCORE', scores in float32's shortest form.
        r = cli("nearest", p, "--id", 3, 200, "-k", 4)
        blocks = parse_text(r.stdout)
        ids, sc = t.nearest(rows[[3, 200]], k=4)
        check("text: a header per query, 'RANK<TAB>ID<TAB>SCORE' lines", [b[0] for b in blocks] ==
              ["# query 0: id 3 (cosine, k 4)", "# query 1: id 200 (cosine, k 4)"] and
              all([x[0] for x in b[1]] == [1, 2, 3, 4] for b in blocks), r.stdout)
        check("text: the ids and score bits of Table.nearest",
              [[x[1] for x in b[1]] for b in blocks] == ids.tolist() and
              same_bits(np.array([[float_text(x[3]) for x in b[1]] for b in blocks], np.float32), sc), r.stdout)
        check("text: each score in float32's shortest round-trip form",
              all(sig_digits(x[3]) == sig_digits(np.format_float_scientific(np.float32(x[3]), unique=True))
                  for b in blocks for x in b[1]), r.stdout)
        r = cli("nearest", p, "--id", 3, "-k", 300, "--metric", "l2")
        lines = r.stdout.decode().splitlines()
        check("text: NaN scores print 'NaN', last", lines[-1] == "300\t8\tNaN" and lines[1] == "1\t3\t0", lines[-2:])
        # --json against Table.nearest, every metric.
        for metric in METRICS:
            r = cli("nearest", p, "--id", 3, 200, "-k", 300, "--metric", metric, "--json")
            got = json.loads(r.stdout)
            ids, sc = t.nearest(rows[[3, 200]], k=300, metric=metric)
            check(f"--json ({metric}): one object per query: its index, id and the metric",
                  [(o["query"], o["id"], o["metric"]) for o in got] == [(0, 3, metric), (1, 200, metric)],
                  [(o.get("query"), o.get("id"), o.get("metric")) for o in got])
            check(f"--json ({metric}): Table.nearest's ids and score bits (NaN written as NaN)",
                  [[x["id"] for x in o["results"]] for o in got] == ids.tolist() and
                  same_scores(np.array([[x["score"] for x in o["results"]] for o in got], np.float32), sc))
        r = cli("nearest", p, "--id", 9, "-k", 3, "--metric", "cosine", "--json", ok=False)
        check("--id of a zero row under cosine: exit 2, 'all zeros'", r.returncode == 2 and b"all zeros" in r.stderr,
              (r.returncode, r.stderr))
        r = cli("nearest", p, "--id", 8, "-k", 3, "--metric", "dot", ok=False)
        check("--id of a NaN row: exit 2, the query holds NaN", r.returncode == 2 and b"holds NaN" in r.stderr,
              (r.returncode, r.stderr))
        # -o OUT.npy.
        od = path("cli-o")
        os.mkdir(od)
        out = os.path.join(od, "out.npy")
        cli("nearest", p, "--id", 3, 200, 5, "-k", 7, "--metric", "l2", "-o", out)
        check("-o: the file written, and no temporary left beside it", os.listdir(od) == ["out.npy"], os.listdir(od))
        a = np.load(out)
        ids, sc = t.nearest(rows[[3, 200, 5]], k=7, metric="l2")
        check("-o: a (queries, k) structured array of ('id', <i8), ('score', <f4)",
              a.shape == (3, 7) and a.dtype == np.dtype([("id", "<i8"), ("score", "<f4")]), (a.shape, a.dtype))
        check("-o: np.load(OUT)['id'] and ['score'] are Table.nearest's, bit for bit",
              np.array_equal(a["id"], ids) and same_bits(np.ascontiguousarray(a["score"]), sc))
        r = cli("nearest", p, "--id", 3, "-o", out, ok=False)
        check("-o over an existing file without -f: exit 1, 'already exists', the file kept",
              r.returncode == 1 and b"already exists" in r.stderr and np.load(out).shape == (3, 7),
              (r.returncode, r.stderr))
        cli("nearest", p, "--id", 3, "-o", out, "-f", "-k", 2)
        check("-o -f replaces it", np.load(out).shape == (1, 2) and os.listdir(od) == ["out.npy"])
        r = cli("nearest", p, "--id", 3, "-o", od, "-f", ok=False)
        check("-o not named .npy (here a folder): exit 2, the folder untouched",
              r.returncode == 2 and b"name it OUT.npy" in r.stderr and os.listdir(od) == ["out.npy"], r.stderr)
        odn = path("cli-o.npy")
        os.mkdir(odn)
        r = cli("nearest", p, "--id", 3, "-o", odn, "-f", ok=False)
        check("-o naming a folder, even with -f: exit 1, the folder untouched",
              r.returncode == 1 and b"is a folder" in r.stderr and os.listdir(odn) == [], r.stderr)
        r = cli("nearest", p, "--id", 3, "-o", p.replace(".emb", "-copy.emb"), ok=False)
        check("-o naming a table (.emb): exit 2, nothing written",
              r.returncode == 2 and not os.path.exists(p.replace(".emb", "-copy.emb")), r.stderr)
        # --exclude-self.
        r = cli("nearest", p, "--id", 3, 200, "-k", 5, "--exclude-self", "--json")
        got = json.loads(r.stdout)
        ids, sc = t.nearest(rows[[3, 200]], k=5, exclude=[[3], [200]])
        check("--exclude-self: each query's own row left out, as exclude=[[3], [200]]",
              [[x["id"] for x in o["results"]] for o in got] == ids.tolist() and 3 not in ids[0] and
              200 not in ids[1])
        # --vector and --queries.
        v = rows[17] + np.float32(0.25)
        text = ",".join(repr(float(f)) for f in v)
        signed = ", ".join(f"{float(f):+}" for f in v)  # "+0.5, -1.25, ..."
        for form in (text, text.replace(",", " "), signed):
            r = cli("nearest", p, "--vector", form, "-k", 6, "--json")
            got = json.loads(r.stdout)
            ids, sc = t.nearest(v, k=6)
            check(f"--vector {form[:24]!r}...: Table.nearest's ids and scores",
                  [x["id"] for x in got[0]["results"]] == ids[0].tolist() and
                  same_bits(np.array([x["score"] for x in got[0]["results"]], np.float32), sc[0]))
        q = queries_for(rows[np.isfinite(rows).all(1) & (np.abs(rows).sum(1) > 0)], 5, rng)
        for label, arr in (("float32 2-D", q), ("float32 1-D", q[0]), ("float16 2-D", q.astype(np.float16)),
                           ("float16 1-D", q[1].astype(np.float16)), ("float32 (1, dim)", q[2:3])):
            qf = path("cli-q.npy")
            np.save(qf, arr)
            for metric in METRICS:
                out = path("cli-q-out.npy")
                cli("nearest", p, "--queries", qf, "-k", 9, "--metric", metric, "-o", out, "-f")
                a = np.load(out)
                ids, sc = t.nearest(np.atleast_2d(arr).astype(np.float32), k=9, metric=metric)
                check(f"--queries {label} ({metric}): Table.nearest of the values widened, bit for bit",
                      np.array_equal(a["id"], ids) and same_bits(np.ascontiguousarray(a["score"]), sc))
        r = cli("nearest", p, "--queries", qf, "-k", 3, "--threads", 1, "--json")
        check("--threads 1: the same results", json.loads(r.stdout) ==
              json.loads(cli("nearest", p, "--queries", qf, "-k", 3, "--json").stdout))
        cli("compress", p, "-o", path("cli.embz"), "--frame-rows", 32, "-q")
        check("a .embz gives the .emb's output, byte for byte",
              cli("nearest", path("cli.embz"), "--id", 1, 2, "-k", 300).stdout ==
              cli("nearest", p, "--id", 1, 2, "-k", 300).stdout)

    # Keys: --key, and keys printed.
    keys, vecs = word_vectors(200, 16, 12)
    _, kp = gensim_table("cli-keys", keys, vecs)
    with embstore.open(kp) as t:
        r = cli("nearest", kp, "--key", "king", "日本", "-k", 3)
        blocks = parse_text(r.stdout)
        ids, sc = t.nearest(t[["king", "日本"]], k=3)
        check("--key: headers name the key", [b[0] for b in blocks] ==
              ["# query 0: id 0 king (cosine, k 3)", "# query 1: id 5 日本 (cosine, k 3)"], r.stdout)
        check("--key: 'RANK<TAB>ID<TAB>KEY<TAB>SCORE', the keys of the ids",
              [[(x[1], x[2]) for x in b[1]] for b in blocks] == [[(int(i), keys[i]) for i in row] for row in ids] and
              same_bits(np.array([[float_text(x[3]) for x in b[1]] for b in blocks], np.float32), sc), r.stdout)
        got = json.loads(cli("nearest", kp, "--key", "queen", "-k", 4, "--exclude-self", "--json").stdout)
        ids, sc = t.nearest(t["queen"], k=4, exclude=[1])
        check("--key --json --exclude-self: key of the query and of each result",
              got[0]["key"] == "queen" and got[0]["id"] == 1 and
              [(x["id"], x["key"]) for x in got[0]["results"]] == [(int(i), keys[i]) for i in ids[0]], got)
        r = cli("nearest", kp, "--vector", ",".join(["1"] * 16), "-k", 2)
        check("--vector on a keyed table prints keys too", parse_text(r.stdout)[0][1][0][2] in keys, r.stdout)
        r = cli("nearest", kp, "--key", "king", "nope", "-k", 2, ok=False)
        check("--key of an unknown key: exit 1, naming it, nothing on stdout",
              r.returncode == 1 and b"key 'nope' not found" in r.stderr and r.stdout == b"",
              (r.returncode, r.stderr, r.stdout))


def command_errors():
    rng = np.random.default_rng(13)
    p, rows = make_table("clierr", rng.standard_normal((50, 8)).astype(np.float32))
    d = path("clierr-out")
    os.mkdir(d)
    q8 = rng.standard_normal((3, 8)).astype(np.float32)

    def npy(name, arr):
        f = path(name)
        np.save(f, arr)
        return f

    def raw(name, data):
        f = path(name)
        with open(f, "wb") as fh:
            fh.write(data)
        return f

    fifo = path("clierr-fifo.npy")
    os.mkfifo(fifo)
    folder = path("clierr-dir.npy")
    os.mkdir(folder)
    nan_q = q8[0].copy()
    nan_q[2] = np.nan
    vec = lambda v: ",".join(str(float(f)) for f in v)  # noqa: E731
    cases = [
        # (what, args, exit code, message)
        ("a --vector of the wrong dimension", ["--vector", "1,2,3"], 2, "--vector has 3 values; the table's dim is 8"),
        ("-k 0", ["--id", 1, "-k", 0], 2, "-k must be at least 1"),
        ("-k more than the rows", ["--id", 1, "-k", 51], 2, "k = 51 is more than the table's 50 rows"),
        ("-k = rows with --exclude-self", ["--id", 1, "-k", 50, "--exclude-self"], 2, "less 1 excluded"),
        ("--id past the table", ["--id", 50], 1, "id 50 out of range: the table has rows [0, 50)"),
        ("NaN in --vector", ["--vector", vec(nan_q)], 2, "the query holds NaN at element 2"),
        ("inf in --vector", ["--vector", "inf," + vec(q8[0][1:])], 2, "the query holds an infinity at element 0"),
        ("a value beyond float32 in --vector (an infinity as float32)", ["--vector", "1e39," + vec(q8[0][1:])], 2,
         "the query holds an infinity at element 0"),
        ("a value beyond float64 in --vector", ["--vector", "1e400," + vec(q8[0][1:])], 2, "'1e400' is out of range"),
        ("'+-1' in --vector", ["--vector", "+-1," + vec(q8[0][1:])], 2, "'+-1' is not a number"),
        ("a word in --vector", ["--vector", "x," + vec(q8[0][1:])], 2, "value 0 'x' is not a number"),
        ("an empty --vector", ["--vector", ""], 2, "--vector: no values"),
        ("a zero --vector under cosine", ["--vector", ",".join(["0"] * 8)], 2, "is all zeros"),
        ("an unknown metric", ["--id", 1, "--metric", "cos"], 2, "unknown metric 'cos' (expected cosine, dot or l2)"),
        ("--exclude-self without --id or --key", ["--vector", vec(q8[0]), "--exclude-self"], 2,
         "--exclude-self needs --id or --key queries"),
        ("two query sources", ["--id", 1, "--vector", vec(q8[0])], 2,
         "give one of --id, --key, --vector and --queries"),
        ("no query", [], 2, "no query given"),
        ("--key on a table without keys", ["--key", "king"], 2, "the table has no keys"),
        ("an empty query file (0, 8)", ["--queries", npy("e0.npy", np.zeros((0, 8), np.float32))], 2,
         "the query file is empty"),
        ("an empty query file (0,)", ["--queries", npy("e1.npy", np.zeros((0,), np.float32))], 2,
         "the query file is empty"),
        ("a zero-byte query file", ["--queries", raw("e2.npy", b"")], 1, "truncated .npy"),
        ("a float64 .npy", ["--queries", npy("f8.npy", q8.astype(np.float64))], 2,
         "queries must be little-endian float32 or float16 ('<f4' or '<f2'), not '<f8'"),
        ("an int32 .npy", ["--queries", npy("i4.npy", q8.astype(np.int32))], 2,
         "queries must be little-endian float32 or float16 ('<f4' or '<f2'), not '<i4'"),
        ("a big-endian float32 .npy", ["--queries", npy("be.npy", q8.astype(">f4"))], 2, "not '>f4'"),
        ("a 3-D .npy", ["--queries", npy("3d.npy", q8[None])], 2, "not 3 dimensions"),
        ("a .npy of the wrong dim", ["--queries", npy("d7.npy", q8[:, :7])], 2,
         "queries have 7 values each; the table's dim is 8"),
        ("a Fortran-order .npy", ["--queries", npy("fo.npy", np.asfortranarray(q8))], 2, "Fortran order"),
        ("NaN in a .npy", ["--queries", npy("nan.npy", np.vstack([q8, nan_q]))], 2, "query 3 holds NaN at element 2"),
        ("a file that is not .npy", ["--queries", raw("text.npy", b"0.5,1,2\n" * 20)], 1, "not a .npy file"),
        ("a .npy cut short", ["--queries", raw("short.npy", open(npy("s.npy", q8), "rb").read()[:-5])], 1,
         "truncated .npy: the shape needs 96 bytes of data, the file has 91"),
        ("a missing query file", ["--queries", path("no-such.npy")], 1, "no-such.npy"),
        ("--queries naming a FIFO (not opened, not waited on)", ["--queries", fifo], 1,
         "is a FIFO, not a regular file"),
        ("--queries naming a directory", ["--queries", folder], 1, "is a folder, not a regular file"),
        ("--json with -o", ["--id", 1, "--json"], 2, "--json and -o cannot be combined"),
        ("--id=-1", ["--id=-1"], 2, "--id: '-1' is not a whole number"),
        ("-k -1", ["--id", 1, "-k", "-1"], 2, "-k: '-1' is not a whole number"),
        ("--threads x", ["--id", 1, "--threads", "x"], 2, "--threads"),
    ]
    r = cli("nearest", p, "--id", 1, "-o", "", ok=False)
    check("an empty -o: exit 2, named", r.returncode == 2 and b"-o: the output path is empty" in r.stderr,
          (r.returncode, r.stderr))
    for what, args, code, message in cases:
        before = sorted(os.listdir(d))
        out = os.path.join(d, "out.npy")
        r = cli("nearest", p, *args, "-o", out, ok=False, timeout=20)
        err = r.stderr.decode(errors="replace")
        check(f"{what}: exit {code}, saying {message!r}", r.returncode == code and message in err and
              err.startswith("embstore nearest: "), (r.returncode, err))
        check(f"{what}: no output, no temporary left", sorted(os.listdir(d)) == before,
              sorted(set(os.listdir(d)) - set(before)))
        if "--json" not in args:
            r2 = cli("nearest", p, *args, ok=False, timeout=20)
            check(f"{what}, without -o: the same exit and nothing on stdout",
                  r2.returncode == r.returncode and r2.stdout == b"", (r2.returncode, r2.stdout[:100]))
    r = cli("nearest", path("no-such.emb"), "--id", 0, ok=False)
    check("a missing table: exit 1, naming it", r.returncode == 1 and b"no-such.emb" in r.stderr, r.stderr)
    r = cli("nearest", "--help")
    check("--help: exit 0, the usage", r.returncode == 0 and b"usage: embstore nearest TABLE" in r.stdout)


if __name__ == "__main__":
    t0 = time.time()
    try:
        tests = [accuracy, ties_and_specials, exclude_and_restrict, same_bits_everywhere, instruction_sets,
                 most_similar, gil_released, python_errors, command_line, command_errors]
        if SANITIZED:
            tests = [t for t in tests if t not in (instruction_sets, most_similar, gil_released)]
        code = run("nearest_test", tests)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"nearest_test: {time.time() - t0:.1f} s")
    sys.exit(code)
