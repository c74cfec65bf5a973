#!/usr/bin/env bash
# Installs what dockfleet's demo and tests need, idempotently and without prompts:
# Debian packages (Docker engine, busybox-static, a Docker registry and htpasswd, etcd, nginx with its stream module, HAProxy, wrk, network tools), a Python
# virtualenv with maturin/pytest/mypy/docker-py/uvloop, and the Node binding's npm packages.
#   scripts/install-deps.sh [--no-python] [--no-node]
set -euo pipefail
cd "$(dirname "$0")/.."
want_python=1 want_node=1
for a in "$@"; do
  case $a in --no-python) want_python=0 ;; --no-node) want_node=0 ;; esac
done
log() { echo "[install-deps] $*" >&2; }

missing=()
need() { dpkg -s "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }
for p in docker.io busybox-static docker-registry apache2-utils iproute2 iptables openssl curl util-linux etcd-server nginx-light libnginx-mod-stream haproxy wrk protobuf-compiler; do need "$p"; done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Their init scripts may have started the packages' own daemons; the tests start their own instances.
  for pair in nginx-light:nginx haproxy:haproxy etcd-server:etcd; do
    case " ${missing[*]} " in *" ${pair%%:*} "*) pkill -x "${pair##*:}" 2>/dev/null || true ;; esac
  done
fi

command -v cargo >/dev/null || { log "cargo is missing: this machine kind ships Rust; install rustup first"; exit 1; }

if [ $want_python = 1 ]; then
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c 'import maturin, pytest, mypy, docker, prometheus_client, uvloop' 2>/dev/null; then
    log "pip install maturin pytest mypy docker prometheus_client uvloop"
    .venv/bin/pip install -q --disable-pip-version-check 'maturin>=1.9,<2' pytest mypy typing_extensions docker \
      prometheus_client uvloop
  fi
fi

if [ $want_node = 1 ]; then
  command -v node >/dev/null || { log "installing nodejs npm"; apt-get install -y -qq nodejs npm >/dev/null; }
  if [ ! -d bindings-node/node_modules/@napi-rs/cli ]; then
    log "npm install (bindings-node)"
    (cd bindings-node && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
log "ok"
