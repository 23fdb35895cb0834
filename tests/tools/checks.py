"""The helpers every Python test shares, on unittest.

A test script writes its tests as plain functions that call check(what,
ok, detail) for each thing that must hold, and hands them to run(), which
makes them the test methods of one unittest.TestCase and runs them in
order. Each check is a unittest subTest: a failing check is reported, with
its name and detail, under the test it belongs to, and the test goes on to
its next check. run() returns the exit code (0 when every check held), so
that ctest sees it; a test that cannot run here raises unittest.SkipTest.

    from checks import check, raises, run

    def test_open(d):
        check("opens", t.ok, detail)

    sys.exit(run("open_test", [("open", lambda: test_open(d))]))
"""

import sys
import unittest

_current = None  # the TestCase whose test is running


def check(what, ok, detail=""):
    """One check of the running test: passes when ok is true."""
    if _current is None:
        raise RuntimeError(f"check({what!r}) outside a test run by checks.run()")
    with _current.subTest(check=what):
        if not ok:
            _current.fail(f"{what}: {detail}" if detail != "" else what)


def raises(what, fn, exc, message=None):
    """A check that fn() raises exc, whose message contains `message` if
    given. Returns the exception (None if it was not raised)."""
    try:
        fn()
    except exc as e:
        check(what, message is None or message in str(e), f"{type(e).__name__}: message {str(e)!r} lacks {message!r}")
        return e
    except Exception as e:  # noqa: BLE001
        check(what, False, f"raised {type(e).__name__}: {e}")
        return None
    check(what, False, "no exception")
    return None


def run(name, tests):
    """Runs tests, a list of (name, function) or functions, in that order, as
    the tests of a unittest.TestCase called `name`. Returns 0 if all passed,
    1 otherwise (a skipped test is not a failure)."""
    case = type(name, (unittest.TestCase,), {"__module__": name})
    order = []
    for item in tests:
        label, fn = item if isinstance(item, tuple) else (item.__name__, item)
        method = "test_" + label.removeprefix("test_")

        def body(self, fn=fn):
            global _current
            _current = self
            try:
                fn()
            finally:
                _current = None

        body.__name__ = method
        setattr(case, method, body)
        order.append(method)
    suite = unittest.TestSuite(case(m) for m in order)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1
