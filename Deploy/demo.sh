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
DEMO="$(pwd)/demo"
BASE_PORT=${BASE_PORT:-7400}
NODES="coordinator:coordinator bank-a:bank bank-b:bank"
. Deploy/lib/consortium.sh

step "Installing system packages if missing, building mpcnode"
build_mpcnode
if [ -d "$DEMO" ]; then stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; fi
mkdir -p "$DEMO/logs"

step "Creating the consortium CA; each node makes its own key and request, the CA signs (mpcnode ca, mpcnode node)"
mpcnode ca init --dir "$DEMO/pki" --name "Demo banking consortium"
for n in coordinator:coordinator bank-a:bank bank-b:bank; do
  mpcnode node init --dir "$DEMO/pki" --node "${n%%:*}" --role "${n##*:}"
  mpcnode ca issue --dir "$DEMO/pki" --csr "$DEMO/pki/${n%%:*}.csr" --node "${n%%:*}" --role "${n##*:}"
done
# On a real deployment each node runs `node init` on its own machine (its key never leaves it) and sends
# the .csr; the CA operator, offline, runs `ca issue` and sends back the certificate and ca.pem.
# Each bank's PSI worker processes get a certificate of their own: the bank's id, role worker.
for bank in bank-a bank-b; do
  mpcnode node init --dir "$DEMO/pki" --node "$bank" --role worker
  mpcnode ca issue --dir "$DEMO/pki" --csr "$DEMO/pki/$bank-worker.csr" --node "$bank" --role worker
done

step "Writing each node's configuration (demo/*.yaml)"
node_config coordinator ""
node_config bank-a "policy:
  coordinators: [coordinator]
  datasets:
    customers:
      columns: [phone]
      protocols: [psi, psi-cardinality]
      result_recipients: [bank-a]
      min_set_size: 100
$(workers_config bank-a bank-b)"
node_config bank-b "policy:
  coordinators: [coordinator]
  datasets:
    blacklist:
      columns: [phone]
      protocols: [psi, psi-cardinality]
      result_recipients: [bank-a, bank-b]
      min_set_size: 50
$(workers_config bank-b bank-a)"
cat "$DEMO/bank-a.yaml"

step "Importing each bank's data into its own SQLite (mpcnode data import)"
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset customers --csv Deploy/demo-data/bank-a-customers.csv \
  --id-column phone --columns customer_id,phone,balance --normalize digits-only
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset blacklist --csv Deploy/demo-data/bank-b-blacklist.csv \
  --id-column phone --normalize digits-only
mpcnode data list --config "$DEMO/bank-a.yaml"

step "Starting three daemons (mpcnode serve), logs in demo/logs/"
start_all
[ "${KEEP_RUNNING:-0}" = 1 ] || trap stop_all EXIT

step "Job 1: which of bank-a's customers are on bank-b's blacklist? (PSI, result to bank-a)"
out=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --wait)
echo "$out"
job=$(echo "$out" | sed -n 's/^submitted //p')
echo; echo "bank-a reads its result:"
mpcnode job result "$job" --config "$DEMO/bank-a.yaml" --limit 10
echo; echo "bank-a writes all of it to a file, with its own customer id and balance for each number:"
mpcnode job result "$job" --config "$DEMO/bank-a.yaml" --output "$DEMO/hits.csv" --with-columns customer_id,balance
sed -n 1,4p "$DEMO/hits.csv"
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

step "Job 4: job 1 again with the OPRF PSI (--protocol kkrt: semi-honest, about 10x faster) — the same answer"
out=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" --protocol kkrt \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --wait)
job4=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode job result "$job" --config "$DEMO/bank-a.yaml" --output "$DEMO/hits-ecdh.csv"
mpcnode job result "$job4" --config "$DEMO/bank-a.yaml" --output "$DEMO/hits-kkrt.csv"
if cmp -s "$DEMO/hits-ecdh.csv" "$DEMO/hits-kkrt.csv"; then
  echo "jobs 1 and 4 found the same $(($(wc -l < "$DEMO/hits-kkrt.csv") - 1)) numbers"
else
  echo "jobs 1 and 4 differ:" >&2; diff "$DEMO/hits-ecdh.csv" "$DEMO/hits-kkrt.csv" >&2; exit 1
fi

step "Job 5: job 1 again, each bank handing its buckets to 2 worker processes (--workers 2) — the same answer"
out=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" --workers 2 \
  --party bank-a:customers.phone --party bank-b:blacklist.phone --deliver-to bank-a --wait)
job5=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode job result "$job5" --config "$DEMO/bank-a.yaml" --output "$DEMO/hits-workers.csv"
if cmp -s "$DEMO/hits-ecdh.csv" "$DEMO/hits-workers.csv"; then
  echo "jobs 1 and 5 found the same $(($(wc -l < "$DEMO/hits-workers.csv") - 1)) numbers; bank-a's audit of job 5:"
  mpcnode audit --config "$DEMO/bank-a.yaml" --job "$job5" | grep -E "job.workers|job.succeeded"
else
  echo "jobs 1 and 5 differ:" >&2; diff "$DEMO/hits-ecdh.csv" "$DEMO/hits-workers.csv" >&2; exit 1
fi

step "Every node keeps an audit record of every job (bank-b's log, hash-chained)"
mpcnode audit --config "$DEMO/bank-b.yaml" --limit 8

if [ "${KEEP_RUNNING:-0}" = 1 ]; then
  echo; echo "Daemons left running; stop them with Deploy/demo-stop.sh"
else
  step "Stopping the daemons (SIGTERM, graceful)"
fi
