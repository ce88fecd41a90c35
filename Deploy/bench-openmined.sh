#!/usr/bin/env bash
# Issue 15, part 0: this project's ECDH PSI beside OpenMined PSI (PyPI openmined.psi 2.0.6, ECDH over
# P-256, client and server in one Python process, no network) on sets of the same size and overlap, one
# after the other on this machine. Prints both wall times and the ratio.
#
#   bash Deploy/bench-openmined.sh [size]        # default 1048576 (2^20 a side, half of them shared)
#
# Ours runs `mpcnode bench psi` (two daemons over mutual TLS, SQLite to stored result, both sides learn
# the intersection); theirs runs CreateSetupMessage / CreateRequest / ProcessRequest / GetIntersection
# with reveal_intersection and the exact (RAW) setup, so the client learns the intersection.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-1048576}"

if ! python3 -c "import private_set_intersection.python" 2>/dev/null; then
  echo "installing openmined.psi 2.0.6 from PyPI…" >&2
  python3 -m pip install --quiet --disable-pip-version-check "openmined.psi==2.0.6"
fi
if [[ ! -x .build/release/mpcnode ]]; then
  swift build -c release --product mpcnode
fi

echo "== mpcnode bench psi --size $size (ecdh)"
ours_log="$(mktemp)"
.build/release/mpcnode bench psi --size "$size" | tee "$ours_log"
ours=$(grep -oE 'wall time[^0-9]*[0-9.]+' "$ours_log" | grep -oE '[0-9.]+$' | head -1 || true)

echo "== OpenMined PSI 2.0.6, $size a side"
theirs=$(python3 - "$size" <<'PY'
import sys, time
import private_set_intersection.python as psi
n = int(sys.argv[1])
# The same shape as `mpcnode bench psi`: n identifiers a side, n/2 of them shared.
client_items = ["+86 1%010d" % i for i in range(n)]
server_items = ["+86 1%010d" % i for i in range(n // 2, n + n // 2)]
t = time.monotonic()
server = psi.server.CreateWithNewKey(True)
client = psi.client.CreateWithNewKey(True)
setup = server.CreateSetupMessage(1e-9, len(client_items), server_items, psi.DataStructure.RAW)
request = client.CreateRequest(client_items)
response = server.ProcessRequest(request)
found = client.GetIntersection(setup, response)
elapsed = time.monotonic() - t
assert len(found) == n - n // 2, len(found)
print(f"  intersection {len(found)}, {elapsed:.2f} s", file=sys.stderr)
print(f"{elapsed:.2f}")
PY
)
echo "  OpenMined PSI: $theirs s"
if [[ -n "$ours" ]]; then
  python3 -c "import sys; o, t = float(sys.argv[1]), float(sys.argv[2]); print(f'== ours {o:.2f} s, OpenMined {t:.2f} s: ours is {t / o:.2f}x as fast')" "$ours" "$theirs"
else
  echo "(could not read the wall time from mpcnode's output: see above)"
fi
rm -f "$ours_log"
