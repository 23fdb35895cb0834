"""The stub's parameters against the module's own.

mypy's stubtest cannot see the parameters of pybind11 functions (they have
no __text_signature__), so this compares them with the signature pybind11
writes on each function's first docstring line: the same names in the same
order, the same keyword-only marker, the same defaults.

    stub_signatures_test.py STUB MODULE_DIR
"""

import ast
import sys

STUB, MODULE_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, MODULE_DIR)
import embstore  # noqa: E402


def split_top(text):
    """Splits on commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def runtime_params(obj, name):
    """[(name, kind, default)] from pybind11's "name(a: T = d, *, b: T) -> R" line."""
    line = (obj.__doc__ or "").split("\n")[0]
    assert line.startswith(name + "("), f"{name}: no signature line in its docstring: {line!r}"
    inner = line[len(name) + 1 : line.rindex(") -> ")]
    params, kw_only = [], False
    for p in split_top(inner):
        if p == "*":
            kw_only = True
            continue
        if p.startswith("*"):
            params.append((p.split(":")[0], "var", REQUIRED))
            continue
        pname = p.split(":")[0].strip()
        default = p.split(" = ", 1)[1] if " = " in p else REQUIRED
        if default is not REQUIRED:
            try:
                default = ast.literal_eval(default)
            except ValueError:
                pass
        params.append((pname, "kw" if kw_only else "pos", default))
    return params


def stub_params(fn):
    a = fn.args
    out = []
    positional = a.posonlyargs + a.args
    defaults = [REQUIRED] * (len(positional) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    for arg, d in zip(positional, defaults):
        out.append((arg.arg, "pos", d))
    if a.vararg:
        out.append(("*" + a.vararg.arg, "var", REQUIRED))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "kw", REQUIRED if d is None else ast.literal_eval(d)))
    return out


failures, checked = [], 0
REQUIRED = "<required>"


def compare(qualname, fn, runtime):
    global checked
    want = runtime_params(runtime, fn.name)
    got = stub_params(fn)
    if any(isinstance(d, ast.Name) and d.id == "overload" for d in fn.decorator_list):
        # An overload may make a parameter required where the function
        # has a default (generate's path and dtype).
        defaults = {(n, k): d for n, k, d in want}
        got = [(n, k, defaults.get((n, k), d) if d is REQUIRED else d) for n, k, d in got]
    if got != want:
        failures.append(f"{qualname}: stub {got}\n{' ' * len(qualname)}  runtime {want}")
    checked += 1


tree = ast.parse(open(STUB).read())
for node in tree.body:
    if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
        compare(node.name, node, getattr(embstore, node.name))
    if isinstance(node, ast.ClassDef) and node.name == "Table":
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and not any(
                isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list
            ):
                runtime = getattr(embstore.Table, item.name)
                if item.name in ("__getstate__", "__setstate__"):
                    continue  # made by py::pickle, without a signature line
                compare("Table." + item.name, item, runtime)

for f in failures:
    print("FAIL", f)
print(f"stub_signatures_test: {checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures or checked < 20 else 0)
