"""redis-cli's interactive mode in a pseudo-terminal, as a person uses it.

At start redis-cli sends COMMAND DOCS and builds its hint and completion tables from the reply
(a malformed reply aborts it with an assertion). Then: hints while typing, Tab completion, a
command, a server restart under the open session (redis-cli reconnects on the next command),
and `quit` with exit status 0. Prints PASS/FAIL lines for run.sh.

    python3 pty_session.py SUITE-NAME      (HASHD_PORT, HASHD_STATE, HASHD_BIN from run.sh)
"""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

SUITE = sys.argv[1] if len(sys.argv) > 1 else "redis-cli"
PORT = os.environ["HASHD_PORT"]
SUITE_DIR = os.environ.get(
    "HASHD_SUITE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
# Longest wait for redis-cli to print something we expect.
READ_TIMEOUT_S = 5.0
ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
failed = 0


def report(ok, name, why=""):
    global failed
    if ok:
        print(f"PASS {SUITE} {name}", flush=True)
    else:
        failed += 1
        why = " ".join(str(why).split())[:600]
        print(f"FAIL {SUITE} {name}: {why}", flush=True)


class Term:
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ["TERM"] = "xterm"
            os.execvp(argv[0], argv)
        # A window size, so that linenoise does not probe the terminal with escape queries.
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.buf = b""

    def read_for(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            if b"\x1b[6n" in chunk:  # cursor position query: answer like a terminal would
                os.write(self.fd, b"\x1b[1;1R")
            self.buf += chunk

    def expect(self, pattern, timeout=READ_TIMEOUT_S):
        """Waits until the screen text (escape codes removed) since the last mark matches."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = self.text()
            if rx.search(text):
                return True
            if time.monotonic() > end:
                return False
            self.read_for(0.05)

    def text(self):
        return ANSI.sub(b"", self.buf).decode("utf-8", "replace")

    def mark(self):
        self.buf = b""

    def send(self, s, per_char_s=0.0):
        for ch in s if per_char_s else [s]:
            os.write(self.fd, ch.encode())
            if per_char_s:
                self.read_for(per_char_s)

    def wait_exit(self, timeout=READ_TIMEOUT_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read_for(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        return None


t = Term(["redis-cli", "-p", PORT])
prompt = rf"127\.0\.0\.1:{PORT}> "
report(t.expect(prompt), "interactive/prompt", t.text())

# Typing a command name shows its argument hint (from COMMAND DOCS, or redis-cli's own table
# when the server answers COMMAND DOCS with an error).
t.mark()
t.send("hset ", per_char_s=0.05)
t.read_for(0.3)
report("field" in t.text(), "interactive/hset-hint", t.text())
t.send("compat:cli:i f v\r")
report(t.expect(r"\(integer\) [01]"), "interactive/command", t.text())

# HEXPIRE is not in redis-cli 7.0's built-in table: a hint here comes from hashd's COMMAND DOCS.
t.expect(prompt)
t.mark()
t.send("hexpire ", per_char_s=0.05)
t.read_for(0.3)
hint = "FIELDS" in t.text().upper()
print(f"INFO {SUITE} interactive/hexpire-hint-from-command-docs: {'shown' if hint else 'not shown'}")
t.send("\x15")  # Ctrl-U: clear the line

# Tab completes a command name.
t.mark()
t.send("hgetal")
t.read_for(0.2)
t.send("\t")
t.read_for(0.3)
report("hgetall" in t.text().lower(), "interactive/tab-completion", t.text())
t.send("\x15")

# The server restarts under the open session; the next command reconnects.
t.mark()
t.send("hset compat:cli:r f before\r")
t.expect(r"\(integer\) [01]")
subprocess.run([os.path.join(SUITE_DIR, "lib", "server.sh"), "restart", "plain"], check=True,
               stdout=subprocess.DEVNULL)
ok = False
for attempt in range(3):
    t.mark()
    t.send("hget compat:cli:r f\r")
    if t.expect(r"\(nil\)", timeout=3):
        ok = True
        break
report(ok, "interactive/reconnect-after-restart", t.text())

t.mark()
t.send("quit\r")
code = t.wait_exit()
report(code == 0, "interactive/quit-exit-0", f"exit {code}: {t.text()}")
report("Assertion" not in t.text(), "interactive/no-assertion", t.text())

sys.exit(1 if failed else 0)
