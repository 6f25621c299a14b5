"""Shared plumbing for the Python scenarios of the client suite.

Every check prints one line, `PASS <suite> <name>` or `FAIL <suite> <name>: <why>`, which
run.sh counts. The server under test comes from the environment run.sh sets:
HASHD_HOST, HASHD_PORT (no password), HASHD_AUTH_PORT + HASHD_PASSWORD (requirepass),
HASHD_STATE + HASHD_BIN (for restarting the plain server), HASHD_SUITE_DIR.
"""

import os
import subprocess
import sys
import time
import traceback

HOST = os.environ.get("HASHD_HOST", "127.0.0.1")
PORT = int(os.environ.get("HASHD_PORT", "6379"))
AUTH_PORT = int(os.environ.get("HASHD_AUTH_PORT", "0"))
PASSWORD = os.environ.get("HASHD_PASSWORD", "")
SUITE_DIR = os.environ.get(
    "HASHD_SUITE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)

# How long a poll for a field to expire may take before it counts as a failure.
EXPIRY_POLL_S = 3.0


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        """Runs fn(); an exception or a False return is a failure."""
        t0 = time.monotonic()
        try:
            ok = fn()
        except Exception as e:  # noqa: BLE001 - any exception is a failed check
            tb = traceback.extract_tb(e.__traceback__)
            where = ""
            for frame in reversed(tb):
                if frame.filename.endswith(".py") and "site-packages" not in frame.filename:
                    where = f" (line {frame.lineno})"
                    break
            self.fail(name, f"{type(e).__name__}: {e}{where}")
            return
        if ok is False:
            self.fail(name, "check returned False")
        else:
            took = time.monotonic() - t0
            self.ok(name + (f" ({took:.1f}s)" if took >= 1 else ""))

    def ok(self, name):
        self.passed += 1
        print(f"PASS {self.name} {name}", flush=True)

    def fail(self, name, why):
        self.failed += 1
        why = " ".join(str(why).split())
        print(f"FAIL {self.name} {name}: {why}", flush=True)

    def finish(self):
        sys.exit(1 if self.failed else 0)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what} expected {want!r}, got {got!r}")
    return True


def near(got, want, tolerance, what=""):
    if not isinstance(got, (int, float)) or abs(got - want) > tolerance:
        raise AssertionError(f"{what} expected {want!r} ±{tolerance}, got {got!r}")
    return True


def raises(exc_types, fn, text=None):
    """fn() must raise one of exc_types, whose message contains text (if given)."""
    try:
        got = fn()
    except exc_types as e:
        if text is not None and text not in str(e):
            raise AssertionError(f"error {str(e)!r} does not contain {text!r}") from e
        return e
    raise AssertionError(f"expected {exc_types}, call returned {got!r}")


def poll(fn, timeout_s=EXPIRY_POLL_S, what="condition"):
    """Polls fn() until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if fn():
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s")
        time.sleep(0.02)


def restart_server(name="plain"):
    """Restarts a server instance of run.sh on the same port (it comes back empty)."""
    subprocess.run(
        [os.path.join(SUITE_DIR, "lib", "server.sh"), "restart", name],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def one_mib_bytes():
    """1 MiB that covers every byte value, so binary safety is tested too."""
    block = bytes(range(256))
    return (block * (1024 * 1024 // len(block)))[: 1024 * 1024]
