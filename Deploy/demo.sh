#!/usr/bin/env bash
# The README's first command: a local consortium of three nodes (a coordinator and two banks) as
# separate daemons on loopback, a PSI job between the banks, its result, and a clean stop.
#
#   Deploy/demo.sh            build (debug), set up demo/, run the jobs, stop the daemons
#   KEEP_RUNNING=1 Deploy/demo.sh   leave the daemons running afterwards (stop them with Deploy/demo-stop.sh)
#
# Everything it creates is under demo/ (ignored by git); it starts from scratch each time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/demo"
BASE_PORT=${BASE_PORT:-7400}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing system packages if missing, building mpcnode"
Deploy/install-dependencies.sh
swift build --product mpcnode 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" || true
BIN="$(swift build --show-bin-path)/mpcnode"
[ -x "$BIN" ] || { echo "build failed: $BIN missing" >&2; exit 1; }
mpcnode() { "$BIN" "$@"; }

if [ -d "$DEMO" ]; then Deploy/demo-stop.sh >/dev/null 2>&1 || true; rm -rf "$DEMO"; fi
mkdir -p "$DEMO/logs"

step "Creating the consortium CA and node certificates (mpcnode ca)"
mpcnode ca init --dir "$DEMO/pki" --name "Demo banking consortium"
mpcnode ca issue --dir "$DEMO/pki" --node coordinator --role coordinator
mpcnode ca issue --dir "$DEMO/pki" --node bank-a --role bank
mpcnode ca issue --dir "$DEMO/pki" --node bank-b --role bank
# On a real deployment the CA key stays with the CA operator; nodes get ca.pem and their own pair.

step "Writing each node's configuration (demo/*.yaml)"
peers() {  # every node but $1
  for n in coordinator:0 bank-a:1 bank-b:2; do
    id=${n%%:*}; i=${n##*:}
    [ "$id" = "$1" ] || echo "  $id: 127.0.0.1:$((BASE_PORT + i))"
  done
}
node_config() {  # id index policy
  cat > "$DEMO/$1.yaml" <<YAML
node_id: $1
listen: 127.0.0.1:$((BASE_PORT + $2))
data_dir: data/$1
tls:
  certificate: pki/$1.pem
  private_key: pki/$1-key.pem
  ca_certificate: pki/ca.pem
peers:
$(peers "$1")
$3
YAML
}
node_config coordinator 0 ""
node_config bank-a 1 "policy:
  coordinators: [coordinator]
  datasets:
    customers:
      columns: [phone]
      protocols: [psi, psi-cardinality]
      result_recipients: [bank-a]
      min_set_size: 100"
node_config bank-b 2 "policy:
  coordinators: [coordinator]
  datasets:
    blacklist:
      columns: [phone]
      protocols: [psi, psi-cardinality]
      result_recipients: [bank-a, bank-b]
      min_set_size: 50"
cat "$DEMO/bank-a.yaml"

step "Importing each bank's data into its own SQLite (mpcnode data import)"
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset customers --csv Deploy/demo-data/bank-a-customers.csv \
  --id-column phone --columns customer_id,phone,balance --normalize digits-only
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset blacklist --csv Deploy/demo-data/bank-b-blacklist.csv \
  --id-column phone --normalize digits-only
mpcnode data list --config "$DEMO/bank-a.yaml"

step "Starting three daemons (mpcnode serve), logs in demo/logs/"
for id in coordinator bank-a bank-b; do
  "$BIN" serve --config "$DEMO/$id.yaml" --log-format text > "$DEMO/logs/$id.log" 2>&1 &
  echo $! > "$DEMO/$id.pid"
done
stop_all() { Deploy/demo-stop.sh || true; }
[ "${KEEP_RUNNING:-0}" = 1 ] || trap stop_all EXIT
for id in coordinator bank-a bank-b; do
  for _ in $(seq 1 100); do [ -S "$DEMO/data/$id/admin.sock" ] && break; sleep 0.1; done
  [ -S "$DEMO/data/$id/admin.sock" ] || { echo "$id did not start:"; cat "$DEMO/logs/$id.log"; exit 1; }
  echo "  $id is up (pid $(cat "$DEMO/$id.pid"))"
done

step "Job 1: which of bank-a's customers are on bank-b's blacklist? (PSI, result to bank-a)"
out=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --wait)
echo "$out"
job=$(echo "$out" | sed -n 's/^submitted //p')
echo; echo "bank-a reads its result:"
mpcnode job result "$job" --config "$DEMO/bank-a.yaml" --limit 10
echo; echo "bank-b, which is not a recipient, has none:"
mpcnode job result "$job" --config "$DEMO/bank-b.yaml" || true

step "Job 2: only count the shared accounts, result to both banks — bank-a's policy refuses it"
mpcnode job submit psi --config "$DEMO/coordinator.yaml" --cardinality-only \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --deliver-to bank-b --wait || true

step "Job 3: the count only, to bank-a"
out=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" --cardinality-only \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --wait)
job3=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode job result "$job3" --config "$DEMO/bank-a.yaml"

step "Every node keeps an audit record of every job (bank-b's log, hash-chained)"
mpcnode audit --config "$DEMO/bank-b.yaml" --limit 8

if [ "${KEEP_RUNNING:-0}" = 1 ]; then
  echo; echo "Daemons left running; stop them with Deploy/demo-stop.sh"
else
  step "Stopping the daemons (SIGTERM, graceful)"
fi
