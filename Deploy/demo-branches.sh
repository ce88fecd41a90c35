#!/usr/bin/env bash
# Walkthrough of the branches-to-regulator scenario: ten overseas branches of a bank each hold their
# accounts in their own node; a regulator receives consortium-wide totals per risk category (secure
# aggregation: no branch's figures are seen by anyone), small cells suppressed; one branch goes offline
# in the middle and the report still comes out, saying who is in it; a later sum over all ten branches is
# then refused by the branches, since its difference with the first would be the missing branch's figures.
#
#   Deploy/demo-branches.sh     everything under demo-branches/ (ignored by git), stopped at the end
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-branches"
BASE_PORT=${BASE_PORT:-7500}
NODES="coordinator:coordinator regulator:regulator $(for i in $(seq -w 1 10); do printf 'branch-%s:bank ' "$i"; done)"
. Deploy/lib/consortium.sh

step "Building mpcnode"
build_mpcnode
[ -d "$DEMO" ] && { stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; }
mkdir -p "$DEMO/csv"

step "Consortium PKI and configurations (12 nodes)"
issue_all "Demo bank group"
node_config coordinator ""
node_config regulator "policy:
  coordinators: [coordinator]"
for n in $NODES; do
  id=${n%%:*}
  case "$id" in branch-*) node_config "$id" "policy:
  coordinators: [coordinator]
  datasets:
    accounts:
      columns: [risk, balance, flagged]
      protocols: [secure-sum]
      result_recipients: [regulator]
      min_set_size: 20
      min_cell_records: 10
      min_cell_parties: 3";;
  esac
done
sed -n '1,30p' "$DEMO/branch-01.yaml"

step "Each branch imports its own accounts (synthetic, deterministic)"
for i in $(seq 1 10); do
  id=$(printf 'branch-%02d' "$i")
  awk -v seed="$i" -v id="$id" 'BEGIN {
    srand(seed); print "account,risk,balance,flagged"
    n = 80 + int(rand() * 60)
    for (r = 0; r < n; r++) {
      x = rand(); risk = (x < 0.15) ? "high" : (x < 0.5 ? "medium" : "low")
      # a category only branch-01 has, with few accounts: its cell must be suppressed
      if (id == "branch-01" && r < 4) risk = "sanctioned"
      printf "%s-%05d,%s,%.2f,%s\n", id, r, risk, rand() * 250000 - 20000, (rand() < 0.07 ? "yes" : "")
    }
  }' > "$DEMO/csv/$id.csv"
  mpcnode data import --config "$DEMO/$id.yaml" --dataset accounts --csv "$DEMO/csv/$id.csv" --id-column account 2>/dev/null | sed -n 1p
done

step "Starting 12 daemons"
start_all
trap stop_all EXIT

submit_sum() {
  mpcnode job submit secure-sum --config "$DEMO/coordinator.yaml" \
    $(for i in $(seq -w 1 10); do printf -- '--party branch-%s:accounts ' "$i"; done) \
    --deliver-to regulator --group-by risk --groups high,medium,low,sanctioned \
    --measure sum:balance --measure count:flagged --decimals 2 --min-cell-records 10 --min-cell-parties 3 --wait 2>&1 || true
}

step "Secure sum over the ten branches, delivered to the regulator; branch-07 goes offline in the middle"
# To make the outage land at a precise moment, branch-07 is restarted with the test-only fault-injection
# switch: its process exits abruptly right after it has shared its keys (before sending its input).
kill -TERM "$(cat "$DEMO/branch-07.pid")"; sleep 1
MPCNODE_FAULT_EXIT_AFTER_SECAGG_ROUND=shareKeys "$BIN" serve --config "$DEMO/branch-07.yaml" --log-format text \
  > "$DEMO/logs/branch-07-faulty.log" 2>&1 &
echo $! > "$DEMO/branch-07.pid"
for _ in $(seq 1 150); do [ -S "$DEMO/data/branch-07/admin.sock" ] && break; sleep 0.1; done
out=$(submit_sum)
echo "$out" | sed -n 1p
job=$(echo "$out" | sed -n 's/^submitted //p')
echo "branch-07 exited with status $(wait "$(cat "$DEMO/branch-07.pid")" 2>/dev/null; echo $?) in the middle of the job"
mpcnode report show "$job" --config "$DEMO/regulator.yaml"

step "branch-07 is back; the same sum over all ten branches is refused by the branches"
"$BIN" serve --config "$DEMO/branch-07.yaml" --log-format text > "$DEMO/logs/branch-07.log" 2>&1 &
echo $! > "$DEMO/branch-07.pid"
for _ in $(seq 1 150); do [ -S "$DEMO/data/branch-07/admin.sock" ] && break; sleep 0.1; done
out=$(submit_sum)
job2=$(echo "$out" | sed -n 's/^submitted //p')
echo "Its difference with the first report would be branch-07's own figures; each branch keeps what was"
echo "released on its dataset and refuses, after the record counts and before any measure is sent:"
mpcnode job status "$job2" --config "$DEMO/coordinator.yaml" | grep -E "^state|branch-01" | cut -c1-240

step "The regulator exports the report"
mpcnode report export "$job" --format csv --config "$DEMO/regulator.yaml"
mpcnode report list --config "$DEMO/regulator.yaml"

step "Stopping the daemons"
