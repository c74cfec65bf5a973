#!/usr/bin/env bash
# dockfleet testbed: several real Docker engines on this one machine, each its own "host" with its own
# network namespace and address on a private bridge that only the testbed uses.
#
#   scripts/testbed.sh up [N]    bring everything up (idempotent): bridge, namespaces, N plain engines (default 3,
#                                or DOCKFLEET_TESTBED_ENGINES) plus the TLS engine, certificates, test images
#   scripts/testbed.sh down      stop the engines, remove namespaces and bridge (data kept; --purge drops it)
#   scripts/testbed.sh status    one line per engine
#   scripts/testbed.sh clean     leave any swarm, remove every container, unused network and volume (test.sh
#                                starts with it, so an interrupted run cannot disturb the next)
#   scripts/testbed.sh stop-engine NAME / start-engine NAME    for fault tests
#   scripts/testbed.sh partition NAME / heal NAME   cut a host off the bridge and back (its engine and
#                                containers keep running: a network partition, not a crash)
#   scripts/testbed.sh env       print shell exports (DOCKFLEET_TESTBED=…)
#
# Layout of the hosts (see ../shared/TESTBED.md for why it is built this way), for the default N=3:
#   df-1  10.250.0.11  tcp 2375 (plain)  role=manager zone=a
#   df-2  10.250.0.12  tcp 2375 (plain)  role=worker  zone=a
#   df-3  10.250.0.13  tcp 2375 (plain)  role=worker  zone=b      (df-K: 10.250.0.(10+K), zones alternate)
#   df-tls 10.250.0.60 tcp 2376 (TLS, client certificates required)  role=worker zone=b
#   registry 10.250.0.1:5443 (Debian's docker-registry on the bridge: TLS by the testbed's CA, which every engine
#            trusts through /etc/docker/certs.d, and basic auth; address, user and password in $STATE/registry/env)
# Traffic goes only to these addresses and to loopback. Nothing is routed off the bridge.
set -euo pipefail

STATE=${DOCKFLEET_TESTBED:-/var/lib/dockfleet-testbed}
RUN=/run/dockfleet-testbed
BRIDGE=dfbr0
SUBNET_PREFIX=10.250.0
BRIDGE_ADDR=$SUBNET_PREFIX.1
N_FILE=$STATE/engines
engine_count() {
  local n=${DOCKFLEET_TESTBED_ENGINES:-}
  [ -n "$n" ] || { [ -f "$N_FILE" ] && n=$(cat "$N_FILE"); }
  echo "${n:-3}"
}
set_engines() {
  local n=$1 k
  case $n in '' | *[!0-9]*) echo "N must be a number from 1 to 40" >&2; exit 2 ;; esac
  [ "$n" -ge 1 ] && [ "$n" -le 40 ] || { echo "N must be a number from 1 to 40" >&2; exit 2; }
  ENGINES=()
  for k in $(seq 1 "$n"); do ENGINES+=("df-$k"); done
  ENGINES+=(df-tls)
}
set_engines "$(engine_count)"
IMAGE=dockfleet/busybox:latest
IMAGE_HEALTH=dockfleet/busybox:health
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker

log() { echo "[testbed] $*" >&2; }

engine_index() { # df-K -> K, df-tls -> t (used in interface names)
  case $1 in
    df-tls) echo t ;;
    df-[0-9]*) echo "${1#df-}" ;;
    *) echo "unknown engine $1" >&2; exit 2 ;;
  esac
}
engine_addr() { [ "$1" = df-tls ] && echo "$SUBNET_PREFIX.60" || echo "$SUBNET_PREFIX.$((10 + ${1#df-}))"; }
engine_port() { [ "$1" = df-tls ] && echo 2376 || echo 2375; }
engine_sock() { echo "$RUN/$1.sock"; }
engine_bip() { [ "$1" = df-tls ] && echo "172.31.199.1/24" || echo "172.31.$((200 + ${1#df-})).1/24"; }
engine_labels() {
  case $1 in
    df-1) echo "role=manager zone=a" ;;
    df-tls) echo "role=worker zone=b tls=true" ;;
    *) [ $((${1#df-} % 2)) = 0 ] && echo "role=worker zone=a" || echo "role=worker zone=b" ;;
  esac
}

install_deps() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  dpkg -s busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
  command -v curl >/dev/null || missing+=(curl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_ADDR/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  local name i
  for name in "${ENGINES[@]}"; do
    i=$(engine_index "$name")
    if [ ! -e "/var/run/netns/$name" ]; then
      ip netns add "$name"
    fi
    if ! ip link show "dfv$i" >/dev/null 2>&1; then
      ip link add "dfv$i" type veth peer name "dfp$i"
      ip link set "dfp$i" netns "$name"
      ip link set "dfv$i" master "$BRIDGE"
    fi
    ip link set "dfv$i" up
    # Drop testbed links a previous layout left in this namespace (the same address on two links breaks
    # routing). Only our own dfp* peers: docker0 and container veths belong to the engine.
    local stale
    for stale in $(nsenter --net="/var/run/netns/$name" ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
      case $stale in "dfp$i") ;; dfp*) nsenter --net="/var/run/netns/$name" ip link del "$stale" 2>/dev/null || true ;; esac
    done
    nsenter --net="/var/run/netns/$name" ip link set lo up
    nsenter --net="/var/run/netns/$name" ip link set "dfp$i" up
    nsenter --net="/var/run/netns/$name" ip addr replace "$(engine_addr "$name")/24" dev "dfp$i"
  done
  # Traffic between testbed hosts crosses the bridge; an engine elsewhere may have set FORWARD to DROP.
  if iptables -S DOCKER-USER >/dev/null 2>&1; then
    iptables -C DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
      iptables -I DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  fi
  iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || true
}

gen_certs() {
  local d=$STATE/certs
  # The server certificate names df-tls's address; regenerate everything if that address changed.
  [ -f "$d/.done" ] && [ "$(cat "$d/.done")" = "$(engine_addr df-tls)" ] && return
  rm -rf "$d"
  log "generating TLS certificates in $d"
  mkdir -p "$d" && cd "$d"
  local ca
  for ca in ca other-ca; do
    openssl genrsa -out "$ca-key.pem" 2048 2>/dev/null
    openssl req -x509 -new -key "$ca-key.pem" -sha256 -days 3650 -subj "/CN=dockfleet testbed $ca" -out "$ca.pem"
  done
  # server certificate for df-tls, signed by ca
  openssl genrsa -out server-key.pem 2048 2>/dev/null
  openssl req -new -key server-key.pem -subj "/CN=df-tls" -out server.csr
  printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:df-tls,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
    "$(engine_addr df-tls)" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -sha256 \
    -extfile server.ext -out server-cert.pem 2>/dev/null
  # client certificate signed by ca (good) and one signed by other-ca (rejected by the engine)
  local who
  for who in client:ca other-client:other-ca; do
    local n=${who%%:*} c=${who##*:}
    openssl genrsa -out "$n-key.pem" 2048 2>/dev/null
    openssl req -new -key "$n-key.pem" -subj "/CN=$n" -out "$n.csr"
    printf 'extendedKeyUsage=clientAuth\n' >"$n.ext"
    openssl x509 -req -in "$n.csr" -CA "$c.pem" -CAkey "$c-key.pem" -CAcreateserial -days 3650 -sha256 \
      -extfile "$n.ext" -out "$n-cert.pem" 2>/dev/null
  done
  # DOCKER_CERT_PATH layouts (ca.pem, cert.pem, key.pem): the good one and one trusting another CA
  mkdir -p client other
  cp ca.pem client/ca.pem && cp client-cert.pem client/cert.pem && cp client-key.pem client/key.pem
  cp other-ca.pem other/ca.pem && cp client-cert.pem other/cert.pem && cp client-key.pem other/key.pem
  chmod 0644 ./*.pem client/*.pem other/*.pem
  engine_addr df-tls >.done
  cd - >/dev/null
}

engine_pid() {
  local pf=$RUN/$1.pid
  [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null && cat "$pf"
}

# The registry: the testbed's own, on the bridge address, for pull and push tests (no other registry is
# reachable here, and the network rule forbids trying one).
REGISTRY=$BRIDGE_ADDR:5443
REGISTRY_USER=dockfleet
REGISTRY_PASSWORD=testbed-registry-secret

registry_ping() { # 401 without credentials: it is up and asks for them
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE/certs/ca.pem" "https://$REGISTRY/v2/")" = 401 ]
}

start_registry() {
  local d=$STATE/registry c=$STATE/certs
  mkdir -p "$d/data" "$RUN" /var/log/dockfleet-testbed
  if [ ! -f "$d/cert.pem" ] || ! openssl verify -CAfile "$c/ca.pem" "$d/cert.pem" >/dev/null 2>&1; then
    log "generating the registry's certificate"
    openssl genrsa -out "$d/key.pem" 2048 2>/dev/null
    openssl req -new -key "$d/key.pem" -subj "/CN=dockfleet testbed registry" -out "$d/cert.csr"
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$BRIDGE_ADDR" >"$d/cert.ext"
    openssl x509 -req -in "$d/cert.csr" -CA "$c/ca.pem" -CAkey "$c/ca-key.pem" -CAcreateserial -days 3650 \
      -sha256 -extfile "$d/cert.ext" -out "$d/cert.pem" 2>/dev/null
  fi
  # Engines read a registry's CA from here at every pull and push (no restart).
  mkdir -p "/etc/docker/certs.d/$REGISTRY"
  cp "$c/ca.pem" "/etc/docker/certs.d/$REGISTRY/ca.crt"
  [ -s "$d/htpasswd" ] || htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$d/htpasswd" 2>/dev/null
  printf 'REGISTRY=%s\nREGISTRY_USER=%s\nREGISTRY_PASSWORD=%s\n' "$REGISTRY" "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$d/env"
  printf '%s\n' "version: 0.1" "log: {level: warn}" "storage:" "  filesystem: {rootdirectory: $d/data}" \
    "  delete: {enabled: true}" "http:" "  addr: $REGISTRY" "  tls: {certificate: $d/cert.pem, key: $d/key.pem}" \
    "auth:" "  htpasswd: {realm: dockfleet-testbed, path: $d/htpasswd}" >"$d/config.yml"
  local pf=$RUN/registry.pid n
  if [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null && registry_ping; then return; fi
  log "starting the registry at $REGISTRY"
  setsid docker-registry serve "$d/config.yml" </dev/null >>/var/log/dockfleet-testbed/registry.log 2>&1 &
  echo $! >"$pf"
  for n in $(seq 1 100); do registry_ping && return 0; sleep 0.1; done
  log "the registry did not answer; last log lines:"
  tail -20 /var/log/dockfleet-testbed/registry.log >&2
  return 1
}

stop_registry() {
  local pf=$RUN/registry.pid
  if [ -f "$pf" ]; then kill "$(cat "$pf")" 2>/dev/null || true; fi
  rm -f "$pf"
}

engine_ping() { curl -sf --max-time 2 --unix-socket "$(engine_sock "$1")" http://x/_ping >/dev/null 2>&1; }

# Docker 20.10 can leave a swarm without stopping its network agent, whose gossip listener keeps port 7946:
# the engine's next swarm join then fails to start an agent ("address already in use") and hangs. Seen on
# the testbed after a quick join and leave. An engine in no swarm that still listens there is restarted.
agent_leaked() {
  curl -sf --max-time 2 --unix-socket "$(engine_sock "$1")" http://x/info |
    grep -q '"LocalNodeState":"inactive"' &&
    nsenter --net="/var/run/netns/$1" ss -Hltn 'sport = :7946' | grep -q .
}

start_engine() {
  local name=$1 i
  i=$(engine_index "$name")
  mkdir -p "$STATE/$name" "$RUN/$name" /var/log/dockfleet-testbed
  local args=(
    --data-root "$STATE/$name/data" --exec-root "$RUN/$name/exec" --pidfile "$RUN/$name.pid"
    -H "unix://$(engine_sock "$name")" --bip "$(engine_bip "$name")"
    --iptables=false --ip-masq=false --userland-proxy=true --storage-driver="$(storage_driver)"
  )
  if [ "$name" = df-tls ]; then
    args+=(--tlsverify --tlscacert "$STATE/certs/ca.pem" --tlscert "$STATE/certs/server-cert.pem"
      --tlskey "$STATE/certs/server-key.pem" -H "tcp://$(engine_addr "$name"):2376")
  else
    args+=(--tls=false -H "tcp://$(engine_addr "$name"):2375")
  fi
  local l
  for l in $(engine_labels "$name"); do args+=(--label "$l"); done
  # Swarm mode's agent pulls a service's image before every task start even when the node has it; there is
  # no registry here (and the network rule forbids trying one), so tasks use the local copy that dockfleet
  # carries to each node. The variable is part of the recorded arguments so older engines get restarted.
  local env=(DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1)
  # Already running with these very arguments: nothing to do. Running with others: restart it.
  if engine_pid "$name" >/dev/null && engine_ping "$name"; then
    if [ "$(cat "$RUN/$name.args" 2>/dev/null)" = "${env[*]} ${args[*]}" ] &&
      nsenter --net="/var/run/netns/$name" ip link show docker0 >/dev/null 2>&1; then
      if ! agent_leaked "$name"; then return; fi
      log "engine $name left a swarm but its network agent still runs (port 7946): restarting it"
    fi
    stop_engine "$name" # other arguments, its bridge is gone, or a leaked agent: start it afresh
  fi
  echo "${env[*]} ${args[*]}" >"$RUN/$name.args"
  log "starting engine $name at $(engine_addr "$name"):$(engine_port "$name")"
  rm -f "$RUN/$name.pid"
  setsid nsenter --net="/var/run/netns/$name" env "${env[@]}" dockerd "${args[@]}" \
    </dev/null >>"/var/log/dockfleet-testbed/$name.log" 2>&1 &
}

# overlay2, as on real Docker hosts, where the kernel mounts an overlay on the state directory's filesystem
# (a container create then makes no copy of the image); vfs, which copies every layer, where it cannot.
# STORAGE_DRIVER in the environment chooses instead.
storage_driver() {
  if [ -n "${STORAGE_DRIVER:-}" ]; then echo "$STORAGE_DRIVER"; return; fi
  local d=$STATE/.overlay-probe driver=vfs
  mkdir -p "$d"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    umount "$d/merged"
    driver=overlay2
  fi
  rm -rf "$d"
  echo "$driver"
}

wait_engine() {
  local name=$1 n
  for n in $(seq 1 300); do
    engine_ping "$name" && return 0
    sleep 0.2
  done
  log "engine $name did not answer; last log lines:"
  tail -20 "/var/log/dockfleet-testbed/$name.log" >&2
  return 1
}

stop_engine() {
  local name=$1 pid n
  pid=$(engine_pid "$name") || return 0
  log "stopping engine $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for n in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
}

build_images() {
  local ctx=$STATE/image
  mkdir -p "$ctx"
  cp /bin/busybox "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/sh", "-c", "mkdir -p /tmp /www /etc && echo 'root:x:0:0:root:/:/bin/sh' > /etc/passwd && echo ok > /www/index.html"]
CMD ["sh"]
EOF
  # Healthy unless /tmp/unhealthy exists, so tests can turn health off and on.
  cat >"$ctx/Dockerfile.health" <<EOF
FROM $IMAGE
HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["sh", "-c", "test ! -f /tmp/unhealthy"]
EOF
  local name
  for name in "${ENGINES[@]}"; do
    local h="unix://$(engine_sock "$name")"
    if ! DOCKER_HOST=$h "$DOCKER" image inspect "$IMAGE_HEALTH" >/dev/null 2>&1; then
      log "building $IMAGE and $IMAGE_HEALTH on $name"
      DOCKER_BUILDKIT=0 DOCKER_HOST=$h "$DOCKER" build -q -t "$IMAGE" "$ctx" >/dev/null
      DOCKER_BUILDKIT=0 DOCKER_HOST=$h "$DOCKER" build -q -t "$IMAGE_HEALTH" -f "$ctx/Dockerfile.health" "$ctx" >/dev/null
    fi
  done
}

write_inventory() {
  # The testbed describes itself in dockfleet's own inventory format; every test suite loads this file.
  local f=$STATE/fleet.toml
  {
    echo "# written by scripts/testbed.sh; the testbed's engines as a dockfleet fleet"
    echo "[defaults]"
    echo "connect_timeout_ms = 3000"
    echo "request_timeout_ms = 30000"
    local name
    for name in "${ENGINES[@]}"; do
      echo
      echo "[[hosts]]"
      echo "name = \"$name\""
      if [ "$name" = df-tls ]; then
        echo "address = \"tcp://$(engine_addr "$name"):2376\""
        echo "tls = { ca = \"$STATE/certs/ca.pem\", cert = \"$STATE/certs/client-cert.pem\", key = \"$STATE/certs/client-key.pem\" }"
      else
        echo "address = \"tcp://$(engine_addr "$name"):2375\""
        echo "insecure = true"
      fi
      local l labels=""
      for l in $(engine_labels "$name"); do labels+="${labels:+, }${l%%=*} = \"${l#*=}\""; done
      echo "labels = { $labels }"
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

cmd_up() {
  local want=${1:-$(engine_count)}
  if [ -f "$N_FILE" ] && [ "$(cat "$N_FILE")" != "$want" ]; then
    log "engine count changes from $(cat "$N_FILE") to $want: taking the old layout down first"
    cmd_down
  fi
  set_engines "$want"
  install_deps
  mkdir -p "$STATE" "$RUN"
  echo "$want" >"$N_FILE"
  setup_network
  gen_certs
  local name
  for name in "${ENGINES[@]}"; do start_engine "$name"; done
  for name in "${ENGINES[@]}"; do wait_engine "$name"; done
  build_images
  start_registry
  write_inventory
  log "up: ${#ENGINES[@]} engines and a registry at $REGISTRY; inventory at $STATE/fleet.toml"
}

cmd_down() {
  local name i
  stop_registry
  for name in "${ENGINES[@]}"; do stop_engine "$name"; done
  for name in "${ENGINES[@]}"; do
    i=$(engine_index "$name")
    ip link del "dfv$i" 2>/dev/null || true
    ip netns del "$name" 2>/dev/null || true
  done
  rm -f "$N_FILE"
  ip link del "$BRIDGE" 2>/dev/null || true
  if [ "${1:-}" = --purge ]; then
    rm -rf "$STATE"
  fi
  log "down"
}

cmd_clean() { # containers, networks and volumes left by interrupted runs; images stay
  local name h ids
  for name in "${ENGINES[@]}"; do
    engine_ping "$name" || continue
    h="unix://$(engine_sock "$name")"
    # A swarm left by an interrupted run (its tasks would come back after the containers are removed).
    if [ "$(/usr/bin/docker -H "$h" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != inactive ]; then
      /usr/bin/docker -H "$h" swarm leave --force >/dev/null 2>&1 || true
    fi
    ids=$(/usr/bin/docker -H "$h" ps -aq)
    [ -z "$ids" ] || /usr/bin/docker -H "$h" rm -f $ids >/dev/null
    /usr/bin/docker -H "$h" network prune -f >/dev/null
    /usr/bin/docker -H "$h" volume prune -f >/dev/null
  done
  log "clean: no swarm, container, unused network or volume left on the testbed engines"
}

cmd_status() {
  local name rc=0
  for name in "${ENGINES[@]}"; do
    if engine_ping "$name"; then
      echo "$name up   $(engine_addr "$name"):$(engine_port "$name") $(engine_labels "$name")"
    else
      echo "$name down $(engine_addr "$name"):$(engine_port "$name")"
      rc=1
    fi
  done
  if registry_ping; then echo "registry up   $REGISTRY"; else echo "registry down $REGISTRY"; rc=1; fi
  return $rc
}

case ${1:-} in
  up) cmd_up "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  stop-engine) stop_engine "${2:?engine name}" ;;
  start-engine)
    start_engine "${2:?engine name}"
    wait_engine "$2"
    ;;
  partition) ip link set "dfv$(engine_index "${2:?engine name}")" down ;;
  heal) ip link set "dfv$(engine_index "${2:?engine name}")" up ;;
  env) echo "export DOCKFLEET_TESTBED=$STATE" ;;
  *)
    echo "usage: $0 up [N]|down [--purge]|status|stop-engine NAME|start-engine NAME|partition NAME|heal NAME|clean|env" >&2
    exit 2
    ;;
esac
