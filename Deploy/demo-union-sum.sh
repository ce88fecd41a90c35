#!/usr/bin/env bash
# Walkthrough of the overseas-branches scenario with union-and-sum (Protocols/multi-party-sets.md):
# ten branches each hold their customers' balances in their own node; the regulator receives figures
# over the *union* of customers — distinct customers, total balances, how many customers several
# branches serve, and the (pseudonymous) customers whose consortium-wide total exceeds a reporting
# threshold — without any branch's customer list or balances leaving it. Intersection-and-sum is shown
# beside it: it silently drops every customer that not all branches serve.
#
#   Deploy/demo-union-sum.sh     everything under demo-union-sum/ (ignored by git), stopped at the end
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-union-sum"
BASE_PORT=${BASE_PORT:-7600}
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
    customers:
      columns: [customer, balance]
      protocols: [union-sum, intersection-stats, watchlist]
      result_recipients: [regulator, $(for i in $(seq -w 1 10); do printf 'branch-%s, ' "$i"; done | sed 's/, $//')]
      min_set_size: 20
      min_intersection: 10
      min_cell_parties: 2";;
  esac
done
sed -n '1,40p' "$DEMO/branch-01.yaml"

step "Each branch imports its own customers' accounts (synthetic, deterministic)"
# 25 corporate customers bank at every branch; about 300 of a pool of 3,000 private customers at each
# branch, some at several branches; a customer can hold several accounts at a branch.
for i in $(seq 1 10); do
  id=$(printf 'branch-%02d' "$i")
  awk -v seed="$i" 'BEGIN {
    srand(seed); print "customer,account,balance"
    for (c = 1; c <= 25; c++) printf "CORP-%03d,%d-%d,%.2f\n", c, seed, c, 50000 + rand() * 2000000
    for (c = 1; c <= 3000; c++) if (rand() < 0.1) {
      accounts = (rand() < 0.2) ? 2 : 1
      for (a = 0; a < accounts; a++) printf "C-%05d,%d-%d-%d,%.2f\n", c, seed, c, a, rand() * 400000 - 5000
    }
  }' > "$DEMO/csv/$id.csv"
  mpcnode data import --config "$DEMO/$id.yaml" --dataset customers --csv "$DEMO/csv/$id.csv" --id-column customer 2>/dev/null | sed -n 1p
done

step "Starting 12 daemons"
start_all
trap stop_all EXIT

PARTIES=$(for i in $(seq -w 1 10); do printf -- '--party branch-%s:customers.customer ' "$i"; done)

step "Union-sum over the ten branches, reported to the regulator"
out=$(mpcnode job submit union-sum --config "$DEMO/coordinator.yaml" $PARTIES \
  --aggregator regulator --value balance --decimals 2 --reporting-threshold 1500000 --min-cell-parties 2 --wait)
echo "$out" | sed -n 1p
job=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode report show "$job" --config "$DEMO/regulator.yaml"

step "For comparison: statistics over the intersection (customers of all ten branches only)"
out=$(mpcnode job submit intersection-stats --config "$DEMO/coordinator.yaml" $PARTIES \
  --aggregator regulator --value balance --decimals 2 --bins 0,500000,1000000,2000000 --min-intersection 10 --wait)
job2=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode report show "$job2" --config "$DEMO/regulator.yaml"
echo
echo "The union covers every customer; the intersection keeps only the 25 corporate customers that all ten branches serve."

step "Which of branch-01's customers do other branches also serve? (delivered to branch-01 only)"
out=$(mpcnode job submit watchlist --config "$DEMO/coordinator.yaml" $PARTIES \
  --aggregator regulator --at-least 3 --deliver-to branch-01 --wait 2>/dev/null)
job3=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode job result "$job3" --config "$DEMO/branch-01.yaml" --limit 5
echo "branch-02 has no result for this job:"
mpcnode job result "$job3" --config "$DEMO/branch-02.yaml" 2>&1 | head -1 || true

step "The regulator exports the union-sum report; every node keeps an audit record"
mpcnode report export "$job" --format csv --config "$DEMO/regulator.yaml" | sed -n 1,20p
mpcnode audit --config "$DEMO/branch-07.yaml" > "$DEMO/audit-branch-07.txt"; sed -n 1,7p "$DEMO/audit-branch-07.txt"

step "The regulator verifies that every branch's log holds the union-sum (signed heads, Merkle proofs)"
mpcnode audit verify --config "$DEMO/regulator.yaml" --job "$job" > "$DEMO/verify.txt" || { cat "$DEMO/verify.txt"; echo "the ledger did not verify"; exit 1; }
sed -n '/^job /,$p' "$DEMO/verify.txt"

step "branch-07's operator deletes the union-sum and what followed from its database; the regulator notices"
stop_node branch-07
python3 - "$DEMO/data/branch-07/node.sqlite" "$job" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
first = db.execute("SELECT MIN(seq) FROM audit_log WHERE job_id = ?", (sys.argv[2],)).fetchone()[0]
db.execute("DELETE FROM audit_log WHERE seq >= ?", (first,)); db.execute("DELETE FROM ledger_leaf WHERE seq >= ?", (first,))
db.execute("DELETE FROM tree_head"); db.commit()
print(f"  deleted branch-07's audit records from #{first} on, with their leaves and its signed heads")
PY
start_node branch-07
if mpcnode audit verify --config "$DEMO/regulator.yaml" > "$DEMO/verify-after.txt"; then
  cat "$DEMO/verify-after.txt"; echo "the truncated log was NOT caught"; exit 1
fi
grep -E "ALARM|NOT verified" "$DEMO/verify-after.txt" | cut -c1-220

step "Stopping the daemons"
