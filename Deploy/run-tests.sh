#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
Deploy/install-dependencies.sh
swift build --build-tests
swift test --skip-build
