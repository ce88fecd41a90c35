#!/usr/bin/env bash
# Installs the system packages MPCNode builds against, if they are missing:
#   libsodium-dev   group operations (ristretto255, X25519), BLAKE2b, ChaCha20, CSPRNG
#   libssl-dev      OpenSSL libcrypto big numbers (field arithmetic on public values; Paillier later)
#   libsqlite3-dev  the node's local store (through GRDB)
#   pkg-config      how SwiftPM finds libsodium
#   curl            the lookup walkthrough calls the node's HTTP API with it
#   openssl         a test looks at the certificate a node presents (openssl s_client)
# Safe to run again: it installs nothing when everything is present.
set -euo pipefail
missing=()
pkg-config --exists libsodium 2>/dev/null || missing+=(libsodium-dev)
pkg-config --exists libcrypto 2>/dev/null || missing+=(libssl-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || missing+=(libsqlite3-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH: install Swift 6.3 first (see README)" >&2; exit 1; }
