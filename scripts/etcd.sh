#!/usr/bin/env bash
# A local etcd (Debian's etcd-server) for dockfleet's discovery tests, on loopback only.
#
#   scripts/etcd.sh up       start it if it is not running (idempotent); prints nothing else
#   scripts/etcd.sh stop     stop it (data kept), for fault tests
#   scripts/etcd.sh start    start it again and wait until it answers
#   scripts/etcd.sh down     stop it and drop its data
#   scripts/etcd.sh status   "up" or "down", and the endpoint
#
# Client endpoint: http://127.0.0.1:23790 (peer 127.0.0.1:23800), data in $DOCKFLEET_TESTBED/etcd.
set -euo pipefail

STATE=${DOCKFLEET_TESTBED:-/var/lib/dockfleet-testbed}
DATA=$STATE/etcd
RUN=/run/dockfleet-testbed
PID=$RUN/etcd.pid
LOG=/var/log/dockfleet-testbed/etcd.log
ENDPOINT=http://127.0.0.1:23790

log() { echo "[etcd] $*" >&2; }
alive() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }
healthy() { curl -sf --max-time 1 "$ENDPOINT/health" 2>/dev/null | grep -q '"health":"true"'; }

start() {
  if alive && healthy; then return 0; fi
  mkdir -p "$DATA" "$RUN" "$(dirname "$LOG")"
  command -v etcd >/dev/null || { log "etcd is missing: run scripts/install-deps.sh"; exit 1; }
  log "starting etcd at $ENDPOINT"
  # Short heartbeat and election timeouts: a single local member, and leases as short as 1 s.
  nohup etcd --name dockfleet --data-dir "$DATA" \
    --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster dockfleet=http://127.0.0.1:23800 \
    --heartbeat-interval 50 --election-timeout 250 >>"$LOG" 2>&1 &
  echo $! >"$PID"
  for _ in $(seq 1 100); do healthy && return 0; sleep 0.1; done
  log "etcd did not become healthy; see $LOG"
  exit 1
}

stop() {
  alive || { rm -f "$PID"; return 0; }
  local pid; pid=$(cat "$PID")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID"
}

case ${1:-} in
  up | start) start ;;
  stop) stop ;;
  down) stop; rm -rf "$DATA" ;;
  status) if alive && healthy; then echo "up $ENDPOINT"; else echo "down $ENDPOINT"; exit 1; fi ;;
  *) echo "usage: $0 up|stop|start|down|status" >&2; exit 2 ;;
esac
