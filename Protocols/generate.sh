#!/usr/bin/env bash
# Regenerates Sources/MPCWire from Protocols/*.proto. The output is committed, so builds never need
# protoc; run this only after changing a .proto. Needs Debian's protoc and protoc-gen-swift 1.39.0
# (built once from the swift-protobuf package: `swift build -c release --product protoc-gen-swift`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
command -v protoc-gen-swift >/dev/null || { echo "protoc-gen-swift missing: see the comment in this script" >&2; exit 1; }
protoc --swift_out=Sources/MPCWire --swift_opt=Visibility=Public --proto_path=Protocols Protocols/*.proto
echo "generated Sources/MPCWire from $(ls Protocols/*.proto | tr '\n' ' ')"
