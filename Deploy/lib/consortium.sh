# Shared by the demo scripts: build mpcnode, write node configurations, start and stop daemons.
# Source it after setting DEMO (the folder) and BASE_PORT; NODES lists "id:role" in port order.

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# build_mpcnode [release]: the debug build unless asked for the release one (benchmarks).
build_mpcnode() {
  Deploy/install-dependencies.sh
  local configuration=${1:-debug}
  swift build -c "$configuration" --product mpcnode 2>&1 | grep -E "error|Build complete" || true
  BIN="$(swift build -c "$configuration" --show-bin-path)/mpcnode"
  [ -x "$BIN" ] || { echo "build failed: $BIN missing" >&2; exit 1; }
}
mpcnode() { "$BIN" "$@"; }

# peers ID: every node of NODES but ID, as YAML lines.
peers() {
  local i=0
  for n in $NODES; do
    [ "${n%%:*}" = "$1" ] || echo "  ${n%%:*}: 127.0.0.1:$((BASE_PORT + i))"
    i=$((i + 1))
  done
}

# node_config ID POLICY: writes $DEMO/ID.yaml.
node_config() {
  local i=0 port=""
  for n in $NODES; do [ "${n%%:*}" = "$1" ] && port=$((BASE_PORT + i)); i=$((i + 1)); done
  cat > "$DEMO/$1.yaml" <<YAML
node_id: $1
listen: 127.0.0.1:$port
data_dir: data/$1
tls:
  certificate: pki/$1.pem
  private_key: pki/$1-key.pem
  ca_certificate: pki/ca.pem
peers:
$(peers "$1")
$2
YAML
}

# workers_config BANK PEER: BANK's workers: section (local worker processes on loopback; its certificate
# from `mpcnode node init --role worker` + `mpcnode ca issue --role worker`), ports BASE_PORT+100… for
# bank-a's workers, +120… for bank-b's.
worker_port() { case "$1" in bank-a) echo $((BASE_PORT + 100)) ;; *) echo $((BASE_PORT + 120)) ;; esac; }
workers_config() {
  cat <<YAML
workers:
  certificate: pki/$1-worker.pem
  private_key: pki/$1-worker-key.pem
  listen: 127.0.0.1:$(worker_port "$1")+{index}
  launch: local
  peers:
    $2: 127.0.0.1:$(worker_port "$2")+{index}
YAML
}

# issue_all NAME: a CA and a certificate for every node of NODES.
issue_all() {
  mpcnode ca init --dir "$DEMO/pki" --name "$1" >/dev/null
  for n in $NODES; do
    mpcnode node init --dir "$DEMO/pki" --node "${n%%:*}" --role "${n##*:}" >/dev/null
    mpcnode ca issue --dir "$DEMO/pki" --csr "$DEMO/pki/${n%%:*}.csr" --node "${n%%:*}" --role "${n##*:}" >/dev/null
  done
  echo "CA and $(echo $NODES | wc -w) node certificates in $DEMO/pki"
}

start_all() {
  mkdir -p "$DEMO/logs"
  for n in $NODES; do
    id=${n%%:*}
    "$BIN" serve --config "$DEMO/$id.yaml" --log-format text > "$DEMO/logs/$id.log" 2>&1 &
    echo $! > "$DEMO/$id.pid"
  done
  for n in $NODES; do
    id=${n%%:*}
    for _ in $(seq 1 150); do [ -S "$DEMO/data/$id/admin.sock" ] && break; sleep 0.1; done
    [ -S "$DEMO/data/$id/admin.sock" ] || { echo "$id did not start:"; cat "$DEMO/logs/$id.log"; exit 1; }
  done
  echo "started: $(for n in $NODES; do printf '%s ' "${n%%:*}"; done)"
}

# stop_all: SIGTERM every daemon of $DEMO and wait for a clean exit.
stop_all() {
  for pidfile in "$DEMO"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile"); id=$(basename "$pidfile" .pid)
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then echo "  $id did not stop in 10 s; killing it"; kill -KILL "$pid"; else echo "  $id stopped"; fi
    fi
    rm -f "$pidfile"
  done
}

# stop_node ID / start_node ID: one daemon of $DEMO (an operator's restart).
stop_node() {
  local pid; pid=$(cat "$DEMO/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$DEMO/$1.pid"
}
start_node() {
  "$BIN" serve --config "$DEMO/$1.yaml" --log-format text >> "$DEMO/logs/$1.log" 2>&1 &
  echo $! > "$DEMO/$1.pid"
  for _ in $(seq 1 150); do [ -S "$DEMO/data/$1/admin.sock" ] && break; sleep 0.1; done
}
