#!/usr/bin/env bash
# Installs everything the client compatibility suite (tests/clients/run.sh) and the runnable
# examples (examples/) need, at pinned versions. Idempotent: a second run only checks.
#
# Works non-interactively as root on a fresh Debian 12 machine that reaches only the package
# registries (Debian, PyPI, npm). Needs python3 (3.9+) with venv/pip and Node.js >= 20 with
# npm: both are on the project's machines; if node is missing, Debian's nodejs is installed.
#
#   Debian:  redis-tools (redis-cli 7.x), php-cli, php-redis (phpredis 5.3.x),
#            php-nrk-predis (Predis 1.1.x)
#   PyPI:    redis==8.1.0, hiredis==3.5.0, PyYAML==6.0.3   (venv: tests/clients/.venv)
#   npm:     redis@6.3.1, ioredis@6.0.0     (tests/clients/node, npm ci from package-lock.json)
#            redis@6.3.1                    (examples/node, npm ci from package-lock.json)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

REDIS_PY_VERSION=8.1.0
HIREDIS_VERSION=3.5.0
# Only for reading docker-compose.yml in the container-configuration test.
PYYAML_VERSION=6.0.3

export DEBIAN_FRONTEND=noninteractive
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "install.sh: $*"; }

# --- Debian packages ---------------------------------------------------------------------------
# openssl: the TLS suite makes its test certificates with it.
apt_pkgs=(redis-tools php-cli php-redis php-nrk-predis openssl)
missing=()
for p in "${apt_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ! command -v python3 >/dev/null 2>&1; then missing+=(python3 python3-venv python3-pip); fi
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The suite is written against these major versions; say so loudly if Debian moved on.
redis-cli --version
php -r 'echo "php ", PHP_VERSION, ", phpredis ", phpversion("redis"), PHP_EOL;'
predis_ver="$(dpkg-query -W -f='${Version}' php-nrk-predis)"
echo "predis (php-nrk-predis) $predis_ver"
case "$(redis-cli --version)" in *" 7."*) ;; *) say "WARNING: expected redis-cli 7.x" ;; esac
case "$(php -r 'echo phpversion("redis");')" in 5.3.*) ;; *) say "WARNING: expected phpredis 5.3.x" ;; esac
case "$predis_ver" in 1.1.*) ;; *) say "WARNING: expected Predis 1.1.x" ;; esac

# --- Python: redis-py 8 with hiredis, in a venv -------------------------------------------------
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 needs python3-venv for ensurepip.
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
fi
want="redis==$REDIS_PY_VERSION hiredis==$HIREDIS_VERSION PyYAML==$PYYAML_VERSION"
have="$("$venv/bin/python" -m pip freeze 2>/dev/null | grep -Ei '^(redis|hiredis|pyyaml)==' | tr 'A-Z' 'a-z' | LC_ALL=C sort | tr '\n' ' ' || true)"
if [ "$have" != "hiredis==$HIREDIS_VERSION pyyaml==$PYYAML_VERSION redis==$REDIS_PY_VERSION " ]; then
  say "pip install $want"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $want
fi
"$venv/bin/python" -c 'import redis, hiredis, yaml; print("redis-py", redis.__version__, "hiredis", hiredis.__version__, "PyYAML", yaml.__version__)'

# --- Node.js: node-redis 6 and ioredis 6 -------------------------------------------------------
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  say "WARNING: node $(node --version) is older than node-redis 6 asks for (>= 20)"
fi
npm_ci() {
  local dir="$1"
  # npm ci wipes node_modules; skip it when the installed tree already matches the lock file.
  if [ -f "$dir/node_modules/.package-lock.json" ] &&
    (cd "$dir" && npm ls --omit=dev >/dev/null 2>&1) &&
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
npm_ci "$here/node"
npm_ci "$root/examples/node"
(cd "$here/node" && node -p '"node " + process.version + ", redis " + require("redis/package.json").version + ", ioredis " + require("ioredis/package.json").version')

say "done"
