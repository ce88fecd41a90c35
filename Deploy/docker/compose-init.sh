#!/bin/sh
# Run once by the `pki` service of compose.yaml: a consortium CA (its key stays in the pki volume, which
# no node mounts), and for each node its own key, request, certificate and configuration, each in the
# node's own volume (/nodes/<id>, mounted as /etc/mpcnode by that node only). Idempotent.
set -eu
PKI=${PKI:-/pki}; NODES=${NODES:-/nodes}; MPCNODE=${MPCNODE:-mpcnode}  # (Deploy/check-deploy-files.sh runs it outside a container)
mpcnode() { "$MPCNODE" "$@"; }
[ -f "$PKI/ca.pem" ] || mpcnode ca init --dir "$PKI" --name "MPCNode local consortium"
for spec in coordinator:coordinator bank-a:bank bank-b:bank; do
  id=${spec%%:*}; role=${spec##*:}; out=$NODES/$id
  [ -f "$out/node.yaml" ] && continue
  mpcnode node init --node "$id" --role "$role" --dir "$out"
  mpcnode ca sign --dir "$PKI" --csr "$out/$id.csr" --role "$role" --node "$id" --out "$out"
  cp "$PKI/ca.pem" "$out/ca.pem"
  peers=""
  for other in coordinator bank-a bank-b; do [ "$other" = "$id" ] || peers="$peers
  $other: $other:7443"; done
  http=""
  if [ "$id" = bank-a ]; then
    mpcnode node token --name compose --roles lookup,read,metrics > "$out/api-token.txt"
    hash=$(sed -n 's/^ *sha256: //p' "$out/api-token.txt")
    http="http:
  listen: 0.0.0.0:8401
  tokens:
    - {name: compose, sha256: $hash, roles: [lookup, read, metrics]}"
  fi
  policy="policy:
  coordinators: [coordinator]
  datasets:
    customers:
      columns: [phone]
      protocols: [psi, psi-cardinality]
      result_recipients: [bank-a]
      min_set_size: 20"
  [ "$role" = coordinator ] && policy=""
  cat > "$out/node.yaml" <<YAML
node_id: $id
listen: 0.0.0.0:7443
data_dir: /var/lib/mpcnode/node
tls:
  certificate: $id.pem
  private_key: $id-key.pem
  ca_certificate: ca.pem
peers:$peers
$http
$policy
YAML
  # In the container this runs as root: the node's user (10001) owns its files; its key stays 0600.
  [ "$(id -u)" != 0 ] || chown -R 10001:10001 "$out"
done
echo "consortium ready: the API token of bank-a is in the bank-a-etc volume (api-token.txt)"
