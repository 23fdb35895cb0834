#!/usr/bin/python3
"""Whose shared tables are read (run by ctest, as root; skipped otherwise):
    shm_owner_test.py EMBSTORE MODULE_DIR

with MODULE_DIR the build's python/ folder (the module under test).

Anyone may create a name in /dev/shm, so a shared table (shm:NAME, the file
embstore-NAME in EMBSTORE_SHM_DIR) is read only when its owner is the
reader, root, or a user named with --trust-owner (trust_owner= in Python).
The other user here is nobody (uid 65534); its commands run with that uid
and gid. The shm folder is a scratch folder of mode 1777, like /dev/shm.

- nobody takes the name first ("squatting"): root's get, info, verify,
  export, compress and share of shm:wte exit 1 naming the owner and
  --trust-owner, and write nothing.
- --trust-owner nobody and --trust-owner 65534 read it: the right rows.
- root's own `share --name wte` is refused (already exists) and the segment
  stays nobody's.
- Python: open("shm:wte") raises StorageError naming uid 65534;
  trust_owner="nobody", 65534 or ["nobody"] read it, and a pickled trusted
  Table reopens with its trust.
- nobody reads root's segment (root is always trusted) and its own.
- `embstore shared` lists both, nobody's with an error naming its owner.
- Two shares of one name at once, 20 times: one exits 0, the other 1
  ("already exists"), never 2.
- --trust-owner with an unknown user: exit 2, "neither a user name nor a uid".
"""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run as run_tests  # noqa: E402

EMB, MODULE_DIR = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
NAME = "shm_owner_test"
NOBODY = 65534
TIMEOUT = 60


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def run(*args, nobody=False, cwd=None):
    """One embstore run (as root, or as nobody): (exit code, stdout bytes, stderr text)."""
    r = subprocess.run([EMB, *map(str, args)], capture_output=True, timeout=TIMEOUT, cwd=cwd,
                       preexec_fn=as_nobody if nobody else None)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def attempt(fn):
    """(value, None) or (None, the exception)."""
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001: any exception is an outcome to check
        return None, e


def names_owner(err):
    return "uid 65534" in err and "nobody" in err and "--trust-owner" in err


def squatted_checks(d, shm):
    out = os.path.join(d, "out")
    os.mkdir(out)
    code, stdout, err = run("get", "shm:wte", "0")
    check("a segment of another user: root's get exits 1", code == 1, f"exit {code}: {stdout[:200]} {err[:300]}")
    check("a segment of another user: the refusal names the owner (uid 65534, nobody) and --trust-owner",
          names_owner(err), err[:400])
    check("a segment of another user: no row is printed", not stdout, stdout[:200])
    for argv, made in ((["info", "shm:wte"], None), (["verify", "shm:wte"], None),
                       (["export", "shm:wte", "-o", os.path.join(out, "x.npy")], None),
                       (["compress", "shm:wte", "-o", os.path.join(out, "x.embz")], None),
                       (["share", "shm:wte", "--name", "copy"], os.path.join(shm, "embstore-copy"))):
        code, _, err = run(*argv)
        what = " ".join(a if not a.startswith(out) else os.path.basename(a) for a in argv)
        check(f"a segment of another user: root's `{what}` exits 1 naming the owner",
              code == 1 and names_owner(err), f"exit {code}: {err[:300]}")
        left = os.listdir(out) + ([os.path.basename(made)] if made and os.path.exists(made) else [])
        check(f"a segment of another user: root's `{what}` writes nothing", not left, str(left))
        for p in [os.path.join(out, f) for f in os.listdir(out)] + ([made] if made and os.path.exists(made) else []):
            os.remove(p)  # so that each command is judged alone


def trusted_checks(row0):
    for user in ("nobody", str(NOBODY)):
        code, stdout, err = run("get", "shm:wte", "0", "--raw", "--trust-owner", user)
        check(f"--trust-owner {user}: root's get returns the table's row 0", code == 0 and stdout == row0,
              f"exit {code}: {err[:300]}")
        for cmd in ("info", "verify"):
            code, _, err = run(cmd, "shm:wte", "--trust-owner", user)
            check(f"--trust-owner {user}: root's {cmd} succeeds", code == 0, f"exit {code}: {err[:300]}")


def taken_name_checks(src2, shm):
    code, _, err = run("share", src2, "--name", "wte")
    check("root's share of a name nobody took exits 1, 'already exists'", code == 1 and "already exists" in err,
          f"exit {code}: {err[:300]}")
    st = os.lstat(os.path.join(shm, "embstore-wte"))
    check("the segment is still nobody's", st.st_uid == NOBODY, f"uid {st.st_uid}")


def python_checks(row0):
    import embstore  # after EMBSTORE_SHM_DIR is set, from MODULE_DIR
    _, e = attempt(lambda: embstore.open("shm:wte"))
    check("Python: open('shm:wte') of nobody's segment raises StorageError (an OSError) naming uid 65534",
          isinstance(e, embstore.StorageError) and isinstance(e, OSError) and "uid 65534" in str(e),
          f"{type(e).__name__}: {e}" if e else "it opened")
    for trust in ("nobody", NOBODY, ["nobody"]):
        t, e = attempt(lambda: embstore.open("shm:wte", trust_owner=trust))
        check(f"Python: open('shm:wte', trust_owner={trust!r}) reads row 0", e is None and t[0].tobytes() == row0,
              f"{type(e).__name__}: {e}" if e else "a different row 0")
    t, e = attempt(lambda: pickle.loads(pickle.dumps(embstore.open("shm:wte", trust_owner="nobody"))))
    check("Python: a pickled trusted Table reopens with its trust", e is None and t[0].tobytes() == row0,
          f"{type(e).__name__}: {e}" if e else "a different row 0")


def other_direction_checks(src, row0, d):
    code, _, err = run("share", src, "--name", "rootshared", "--mode", "0644")
    check("root shares a table with --mode 0644", code == 0, f"exit {code}: {err[:300]}")
    code, stdout, err = run("get", "shm:rootshared", "0", "--raw", nobody=True, cwd=d)
    check("nobody reads root's segment (root is always trusted)", code == 0 and stdout == row0,
          f"exit {code}: {err[:300]}")
    code, stdout, err = run("get", "shm:wte", "0", "--raw", nobody=True, cwd=d)
    check("nobody reads its own segment", code == 0 and stdout == row0, f"exit {code}: {err[:300]}")


def listing_checks():
    code, stdout, err = run("shared")
    lines = stdout.decode(errors="replace").splitlines()
    wte = [ln for ln in lines if ln.startswith("shm:wte ")]
    mine = [ln for ln in lines if ln.startswith("shm:rootshared ")]
    check("`embstore shared` exits 0 and lists both segments", code == 0 and len(wte) == 1 and len(mine) == 1,
          f"exit {code}: {stdout[:500]} {err[:200]}")
    check("`embstore shared` shows nobody's segment with an error naming its owner",
          len(wte) == 1 and "uid 65534 (nobody)" in wte[0] and "belongs to" in wte[0], str(wte))
    check("`embstore shared` shows root's segment as a table", len(mine) == 1 and "belongs to" not in mine[0],
          str(mine))


def race_checks(big):
    bad, late = [], 0
    for i in range(20):
        procs = [subprocess.Popen([EMB, "share", big, "--name", "race", "-q"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for _ in range(2)]
        results = [(p.returncode, err.decode(errors="replace"))
                   for p, (_, err) in ((p, p.communicate(timeout=TIMEOUT)) for p in procs)]
        codes = sorted(c for c, _ in results)
        loser = [e for c, e in results if c != 0]
        if codes != [0, 1] or "already exists" not in loser[0]:
            bad.append(f"round {i}: {results}")
        late += bool(loser) and "appeared while" in loser[0]
        run("unshare", "race")
    print(f"note: in {late} of 20 rounds both shares wrote a copy and the loser lost when naming it", flush=True)
    check("two shares of one name at once, 20 times: one exits 0, the other 1 with 'already exists'", not bad,
          "; ".join(bad)[:600])


def trusted_owners_only():
    global EMB
    d = tempfile.mkdtemp(prefix="embstore-shm-owner-")
    try:
        os.chmod(d, 0o755)  # nobody reads the tables in here
        # ... and runs the command from here: the build tree may lie in a
        # folder nobody cannot enter (a clone in `mktemp -d`, mode 0700).
        shutil.copy2(EMB, os.path.join(d, "embstore"))
        os.chmod(os.path.join(d, "embstore"), 0o755)
        EMB = os.path.join(d, "embstore")
        shm = os.path.join(d, "shm")
        os.mkdir(shm)
        os.chmod(shm, 0o1777)  # like /dev/shm: anyone may create a name
        os.environ["EMBSTORE_SHM_DIR"] = shm  # before the module is imported, and for every child
        sys.path.insert(0, MODULE_DIR)
        src, src2, big = (os.path.join(d, n) for n in ("t.emb", "t2.emb", "big.emb"))
        for path, rows, dim, seed in ((src, 100, 8, 1), (src2, 100, 8, 2), (big, 4000, 256, 3)):
            code, _, err = run("generate", "--rows", rows, "--dim", dim, "--seed", seed, "--no-fsync", "-o", path)
            if code != 0:
                raise RuntimeError(f"generate {path}: {err}")
            os.chmod(path, 0o644)
        row0 = run("get", src, "0", "--raw")[1]

        # nobody takes the name first.
        code, _, err = run("share", src, "--name", "wte", "--mode", "0644", nobody=True, cwd=d)
        seg = os.path.join(shm, "embstore-wte")
        check("nobody shares shm:wte", code == 0 and os.path.exists(seg) and os.lstat(seg).st_uid == NOBODY,
              f"exit {code}: {err[:300]}")
        squatted_checks(d, shm)
        trusted_checks(row0)
        taken_name_checks(src2, shm)
        python_checks(row0)
        other_direction_checks(src, row0, d)
        listing_checks()
        race_checks(big)

        code, _, err = run("get", "shm:wte", "0", "--trust-owner", "no-such-user-embstore")
        check("--trust-owner with an unknown user: exit 2, 'neither a user name nor a uid'",
              code == 2 and "neither a user name nor a uid" in err, f"exit {code}: {err[:300]}")
    finally:
        subprocess.run(["rm", "-rf", d])


def main():
    if os.geteuid() != 0:
        print("*" * 70 + "\nNOTE: shm_owner_test needs root (it runs commands as nobody): SKIPPED\n" + "*" * 70)
        return 77
    return run_tests("shm_owner_test", [trusted_owners_only])


if __name__ == "__main__":
    sys.exit(main())
