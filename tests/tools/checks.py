"""The tally the Python tests share: check() counts, prints each failure
with its detail, and finish() prints the closing line and gives the exit
code."""

FAILED = []
PASSED = [0]


def check(what, ok, detail=""):
    if ok:
        PASSED[0] += 1
    else:
        FAILED.append(what)
        print(f"FAILED {what}: {detail}", flush=True)


def finish(name):
    print(f"{name}: {PASSED[0]} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0
