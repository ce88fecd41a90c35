#!/usr/bin/env bash
# Walkthrough of federated logistic regression on the breast-cancer data of FATE's examples
# (../shared/data/fate). Horizontal: two banks hold different patients with the same 30 features; an
# operator node runs the rounds; updates travel only as secure sums. Vertical: a bank holds the label and
# 10 features, a telecom operator 20 other features of the same patients; rows are aligned by PSI and the
# operator holds the Paillier key. Then the same with two feature holders (telco: 10 features, a credit
# bureau: the other 10, each missing different patients). Models, coefficients, training curves and
# metrics are shown.
#
#   Deploy/demo-train-lr.sh     everything under demo-train-lr/ (ignored by git), stopped at the end
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-train-lr"
DATA="${FATE_DATA:-$(pwd)/../shared/data/fate}"
BASE_PORT=${BASE_PORT:-7700}
NODES="coordinator:coordinator operator:regulator bank-a:bank bank-b:bank telco:bank bureau:bank"
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
      min_set_size: 1
    hetero:
      columns: [id, y, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9]
      protocols: [train-lr, predict]
      result_recipients: [operator, bank-a]
      min_set_size: 50"
done
node_config telco "policy:
  coordinators: [coordinator]
  datasets:
    subscribers:
      columns: [id, $(for i in $(seq 0 19); do printf 'x%s, ' "$i"; done | sed 's/, $//')]
      protocols: [train-lr, predict]
      result_recipients: [operator, bank-a]
      min_set_size: 50"

node_config bureau "policy:
  coordinators: [coordinator]
  datasets:
    files:
      columns: [id, $(for i in $(seq 10 19); do printf 'x%s, ' "$i"; done | sed 's/, $//')]
      protocols: [train-lr, predict]
      result_recipients: [operator, bank-a]
      min_set_size: 50"

step "Each bank imports its own rows (bank-a: breast_homo_guest, bank-b: breast_homo_host; the test rows split between them)"
head -1 "$DATA/breast_homo_test.csv" > "$DEMO/csv/eval-a.csv"; sed -n '2,58p' "$DATA/breast_homo_test.csv" >> "$DEMO/csv/eval-a.csv"
head -1 "$DATA/breast_homo_test.csv" > "$DEMO/csv/eval-b.csv"; sed -n '59,$p' "$DATA/breast_homo_test.csv" >> "$DEMO/csv/eval-b.csv"
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset patients --csv "$DATA/breast_homo_guest.csv" --id-column id 2>/dev/null | sed -n 1p
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset patients --csv "$DATA/breast_homo_host.csv" --id-column id 2>/dev/null | sed -n 1p
mpcnode data import --config "$DEMO/bank-a.yaml" --dataset patients_eval --csv "$DEMO/csv/eval-a.csv" --id-column id 2>/dev/null | sed -n 1p
mpcnode data import --config "$DEMO/bank-b.yaml" --dataset patients_eval --csv "$DEMO/csv/eval-b.csv" --id-column id 2>/dev/null | sed -n 1p

mpcnode data import --config "$DEMO/bank-a.yaml" --dataset hetero --csv "$DATA/breast_hetero_guest.csv" --id-column id 2>/dev/null | sed -n 1p
# The operator's subscribers: every patient but every tenth one (the alignment finds the common ones).
awk -F, 'NR == 1 || $1 % 10 != 0' "$DATA/breast_hetero_host.csv" > "$DEMO/csv/subscribers.csv"
mpcnode data import --config "$DEMO/telco.yaml" --dataset subscribers --csv "$DEMO/csv/subscribers.csv" --id-column id 2>/dev/null | sed -n 1p
# The credit bureau's files: features x10..x19 of every patient but every seventh one.
awk -F, 'BEGIN { OFS = "," } NR == 1 || $1 % 7 != 0 { printf "%s", $1; for (i = 12; i <= 21; i++) printf ",%s", $i; print "" }' \
  "$DATA/breast_hetero_host.csv" > "$DEMO/csv/files.csv"
mpcnode data import --config "$DEMO/bureau.yaml" --dataset files --csv "$DEMO/csv/files.csv" --id-column id 2>/dev/null | sed -n 1p

step "Starting the daemons"
start_all
trap stop_all EXIT

step "Horizontal training: 30 rounds, updates combined by secure aggregation at the operator"
out=$(mpcnode job submit train-lr --config "$DEMO/coordinator.yaml" --party bank-a:patients --party bank-b:patients \
  --aggregator operator --features x0..x29 --label y --rounds 30 --local-epochs 1 --learning-rate 0.1 --l2 0.001 \
  --batch-size 32 --tolerance 0 --eval-dataset patients_eval --wait)
echo "$out" | sed -n 1p
job=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode model show "$job" --config "$DEMO/operator.yaml"

step "Each bank keeps the model too"
mpcnode model list --config "$DEMO/bank-a.yaml"
mpcnode model export "$job" --config "$DEMO/bank-b.yaml" | sed -n 1,12p

step "Vertical training: bank-a (label + 10 features) and telco (20 features), aligned by PSI, Paillier key at the operator"
out=$(mpcnode job submit train-lr --mode vertical --config "$DEMO/coordinator.yaml" \
  --party bank-a:hetero.id --party telco:subscribers.id --aggregator operator --label y \
  --party-features bank-a=x0..x9 --party-features telco=x0..x19 --rounds 10 --learning-rate 0.15 --batch-size 192 --tolerance 0 --wait)
echo "$out" | sed -n 1p
job2=$(echo "$out" | sed -n 's/^submitted //p')
echo "-- bank-a (guest) sees its own block and the intercept:"
mpcnode model show "$job2" --config "$DEMO/bank-a.yaml" | sed -n '1,30p'
echo "-- telco (host) sees only its own block:"
mpcnode model show "$job2" --config "$DEMO/telco.yaml" | sed -n '1,12p'
echo "-- the operator (arbiter) holds no coefficients, only the loss curve:"
mpcnode model show "$job2" --config "$DEMO/operator.yaml" | tail -14

step "Joint scoring with the vertical model (predict): scores at bank-a only"
out=$(mpcnode job submit predict --config "$DEMO/coordinator.yaml" --party bank-a:hetero.id --party telco:subscribers.id --model "$job2" --wait 2>/dev/null)
job3=$(echo "$out" | sed -n 's/^submitted //p')
mpcnode job result "$job3" --config "$DEMO/bank-a.yaml" --limit 5

step "Vertical training with two feature holders: telco (x0..x9) and bureau (x10..x19) sum their encrypted margins in a chain"
echo "   (bank-a aligns with each; each host is told only the patients all three hold)"
out=$(mpcnode job submit train-lr --mode vertical --config "$DEMO/coordinator.yaml" \
  --party bank-a:hetero.id --party telco:subscribers.id --party bureau:files.id --aggregator operator --label y \
  --party-features bank-a=x0..x9 --party-features telco=x0..x9 --party-features bureau=x10..x19 \
  --rounds 10 --learning-rate 0.15 --batch-size 192 --tolerance 0 --wait)
echo "$out" | sed -n '1,/^$/p'
echo "$out" | tail -6
job4=$(echo "$out" | sed -n 's/^submitted //p')
echo "-- bank-a (guest): AUC, loss and accuracy on the held-out patients, its block and the intercept:"
mpcnode model show "$job4" --config "$DEMO/bank-a.yaml" | sed -n '1,16p'
echo "-- bureau (host) sees only its own block:"
mpcnode model show "$job4" --config "$DEMO/bureau.yaml" | sed -n '1,12p'
out=$(mpcnode job submit predict --config "$DEMO/coordinator.yaml" --party bank-a:hetero.id --party telco:subscribers.id \
  --party bureau:files.id --model "$job4" --wait 2>/dev/null)
job5=$(echo "$out" | sed -n 's/^submitted //p')
echo "-- scores of the patients all three hold, at bank-a only:"
mpcnode job result "$job5" --config "$DEMO/bank-a.yaml" --limit 5

step "Stopping the daemons"
