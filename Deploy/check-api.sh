#!/usr/bin/env bash
# Checks that the HTTP API and its OpenAPI document agree (run by Deploy/run-tests.sh): runs the lookup
# walkthrough with its daemons left running, then schemathesis (PyPI) against bank-1's API with a token
# holding every role. The checks: no server error, every status and content type documented, every
# response body valid against its schema. Then the daemons stop.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check schemathesis >/dev/null 2>&1 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages schemathesis >/dev/null 2>&1 \
    || { echo "api: schemathesis could not be installed (pip): the API was not checked against its document"; exit 1; }
fi
log=$(mktemp)
trap 'Deploy/demo-stop.sh demo-lookups >/dev/null 2>&1 || true; rm -f "$log"' EXIT
KEEP_RUNNING=1 Deploy/demo-lookups.sh > "$log" 2>&1 || { echo "api: the lookup walkthrough failed:"; tail -n 30 "$log" | sed 's/^/    /'; exit 1; }
token=$(cat demo-lookups/ops-token)
if schemathesis run Docs/api/openapi.yaml --url "$(cat demo-lookups/api-url)" -H "Authorization: Bearer $token" \
     --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
     --max-examples 25 --no-color > "$log" 2>&1; then
  echo "api: schemathesis agrees with Docs/api/openapi.yaml ($(grep -Eo '[0-9]+ passed' "$log" | tail -1 || echo 'all operations'))"
else
  echo "api: schemathesis found the API and Docs/api/openapi.yaml disagree:"; tail -n 60 "$log" | sed 's/^/    /'; exit 1
fi
