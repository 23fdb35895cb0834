"""A process's memory as /proc reports it, for the tests and benchmarks that
measure sharing: PSS (proportional set size: each shared page counted once
across all the processes that map it) of a whole process or of chosen
mappings, and where a file is mapped."""


def pss_bytes(pid="self"):
    """PSS of the whole process (/proc/PID/smaps_rollup)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no Pss line for {pid}")


def _mappings(pid):
    """(start, end, path or None, {field: kB}) for each mapping in smaps."""
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and "-" in fields[0] and ":" not in fields[0]:  # a mapping's header line
                if current:
                    yield current
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                current = (lo, hi, fields[5] if len(fields) >= 6 else None, {})
            elif current and fields and fields[0].endswith(":") and len(fields) >= 2 and fields[1].isdigit():
                current[3][fields[0][:-1]] = int(fields[1])
    if current:
        yield current


def mapping_pss_bytes(path, pid="self", also=None):
    """PSS of the mappings of `path`, plus, if `also` is a byte range
    (start, end), of every mapping overlapping it (a private copy's memory,
    which the kernel may have split into several mappings)."""
    total = 0
    for lo, hi, mapped, sizes in _mappings(pid):
        if mapped == path or (also is not None and lo < also[1] and also[0] < hi):
            total += sizes.get("Pss", 0) * 1024
    return total


def mapping_ranges(path, pid="self"):
    """The (start, end) address ranges where `path` is mapped."""
    return [(lo, hi) for lo, hi, mapped, _ in _mappings(pid) if mapped == path]
