#!/usr/bin/env bash
# The web console in a real headless Chromium (run by Deploy/run-tests.sh): a coordinator, a regulator
# and three banks as daemons; a union-sum report made with the CLI; then Deploy/console_test.py signs in
# as the coordinator (a wrong token first), submits a PSI from the form and follows it to 100 %, sees a
# refused job with who refused and why, reads the audit trail with its chain verified, and, as the
# regulator's viewer, opens the report (table, chart, provenance) and exports it. Screenshots of every
# step in demo-console/screenshots/ (kept; the last run's are test artefacts).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-console"
BASE_PORT=${BASE_PORT:-7800}
NODES="coordinator:coordinator regulator:regulator bank-a:bank bank-b:bank bank-c:bank"
. Deploy/lib/consortium.sh

if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  echo "console: installing chromium and chromium-driver (Debian)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
    || { echo "console: chromium could not be installed: the console was not checked"; exit 1; }
fi
build_mpcnode >/dev/null
[ -d "$DEMO" ] && { stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; }
mkdir -p "$DEMO/csv"
issue_all "Console check" >/dev/null
token() { mpcnode node token --name "$1" --roles "$2"; }
c_out=$(token coordination-desk coordinator,operator); r_out=$(token supervisor regulator,operator)
C_TOKEN=$(echo "$c_out" | sed -n 's/^token (shown once.*): //p'); C_SHA=$(echo "$c_out" | sed -n 's/^ *sha256: //p')
R_TOKEN=$(echo "$r_out" | sed -n 's/^token (shown once.*): //p'); R_SHA=$(echo "$r_out" | sed -n 's/^ *sha256: //p')
C_PORT=$((BASE_PORT + 50)); R_PORT=$((BASE_PORT + 51))
node_config coordinator "http:
  listen: 127.0.0.1:$C_PORT
  tokens:
    - {name: coordination-desk, sha256: $C_SHA, roles: [coordinator, operator]}"
node_config regulator "http:
  listen: 127.0.0.1:$R_PORT
  tokens:
    - {name: supervisor, sha256: $R_SHA, roles: [regulator, operator]}
policy:
  coordinators: [coordinator]"
for b in bank-a bank-b bank-c; do
  node_config "$b" "policy:
  coordinators: [coordinator]
  datasets:
    customers:
      columns: [phone, balance]
      protocols: [psi, union-sum]
      result_recipients: [bank-a, regulator]
      min_set_size: 20
      min_cell_parties: 2"
  seed=$(( $(printf '%d' "'${b: -1}") ))
  awk -v seed="$seed" 'BEGIN { srand(seed); print "phone,balance"; for (i = 0; i < 400; i++) if (rand() < 0.6) printf "+44 7700 %06d,%.2f\n", i, rand() * 90000 }' > "$DEMO/csv/$b.csv"
  mpcnode data import --config "$DEMO/$b.yaml" --dataset customers --csv "$DEMO/csv/$b.csv" --id-column phone --normalize digits-only >/dev/null
done
start_all >/dev/null
trap 'stop_all >/dev/null 2>&1 || true' EXIT
mpcnode job submit union-sum --config "$DEMO/coordinator.yaml" --party bank-a:customers.phone --party bank-b:customers.phone \
  --party bank-c:customers.phone --aggregator regulator --value balance --decimals 2 --min-cell-parties 2 --wait >/dev/null \
  || { echo "console: the union-sum for the report failed"; exit 1; }
python3 Deploy/console_test.py "http://127.0.0.1:$C_PORT" "$C_TOKEN" "http://127.0.0.1:$R_PORT" "$R_TOKEN" "$DEMO/screenshots"
