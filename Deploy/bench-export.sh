#!/usr/bin/env bash
# Benchmark: a PSI of SIZE × SIZE identifiers (half of them common) between daemons, then the whole
# intersection exported with `mpcnode job result --output` joined to bank-a's own columns. Prints the
# rows, the time and the exporting CLI's peak memory, and checks that the file holds exactly the
# intersection (computed here from the CSVs with sort and comm). Release build.
#   SIZE=1048576 Deploy/bench-export.sh        (the default; SIZE=20000 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1048576}
DEMO="$(pwd)/demo-export"
BASE_PORT=${BASE_PORT:-7900}
NODES="coordinator:coordinator bank-a:bank bank-b:bank"
. Deploy/lib/consortium.sh

build_mpcnode release >/dev/null
[ -d "$DEMO" ] && { stop_all >/dev/null 2>&1 || true; rm -rf "$DEMO"; }
mkdir -p "$DEMO/csv"
issue_all "Export benchmark" >/dev/null
node_config coordinator ""
for b in bank-a bank-b; do
  node_config "$b" "policy:
  coordinators: [coordinator]
  datasets:
    customers:
      columns: [phone, segment, balance]
      protocols: [psi]
      result_recipients: [bank-a]
      min_set_size: 10"
done
# bank-a holds 0 … SIZE-1, bank-b SIZE/2 … 3·SIZE/2-1: SIZE/2 in common.
awk -v n="$SIZE" 'BEGIN { print "phone,segment,balance"; for (i = 0; i < n; i++) printf "447%09d,s%d,%d.%02d\n", i, i % 7, i % 100000, i % 100 }' > "$DEMO/csv/bank-a.csv"
awk -v n="$SIZE" 'BEGIN { print "phone,segment,balance"; for (i = n / 2; i < n + n / 2; i++) printf "447%09d,t%d,%d.00\n", i, i % 5, i % 3000 }' > "$DEMO/csv/bank-b.csv"
for b in bank-a bank-b; do
  mpcnode data import --config "$DEMO/$b.yaml" --dataset customers --csv "$DEMO/csv/$b.csv" --id-column phone >/dev/null
done
start_all >/dev/null
trap 'stop_all >/dev/null 2>&1 || true' EXIT

started=$(date +%s.%N)
job=$(mpcnode job submit psi --config "$DEMO/coordinator.yaml" --party bank-a:customers.phone --party bank-b:customers.phone \
  --deliver-to bank-a --wait --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["id"]) if j["state"]=="succeeded" else sys.exit("the PSI ended " + j["state"])')
psi_seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')

# The export in a child of a small Python wrapper, which reads the child's peak resident memory.
read -r rows_line export_seconds peak_kb < <(python3 - "$BIN" "$job" "$DEMO" <<'PY'
import resource, subprocess, sys, time
binary, job, demo = sys.argv[1:4]
t = time.time()
out = subprocess.run([binary, "job", "result", job, "--config", f"{demo}/bank-a.yaml", "--output", f"{demo}/hits.csv",
                      "--with-columns", "segment,balance"], check=True, capture_output=True, text=True).stdout.strip()
print(out.split()[1], f"{time.time() - t:.1f}", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
expected=$(comm -12 <(tail -n +2 "$DEMO/csv/bank-a.csv" | cut -d, -f1 | sort) <(tail -n +2 "$DEMO/csv/bank-b.csv" | cut -d, -f1 | sort) | sha256sum)
exported=$(tail -n +2 "$DEMO/hits.csv" | cut -d, -f1 | sort | sha256sum)
joined=$(tail -n +2 "$DEMO/hits.csv" | awk -F, '{ i = substr($1, 4) + 0; if ($2 != "s" (i % 7)) bad++ } END { print bad + 0 }')
printf 'export benchmark: %d × %d identifiers, %d in common\n' "$SIZE" "$SIZE" $((SIZE / 2))
printf '  PSI between daemons (submit to stored result)   %8.1f s\n' "$psi_seconds"
printf '  export of %s rows with 2 joined columns        %8.1f s\n' "$rows_line" "$export_seconds"
printf '  exporting CLI peak resident memory              %8.1f MB\n' "$(awk -v k="$peak_kb" 'BEGIN { print k / 1024 }')"
printf '  file size                                       %8.1f MB\n' "$(awk -v b="$(stat -c %s "$DEMO/hits.csv")" 'BEGIN { print b / 1048576 }')"
if [ "$expected" = "$exported" ] && [ "$joined" = 0 ] && [ "$rows_line" = $((SIZE / 2)) ]; then
  echo "  the file holds exactly the intersection, each row with bank-a's own columns"
else
  echo "  MISMATCH: the file is not the intersection (rows $rows_line, wrong joined rows $joined)"; exit 1
fi
