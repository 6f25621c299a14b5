"""Validates the container setup without a container engine (none runs here).

Checks the Dockerfile's shape (multi-stage, slim runtime, non-root user, EXPOSE 6379, /data,
HEALTHCHECK, entrypoint), then runs what the image would run: docker/entrypoint.sh with the
image's default command and with docker-compose.yml's command and environment, hashd from
HASHD_BIN standing in for /usr/local/bin/hashd (and redis-server). It checks the server listens
on 0.0.0.0, serves, and that both healthchecks pass (and fail on a wrong password). Also runs
the redis-server flags compose files commonly pass. Not covered: `docker build` itself, the
apt-get/useradd steps, file ownership and the HEALTHCHECK timing (they need an engine).

    python docker_config.py      (HASHD_BIN, HASHD_ROOT from run.sh; needs PyYAML)
"""

import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.environ.get("HASHD_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HASHD_BIN = os.environ["HASHD_BIN"]
SUITE = "docker-config"
# Longest wait for a started server to listen.
START_TIMEOUT_S = 10.0
failed = 0


def report(name, why=None):
    global failed
    if why is None:
        print(f"PASS {SUITE} {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {SUITE} {name}: {' '.join(str(why).split())[:600]}", flush=True)


def check(name, fn):
    try:
        why = fn()
    except Exception as e:  # noqa: BLE001 - any exception fails the check
        why = f"{type(e).__name__}: {e}"
    report(name, why)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listen_addresses(port):
    """IPv4 addresses with a listening socket on port, from /proc/net/tcp."""
    found = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            addr, st = parts[1], parts[3]
            ip_hex, port_hex = addr.split(":")
            if st == "0A" and int(port_hex, 16) == port:
                ip = ".".join(str(int(ip_hex[i:i + 2], 16)) for i in (6, 4, 2, 0))
                found.append(ip)
    return found


# ---- the files --------------------------------------------------------------------------------
def dockerfile_instructions():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


INSTR = dockerfile_instructions()
final = INSTR[max(i for i, (w, _) in enumerate(INSTR) if w == "FROM"):]


def last(word, seq=final):
    vals = [r for w, r in seq if w == word]
    return vals[-1] if vals else None


def t_multistage():
    froms = [r for w, r in INSTR if w == "FROM"]
    if len(froms) < 2:
        return f"expected a build stage and a runtime stage, FROMs: {froms}"
    if "slim" not in froms[-1] and "distroless" not in froms[-1] and "alpine" not in froms[-1]:
        return f"runtime stage is not a small base: {froms[-1]}"
    if not any("--from=" in r for w, r in final if w == "COPY"):
        return "runtime stage copies nothing from the build stage"
    return None


def t_non_root():
    user = last("USER")
    return None if user and user.split(":")[0] not in ("root", "0") else f"USER is {user!r}"


def t_expose():
    return None if last("EXPOSE") == "6379" else f"EXPOSE {last('EXPOSE')!r}"


def t_data_dir():
    if last("WORKDIR") != "/data":
        return f"WORKDIR {last('WORKDIR')!r}"
    vol = last("VOLUME") or ""
    return None if "/data" in vol else f"VOLUME {vol!r}"


def t_entrypoint_file():
    ep = os.path.join(ROOT, "docker", "entrypoint.sh")
    if not os.stat(ep).st_mode & stat.S_IXUSR:
        return "docker/entrypoint.sh is not executable"
    if not any(w == "COPY" and r.startswith("docker/entrypoint.sh ") for w, r in final):
        return "docker/entrypoint.sh is not copied into the image"
    ignored = open(os.path.join(ROOT, ".dockerignore")).read().split()
    for needed in ("src/", "Cargo.toml", "Cargo.lock", "docker/"):
        if needed in ignored or needed.rstrip("/") in ignored:
            return f".dockerignore excludes {needed}, which the build needs"
    return None


def healthcheck_cmd():
    hc = last("HEALTHCHECK")
    m = re.search(r"\bCMD\s+(.*)$", hc or "")
    return m.group(1) if m else None


def t_healthcheck_present():
    cmd = healthcheck_cmd()
    return None if cmd and "redis-cli" in cmd else f"HEALTHCHECK {last('HEALTHCHECK')!r}"


def t_version():
    out = subprocess.run([HASHD_BIN, "--version"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0 or not out.stdout.strip():
        return f"hashd --version exited {out.returncode}: {out.stdout} {out.stderr}"
    return None


for name, fn in [
    ("dockerfile/multi-stage-small-runtime", t_multistage),
    ("dockerfile/non-root-user", t_non_root),
    ("dockerfile/expose-6379", t_expose),
    ("dockerfile/data-dir", t_data_dir),
    ("dockerfile/entrypoint", t_entrypoint_file),
    ("dockerfile/healthcheck", t_healthcheck_present),
    ("binary/--version", t_version),
]:
    check(name, fn)

# ---- running what the image runs ------------------------------------------------------------
bindir = tempfile.mkdtemp(prefix="hashd-image-bin.")
for name in ("hashd", "redis-server"):
    os.symlink(os.path.abspath(HASHD_BIN), os.path.join(bindir, name))
ENTRYPOINT = os.path.join(ROOT, "docker", "entrypoint.sh")
BASE_ENV = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
BASE_ENV.pop("REDISCLI_AUTH", None)
# Stands in for the image's WORKDIR /data.
DATA_DIR = tempfile.mkdtemp(prefix="hashd-image-data.")


class Server:
    def __init__(self, argv, port, env=None):
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, env=env or BASE_ENV, cwd=DATA_DIR, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not listen_addresses(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise RuntimeError(f"{shlex.join(argv)} did not listen on {port}: "
                                   f"{self.log.read().decode(errors='replace')[-400:]}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def cli(port, *args, env=None):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], env=env or BASE_ENV,
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def sh(cmd, env):
    return subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=10).returncode


def image_command(extra):
    """ENTRYPOINT + CMD as docker runs them, with `extra` replacing CMD when given."""
    ep = yaml.safe_load(last("ENTRYPOINT"))
    cmd = yaml.safe_load(last("CMD"))
    ep = [ENTRYPOINT if a == "docker-entrypoint.sh" else a for a in ep]
    return ep + (extra if extra is not None else cmd)


def t_default_command():
    port = free_port()
    # The image's CMD plus --port (6379 may be taken on this machine).
    with Server(image_command(yaml.safe_load(last("CMD")) + ["--port", str(port)]), port):
        addrs = listen_addresses(port)
        if addrs != ["0.0.0.0"]:
            return f"listening on {addrs}, expected 0.0.0.0 only"
        if cli(port, "ping") != "PONG":
            return "PING failed"
        env = dict(BASE_ENV, HASHD_PORT=str(port))
        if sh(healthcheck_cmd(), env) != 0:
            return "the Dockerfile HEALTHCHECK failed against a healthy server"
    return None


def t_default_port_6379():
    if listen_addresses(6379):
        print(f"INFO {SUITE} image-default-port: 6379 is taken on this machine; checked with --port instead")
        return None
    with Server(image_command(None), 6379):
        return None if cli(6379, "ping") == "PONG" else "PING on 6379 failed"


def t_flags_pass_through():
    port = free_port()
    argv = image_command(["--port", str(port), "--requirepass", "pw", "--appendonly", "yes", "--save", ""])
    with Server(argv, port):
        if listen_addresses(port) != ["0.0.0.0"]:
            return f"listening on {listen_addresses(port)}"
        if cli(port, "--no-auth-warning", "-a", "pw", "hset", "k", "f", "v") != "1":
            return "HSET with the password failed"
        # Dockerfile HEALTHCHECK without the password: NOAUTH still means "serving".
        if sh(healthcheck_cmd(), dict(BASE_ENV, HASHD_PORT=str(port))) != 0:
            return "HEALTHCHECK failed on a password-protected server"
    return None


def t_redis_server_prefix():
    port = free_port()
    with Server(image_command(["redis-server", "--port", str(port), "--appendonly", "yes"]), port):
        return None if cli(port, "ping") == "PONG" else "PING failed"


def t_explicit_bind_wins():
    port = free_port()
    with Server(image_command(["hashd", "--port", str(port), "--bind", "127.0.0.1"]), port):
        addrs = listen_addresses(port)
        return None if addrs == ["127.0.0.1"] else f"listening on {addrs}"


def t_data_survives_restart():
    # As with the official image: the server works in /data, so its snapshot (Redis's
    # default save points, and the save on SIGTERM) lands in the volume, and a restarted
    # container loads it.
    port = free_port()
    argv = image_command(yaml.safe_load(last("CMD")) + ["--port", str(port)])
    snapshot = os.path.join(DATA_DIR, "dump.rdb")
    try:
        with Server(argv, port):
            if cli(port, "hset", "bike:1", "model", "Deimos") != "1":
                return "HSET failed"
        if not os.path.exists(snapshot):
            return "no dump.rdb in the data directory after SIGTERM"
        with Server(argv, port):
            got = cli(port, "hget", "bike:1", "model")
            if got != "Deimos":
                return f"after a restart HGET gave {got!r}"
    finally:
        if os.path.exists(snapshot):
            os.remove(snapshot)
    return None


for name, fn in [
    ("image/data-survives-restart", t_data_survives_restart),
    ("image/default-command-binds-0.0.0.0", t_default_command),
    ("image/default-port-6379", t_default_port_6379),
    ("image/redis-server-flags-pass-through", t_flags_pass_through),
    ("image/redis-server-name", t_redis_server_prefix),
    ("image/explicit-bind-wins", t_explicit_bind_wins),
]:
    check(name, fn)


# ---- docker-compose.yml ---------------------------------------------------------------------
def interpolate(value, env):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ in one string."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        v = env.get(name)
        if op == ":?" and not v:
            raise ValueError(f"{name} is required: {arg}")
        if op == ":-" and not v:
            return arg
        return v or ""
    return re.sub(r"\$\$|\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", sub, value)


compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
svc = compose["services"]["hashd"]
PW = "compose-secret"
compose_env = {"HASHD_PASSWORD": PW}


def t_compose_requires_password():
    try:
        [interpolate(a, {}) for a in svc["command"]]
    except ValueError:
        return None
    return "the compose command starts without HASHD_PASSWORD"


def t_compose_service():
    port = free_port()
    command = [interpolate(a, compose_env) for a in svc["command"]]
    if "--requirepass" not in command:
        return f"compose command has no --requirepass: {command}"
    container_env = {k: interpolate(str(v), compose_env) for k, v in (svc.get("environment") or {}).items()}
    with Server(image_command(command + ["--port", str(port)]), port):
        if listen_addresses(port) != ["0.0.0.0"]:
            return f"listening on {listen_addresses(port)}"
        test = svc["healthcheck"]["test"]
        if test[0] != "CMD-SHELL":
            return f"unexpected healthcheck form {test}"
        hc = test[1].replace("-p 6379", f"-p {port}")
        if sh(hc, dict(BASE_ENV, **container_env)) != 0:
            return f"compose healthcheck failed on a healthy server: {hc}"
        if sh(hc, dict(BASE_ENV, REDISCLI_AUTH="wrong")) == 0:
            return "compose healthcheck passes with a wrong password (it checks nothing)"
        smoke = compose["services"]["smoke"]
        argv = [a for a in smoke["entrypoint"] + smoke["command"]]
        argv = [("127.0.0.1" if a == "hashd" else str(port) if a == "6379" else a) for a in argv]
        smoke_env = {k: interpolate(str(v), compose_env) for k, v in smoke["environment"].items()}
        out = subprocess.run(argv, env=dict(BASE_ENV, **smoke_env), capture_output=True, text=True, timeout=10)
        if out.stdout.strip() != "2":
            return f"smoke service printed {out.stdout!r} {out.stderr!r}"
    return None


check("compose/password-required", t_compose_requires_password)
check("compose/service-and-healthcheck", t_compose_service)

# Flags that docker-compose files commonly pass to redis-server (shared/spec/clients.md §4).
COMMON_FLAGS = [
    ["--appendonly", "yes"],
    ["--save", "60", "1", "--loglevel", "warning"],
    ["--save", ""],
    ["--databases", "2"],
    ["--dir", DATA_DIR],  # /data in the image
    ["--protected-mode", "no"],
    ["--tcp-keepalive", "300", "--timeout", "0"],
]
for flags in COMMON_FLAGS:
    def t_flags(flags=flags):
        port = free_port()
        with Server(image_command(flags + ["--port", str(port)]), port):
            return None if cli(port, "ping") == "PONG" else "PING failed"
    label = " ".join("''" if not a else "/data" if a == DATA_DIR else a for a in flags)
    check("redis-server-flags/" + label, t_flags)



def t_maxmemory_flags_bound_the_cache():
    # The docker-compose cache line: the bound and the policy are in force.
    port = free_port()
    with Server(image_command(["--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru",
                               "--port", str(port)]), port):
        got = (cli(port, "config", "get", "maxmemory"),
               cli(port, "config", "get", "maxmemory-policy"))
        want = ("maxmemory\n268435456", "maxmemory-policy\nallkeys-lru")
        return None if got == want else f"got {got!r}"


check("redis-server-flags/--maxmemory 256mb --maxmemory-policy allkeys-lru", t_maxmemory_flags_bound_the_cache)


def t_unimplemented_flags_refused():
    # Client eviction is not implemented: asking for it must fail loudly, naming it.
    out = subprocess.run(image_command(["--maxmemory-clients", "10mb",
                                        "--port", str(free_port())]),
                         env=BASE_ENV, cwd=DATA_DIR, capture_output=True, text=True, timeout=20)
    if out.returncode != 1 or "maxmemory-clients" not in out.stderr:
        return f"exit {out.returncode}, stderr {out.stderr!r}"
    return None


check("redis-server-flags/--maxmemory-clients 10mb refused", t_unimplemented_flags_refused)

sys.exit(1 if failed else 0)
