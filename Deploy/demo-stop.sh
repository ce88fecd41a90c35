#!/usr/bin/env bash
# Stops the demo daemons started by Deploy/demo.sh (SIGTERM, then waits for a clean exit).
set -uo pipefail
cd "$(dirname "$0")/.."
DEMO="$(pwd)/${1:-demo}"
. Deploy/lib/consortium.sh
stop_all
