"""The log wait strategy of testcontainers (Go, Java, PHP) and Spring Boot's Docker Compose
support, against the hashd binary: start it as those tools start redis-server, wait for the
regex `.*Ready to accept connections.*` on its stdout (10 s, as a container start-up timeout
would allow), then PING it. Python standard library only.

    python3 ready_log.py        (HASHD_BIN, HASHD_STATE, HASHD_ROOT from run.sh)
"""

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

SUITE = "wait-strategy"
BIN = os.environ["HASHD_BIN"]
STATE = os.environ.get("HASHD_STATE", "/tmp")
ROOT = os.environ.get("HASHD_ROOT", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WAIT_S = 10.0
# testcontainers-java's RedisContainer / GenericContainer: Wait.forLogMessage(".*Ready to accept connections.*\\n", 1);
# Go's redis module: wait.ForLog("* Ready to accept connections"); Spring: the same regex.
READY = re.compile(r".*Ready to accept connections.*")
GO_READY = "* Ready to accept connections"

failures = 0


def report(check, why=None):
    global failures
    if why is None:
        print(f"PASS {SUITE} {check}", flush=True)
    else:
        failures += 1
        print(f"FAIL {SUITE} {check}: {why}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(proc):
    """Stdout lines up to the first matching READY, or None after WAIT_S."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WAIT_S
    buf, lines = b"", []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            return None, lines
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            return None, lines
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            lines.append(text)
            if READY.fullmatch(text):
                return text, lines


def ping(port, password=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if password:
            s.sendall(b"AUTH %s\r\n" % password.encode())
            if s.recv(64) != b"+OK\r\n":
                return "AUTH failed"
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = s.recv(64)
        return None if reply == b"+PONG\r\n" else f"PING answered {reply!r}"


def run(check, argv, port, password=None, env=None):
    proc = subprocess.Popen(argv, cwd=STATE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)
    t0 = time.monotonic()
    try:
        line, lines = wait_ready(proc)
        if line is None:
            report(check, f"no line matching {READY.pattern} within {WAIT_S:.0f}s; output: "
                          f"{lines[-5:]!r}")
            return
        if GO_READY not in line:
            report(check, f"{line!r} lacks Go's {GO_READY!r}")
            return
        print(f"INFO {SUITE} {check}: ready line after {1000 * (time.monotonic() - t0):.0f} ms: "
              f"{line}", flush=True)
        report(check, ping(port, password))
    except OSError as e:
        report(check, f"{type(e).__name__}: {e}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    port = free_port()
    # A plain `redis-server --port N` command line, at the default log level.
    run("bare command line", [BIN, "--port", str(port), "--save", ""], port)

    # What a container runs: the image's entrypoint turns `redis-server ...` into hashd
    # listening on every interface (hashd found on PATH, as in the image).
    entrypoint = os.path.join(ROOT, "docker", "entrypoint.sh")
    if os.path.exists(entrypoint):
        port = free_port()
        env = dict(os.environ, PATH=os.path.dirname(BIN) + os.pathsep + os.environ.get("PATH", ""))
        if os.path.basename(BIN) == "hashd":
            run("container entrypoint with requirepass",
                ["sh", entrypoint, "redis-server", "--port", str(port), "--save", "",
                 "--requirepass", "wait-pw"], port, password="wait-pw", env=env)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
