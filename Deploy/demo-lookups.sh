#!/usr/bin/env bash
# Walkthrough of real-time list lookups (Protocols/list-lookup.md): five banks and a telecom operator,
# each with its own black/grey list of phone numbers; bank-1's fraud system asks its own node, over its
# local HTTP API with curl, whether numbers are on any member's list and with which label. No number it
# asks about leaves bank-1 in the clear: each holder evaluates an oblivious PRF on a blinded value.
# Then a list update shows up in the next lookup, and a holder's daily quota runs out.
#
#   Deploy/demo-lookups.sh                  everything under demo-lookups/ (ignored by git), stopped at the end
#   KEEP_RUNNING=1 Deploy/demo-lookups.sh   leave the daemons running (stop: Deploy/demo-stop.sh demo-lookups);
#                                           the API token is in demo-lookups/api-token
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/demo-lookups"
BASE_PORT=${BASE_PORT:-7600}
API_PORT=$((BASE_PORT + 100))
NODES="bank-1:bank bank-2:bank bank-3:bank bank-4:bank bank-5:bank telecom:bank"
. Deploy/lib/consortium.sh

step "Building mpcnode"
build_mpcnode
[ -d "$DEMO" ] && { stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; }
mkdir -p "$DEMO/csv"

step "Consortium PKI, an API token for bank-1's fraud engine, and configurations (6 nodes)"
issue_all "Anti-fraud consortium"
token_out=$(mpcnode node token --name fraud-engine --roles lookup,read)
TOKEN=$(echo "$token_out" | sed -n 's/^token (shown once.*): //p')
TOKEN_SHA=$(echo "$token_out" | sed -n 's/^ *sha256: //p')
( umask 077; echo "$TOKEN" > "$DEMO/api-token" )
echo "http://127.0.0.1:$API_PORT" > "$DEMO/api-url"
# The bank's operations desk: every other path of the API (Deploy/check-api.sh uses it).
ops_out=$(mpcnode node token --name operations --roles operator,read,metrics,regulator,lookup)
OPS_SHA=$(echo "$ops_out" | sed -n 's/^ *sha256: //p')
( umask 077; echo "$ops_out" | sed -n 's/^token (shown once.*): //p' > "$DEMO/ops-token" )
echo "token for bank-1's fraud engine made; bank-1's configuration holds only its SHA-256 ($TOKEN_SHA)"
others() { for n in $NODES; do [ "${n%%:*}" = "$1" ] || printf '%s, ' "${n%%:*}"; done | sed 's/, $//'; }
for n in $NODES; do
  id=${n%%:*}
  extra=""; disclosure="holders"; per_day=100000; list=blacklist
  [ "$id" = telecom ] && list=fraud_numbers
  [ "$id" = bank-3 ] && per_day=40                         # a tight daily quota, to show it running out
  [ "$id" = bank-5 ] && disclosure=count                   # bank-5 discloses only "listed by k members"
  if [ "$id" = bank-1 ]; then
    extra="http:
  listen: 127.0.0.1:$API_PORT
  tokens:
    - name: fraud-engine
      sha256: $TOKEN_SHA
      roles: [lookup, read]
    - name: operations
      sha256: $OPS_SHA
      roles: [operator, read, metrics, regulator, lookup]"
  fi
  node_config "$id" "$extra
policy:
  datasets:
    $list:
      lookup_lists:
        label_columns: [risk, reason, listed_on]
        queriers: [$(others "$id")]
        max_lookups_per_second: 200
        max_lookups_per_day: $per_day
        disclosure: $disclosure
        risk_column: risk
        risk_levels: [low, medium, high]
  lookups:
    subscribe: [$(for m in $NODES; do o=${m%%:*}; [ "$o" = "$id" ] && continue; [ "$o" = telecom ] && printf 'telecom:fraud_numbers, ' || printf '%s:blacklist, ' "$o"; done | sed 's/, $//')]
    sync_seconds: 30
    timeout_ms: 3000"
done
sed -n '/^http:/,$p' "$DEMO/bank-1.yaml"

step "Each member imports its own list (synthetic, deterministic; 3,000 numbers each)"
i=0
for n in $NODES; do
  id=${n%%:*}; i=$((i + 1))
  list=blacklist; [ "$id" = telecom ] && list=fraud_numbers
  awk -v seed="$i" 'BEGIN {
    srand(seed); print "phone,risk,reason,listed_on"
    split("mule-account,sim-box,phishing,account-takeover,investment-scam", reasons, ",")
    for (r = 0; r < 3000; r++) {
      num = int(rand() * 20000); x = rand()
      printf "+44 7700 %06d,%s,%s,2026-%02d-%02d\n", num, (x < 0.2 ? "high" : (x < 0.6 ? "medium" : "low")),
             reasons[1 + int(rand() * 5)], 1 + int(rand() * 11), 1 + int(rand() * 28)
    }
  }' > "$DEMO/csv/$id.csv"
  mpcnode data import --config "$DEMO/$id.yaml" --dataset "$list" --csv "$DEMO/csv/$id.csv" --id-column phone --normalize trim,digits-only 2>/dev/null | sed -n 1p
done

step "Starting 6 daemons (each builds its list's table; bank-1 fetches every other member's)"
start_all
[ "${KEEP_RUNNING:-0}" = 1 ] || trap stop_all EXIT
for _ in $(seq 1 100); do
  mpcnode lookup status --config "$DEMO/bank-1.yaml" | grep -q "never\| - " || break
  sleep 0.3
done
mpcnode lookup status --config "$DEMO/bank-1.yaml"

# Numbers to ask about: one on bank-2's list, one on the telecom's and bank-4's, one on bank-5's (which
# discloses only a count), one on nobody's.
key_bank2=$(sed -n 2p "$DEMO/csv/bank-2.csv" | cut -d, -f1)
key_bank5=$(sed -n 2p "$DEMO/csv/bank-5.csv" | cut -d, -f1)
key_both=$(comm -12 <(tail -n +2 "$DEMO/csv/telecom.csv" | cut -d, -f1 | sort -u) <(tail -n +2 "$DEMO/csv/bank-4.csv" | cut -d, -f1 | sort -u) | sed -n 1p)
key_none=""
for k in $(seq 20000 20100); do
  c="+44 7700 $(printf '%06d' "$k")"; grep -q "^$c," "$DEMO"/csv/*.csv || { key_none=$c; break; }
done

lookup() {  # lookup KEY...: POST /v1/lookups, one line per key and list that lists it
  local keys; keys=$(printf '"%s",' "$@" | sed 's/,$//')
  curl -sS -X POST "http://127.0.0.1:$API_PORT/v1/lookups" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" -d "{\"keys\": [$keys]}" > "$DEMO/answer.json"
  if command -v python3 >/dev/null; then
    python3 - "$DEMO/answer.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
for r in a["results"]:
    print(f'{r["key"]}: {"LISTED" if r["listed"] else "not listed"}  (answered by {len(r["checked"])} lists)')
    for h in r["hits"]:
        print(f'    {h["holder"]}:{h["list"]} v{h["version"]}  ' + " ".join(f"{k}={v}" for k, v in sorted(h["label"].items())))
    if r.get("listed_by_others"):
        o = r["listed_by_others"]; print(f'    listed by {o["listed_by"]} member(s) that disclose a count only; highest risk {o.get("highest_risk")}')
    for n in r["not_asked"]:
        print(f'    NOT ASKED {n["holder"]}:{n["list"]}: {n["reason"]}')
print(f'answered in {a["elapsed_ms"]:.1f} ms')
PY
  else
    cat "$DEMO/answer.json"; echo
  fi
}

step "bank-1's fraud system asks its node over HTTP (curl), one round trip to the five other members"
echo "curl -X POST http://127.0.0.1:$API_PORT/v1/lookups -H 'Authorization: Bearer …' -d '{\"keys\": [\"$key_bank2\", …]}'"
lookup "$key_bank2" "$key_both" "$key_bank5" "$key_none" "$(echo "$key_bank2" | tr -d ' +')"
for k in "$key_bank2" "$key_none"; do
  for _ in 1 2 3; do
    curl -sS -o /dev/null -w "single-key lookup over HTTP: %{time_total} s\n" -X POST "http://127.0.0.1:$API_PORT/v1/lookups" \
      -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d "{\"key\": \"$k\"}"
  done
done

step "bank-2 lists a new number ($key_none); bank-1's next lookup answers from bank-2's new version"
printf 'phone,risk,reason,listed_on\n%s,high,phishing,2026-12-06\n' "$key_none" > "$DEMO/csv/bank-2-new.csv"
mpcnode data append --config "$DEMO/bank-2.yaml" --dataset blacklist --csv "$DEMO/csv/bank-2-new.csv"
sleep 3   # bank-2's node notices its dataset changed within 2 s and makes version 2
lookup "$key_none"

step "bank-3's list allows bank-1 only 40 lookups a day: batches of 10 until it refuses"
for round in 1 2 3 4 5; do
  keys=$(sed -n "$((round * 10 + 1)),$((round * 10 + 10))p" "$DEMO/csv/bank-5.csv" | cut -d, -f1)
  mapfile -t batch <<< "$keys"
  lookup "${batch[@]}" > "$DEMO/round.txt"
  refused=$(grep -c "NOT ASKED bank-3" "$DEMO/round.txt" || true)
  echo "batch $round: 10 keys; bank-3 answered $((10 - refused)), refused $refused"
done
grep -m1 "NOT ASKED bank-3" "$DEMO/round.txt"

step "Bad requests get a clear 4xx"
curl -sS -w "  (HTTP %{http_code})\n" -X POST "http://127.0.0.1:$API_PORT/v1/lookups" -H "Content-Type: application/json" -d '{"key":"1"}'
curl -sS -w "  (HTTP %{http_code})\n" -X POST "http://127.0.0.1:$API_PORT/v1/lookups" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"key":"no digits"}'
curl -sS -w "  (HTTP %{http_code})\n" -X POST "http://127.0.0.1:$API_PORT/v1/lookups" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"key":'

step "The lists as bank-1 sees them, and bank-3's view as a holder (its evaluations for bank-1 today)"
mpcnode lookup status --config "$DEMO/bank-1.yaml"
mpcnode lookup status --config "$DEMO/bank-3.yaml" | sed -n '/lists this node offers/,$p'
echo
echo "The same from the CLI: mpcnode lookup --config $DEMO/bank-1.yaml --key '$key_bank2'"
mpcnode lookup --config "$DEMO/bank-1.yaml" --key "$key_bank2"
echo
echo "A batch from a CSV, answers as CSV: mpcnode lookup --config $DEMO/bank-1.yaml --csv keys.csv --column phone"
{ echo "phone,note"; echo "$key_both,transfer 1"; echo "$key_none,transfer 2"; echo "+44 7700 020001,transfer 3"; } > "$DEMO/keys.csv"
mpcnode lookup --config "$DEMO/bank-1.yaml" --csv "$DEMO/keys.csv" --column phone --list bank-2:blacklist --list bank-4:blacklist --list telecom:fraud_numbers

if [ "${KEEP_RUNNING:-0}" = 1 ]; then
  echo; echo "Daemons left running (bank-1's API: http://127.0.0.1:$API_PORT, token in $DEMO/api-token); stop them with Deploy/demo-stop.sh demo-lookups"
else
  step "Stopping the daemons"
fi
