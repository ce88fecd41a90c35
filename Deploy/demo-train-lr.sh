#!/usr/bin/env bash
# Walkthrough of federated logistic regression on the breast-cancer data of FATE's examples
# (../shared/data/fate): two banks hold different patients with the same 30 features (horizontal); an
# operator node runs the rounds; updates travel only as secure sums. The model, its coefficients, its
# training curve and its AUC on each bank's evaluation rows are shown at the end.
#
#   Deploy/demo-train-lr.sh     everything under demo-train-lr/ (ignored by git), stopped at the end
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-train-lr"
DATA="${FATE_DATA:-$(pwd)/../shared/data/fate}"
BASE_PORT=${BASE_PORT:-7700}
NODES="coordinator:coordinator operator:regulator bank-a:bank bank-b:bank"
. Deploy/lib/consortium.sh
[ -f "$DATA/breast_homo_guest.csv" ] || { echo "FATE's breast data not found in $DATA (set FATE_DATA)" >&2; exit 1; }

step "Building mpcnode"
build_mpcnode
[ -d "$DEMO" ] && { stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; }
mkdir -p "$DEMO/csv"

step "Consortium PKI and configurations"
issue_all "Demo bank group"
node_config coordinator ""
node_config operator "policy:
  coordinators: [coordinator]"
COLUMNS="$(for i in $(seq 0 29); do printf 'x%s, ' "$i"; done)y"
for bank in bank-a bank-b; do node_config "$bank" "policy:
  coordinators: [coordinator]
  datasets:
    patients:
      columns: [$COLUMNS]
      protocols: [train-lr]
      result_recipients: [operator]
      min_set_size: 50
    patients_eval:
      columns: [$COLUMNS]
      protocols: [train-lr]
      result_recipients: [operator]
      min_set_size: 1"
done

step "Each bank imports its own rows (bank-a: breast_homo_guest, bank-b: breast_homo_host; the test rows split between them)"
head -1 "$DATA/breast_homo_test.csv" > "$DEMO/csv/eval-a.csv"; sed -n '2,58p' "$DATA/breast_homo_test.csv" >> "$DEMO/csv/eval-a.csv"
head -1 "$DATA/breast_homo_test.csv" > "$DEMO/csv/eval-b.csv"; sed -n '59,$p' "$DATA/breast_homo_test.csv" >> "$DEMO/csv/eval-b.csv"
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset patients --csv "$DATA/breast_homo_guest.csv" --id-column id 2>/dev/null | head -1
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset patients --csv "$DATA/breast_homo_host.csv" --id-column id 2>/dev/null | head -1
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset patients_eval --csv "$DEMO/csv/eval-a.csv" --id-column id 2>/dev/null | head -1
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset patients_eval --csv "$DEMO/csv/eval-b.csv" --id-column id 2>/dev/null | head -1

step "Starting the daemons"
start_all
trap stop_all EXIT

step "Horizontal training: 30 rounds, updates combined by secure aggregation at the operator"
out=$(mpcnode job submit train-lr --config "$DEMO/coordinator.yaml" --party bank-a:patients --party bank-b:patients \
  --aggregator operator --features x0..x29 --label y --rounds 30 --local-epochs 1 --learning-rate 0.1 --l2 0.001 \
  --batch-size 32 --tolerance 0 --eval-dataset patients_eval --wait)
echo "$out" | head -1
job=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode model show "$job" --config "$DEMO/operator.yaml"

step "Each bank keeps the model too"
mpcnode model list --config "$DEMO/bank-a.yaml"
mpcnode model export "$job" --config "$DEMO/bank-b.yaml" | head -12

step "Stopping the daemons"
