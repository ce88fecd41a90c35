#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole test suite
# (unit tests, in-memory protocol tests, loopback TLS tests, end-to-end tests with real daemons).
set -euo pipefail
cd "$(dirname "$0")/.."
Deploy/install-dependencies.sh
swift build --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The suite is XCTest; Swift Testing would only add an empty run after it.
set +e
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -n 1)
total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
if [ -n "$summary" ]; then
  echo "tests: $((total - failed)) passed, $failed failed"
fi
exit "$status"
