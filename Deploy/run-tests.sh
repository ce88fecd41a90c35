#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole test suite
# (unit tests, in-memory protocol tests, loopback TLS tests, end-to-end tests with real daemons), then
# every walkthrough of Deploy/ (each must exit 0).
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
# The whole run's summary is the 'All tests' suite's; a process that crashed never prints it, and the
# last suite's count would be mistaken for the run's.
summary=$(grep -A1 -E "^Test Suite 'All tests' (passed|failed)" "$log" |
  grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" | tail -n 1 || true)
if [ -n "$summary" ]; then
  # Counted by test case: the summary's "failures" are failed assertions, several to a test at times.
  total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  failed=$(grep -cE "^Test Case '.*' failed \(" "$log" || true)
  echo "tests: $((total - failed)) passed, $failed failed"
  failed_names=$(grep -E "^Test Case '.*' failed \(" "$log" | sed -E "s/^Test Case '([^']*)'.*/  \1/" || true)
elif [ "$status" -ne 0 ]; then
  finished=$(grep -cE "^Test Case '.*' (passed|failed) \(" "$log" || true)
  last=$(grep -E "^Test Case '.*' started" "$log" | tail -n 1 | sed -E "s/^Test Case '([^']*)'.*/\1/")
  echo "tests: the test process stopped before the end (exit status $status) after $finished finished tests; the test running then: ${last:-none}"
  # The crashed thread's frames (Swift's backtracer prints it as "Thread N crashed:"), kept for the end.
  crash=$(grep -A 40 -E "^Thread [0-9]+ .*crashed:" "$log" | head -n 41 | cut -c1-240 || true)
  [ -z "$crash" ] || echo "$crash"
fi
# Work scheduled on an event loop after its node stopped: NIO prints an error today and will crash in
# later versions. None is expected; SWIFTNIO_STRICT=1 makes each a crash, with the frames that did it.
late=$(grep -c "Cannot schedule tasks on an EventLoop that has already shut down" "$log" || true)
echo "NIO: $late task(s) scheduled on an event loop already shut down (expected 0; find them with SWIFTNIO_STRICT=1)"

# The deployment files: Kubernetes manifests against their schemas, the systemd unit, Compose's init.
deploy_status=0
Deploy/check-deploy-files.sh || deploy_status=$?

# Every walkthrough in Deploy/ runs end to end and must exit 0 (SKIP_WALKTHROUGHS=1 skips them).
walkthroughs_failed=0
if [ "${SKIP_WALKTHROUGHS:-0}" != 1 ]; then
  # (Deploy/demo-lookups.sh runs below, in the API check, with its daemons kept for schemathesis.)
  for demo in demo.sh demo-branches.sh demo-union-sum.sh demo-train-lr.sh; do
    started=$(date +%s)
    if Deploy/$demo > "$log" 2>&1; then
      echo "walkthrough Deploy/$demo: exit 0 ($(( $(date +%s) - started )) s)"
    else
      code=$?
      walkthroughs_failed=$((walkthroughs_failed + 1))
      echo "walkthrough Deploy/$demo: FAILED with exit $code; its last lines:"
      tail -n 30 "$log" | sed 's/^/    /'
    fi
  done
  # The web console in headless Chromium (it installs chromium and chromium-driver if missing).
  started=$(date +%s)
  if Deploy/check-console.sh > "$log" 2>&1; then
    echo "$(tail -n 1 "$log") ($(( $(date +%s) - started )) s)"
  else
    walkthroughs_failed=$((walkthroughs_failed + 1))
    echo "console check FAILED; its last lines:"; tail -n 30 "$log" | sed 's/^/    /'
  fi
  # The lookup walkthrough, then the HTTP API against its OpenAPI document (schemathesis).
  started=$(date +%s)
  if Deploy/check-api.sh; then
    echo "walkthrough Deploy/demo-lookups.sh and the API check: exit 0 ($(( $(date +%s) - started )) s)"
  else
    walkthroughs_failed=$((walkthroughs_failed + 1))
  fi
fi
if [ "$status" -ne 0 ]; then
  if [ -n "$summary" ]; then
    echo "tests FAILED: $failed failed; they were:"; echo "$failed_names"
  else
    echo "tests FAILED: the test process stopped (exit status $status) in ${last:-an unknown test}"
    [ -z "${crash:-}" ] || echo "$crash"
  fi
  exit "$status"
fi
[ "$deploy_status" -eq 0 ] || exit 1
[ "$walkthroughs_failed" -eq 0 ] || exit 1
exit 0
