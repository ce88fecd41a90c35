#!/usr/bin/env bash
# Stops the demo daemons started by Deploy/demo.sh (SIGTERM, then waits for a clean exit).
set -uo pipefail
cd "$(dirname "$0")/.."
for pidfile in demo/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile"); id=$(basename "$pidfile" .pid)
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "  $id did not stop in 10 s; killing it"; kill -KILL "$pid"; else echo "  $id stopped"; fi
  fi
  rm -f "$pidfile"
done
