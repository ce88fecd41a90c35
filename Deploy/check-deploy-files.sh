#!/usr/bin/env bash
# Checks the deployment files of Deploy/ with the tools this machine has (run by Deploy/run-tests.sh):
#   Kubernetes  the kustomized manifests against the Kubernetes schemas (kubernetes-validate, from PyPI)
#   systemd     the unit with systemd-analyze verify
#   Compose     its init script run for real with the built mpcnode (a CA, three nodes' keys, certificates
#               and configurations), and `docker compose config` when the Compose plugin is there
# A tool that is missing is said, not silently skipped; the Kubernetes check is required.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${MPCNODE_BIN:-$(swift build --show-bin-path)/mpcnode}"
[ -x "$BIN" ] || { echo "build mpcnode first ($BIN missing)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# Kubernetes.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate >/dev/null 2>&1 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes-validate >/dev/null 2>&1 || true
fi
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize Deploy/kubernetes > "$work/k8s.yaml"
else
  # Without kubectl: the resources as written (the ConfigMap is generated, so checked as YAML only).
  for f in $(sed -n 's/^  - \(.*\.yaml\)$/\1/p' Deploy/kubernetes/kustomization.yaml); do cat "Deploy/kubernetes/$f"; echo "---"; done > "$work/k8s.yaml"
  python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' Deploy/kubernetes/node.yaml
fi
if command -v kubernetes-validate >/dev/null 2>&1; then
  if kubernetes-validate --strict --quiet "$work/k8s.yaml"; then
    echo "deploy: Kubernetes manifests valid ($(grep -c '^kind:' "$work/k8s.yaml") resources, kubernetes-validate --strict)"
  else
    echo "deploy: Kubernetes manifests INVALID"; failed=1
  fi
else
  echo "deploy: kubernetes-validate could not be installed (pip): the Kubernetes manifests were not checked"; failed=1
fi

# Kubernetes: the PSI workers' Indexed Job as the node's launch command makes it (run for real with a
# kubectl that records what it is given), for 3 workers of one job.
mkdir -p "$work/bin"
# (`get job` fails: no earlier workers' Job, so nothing is deleted.)
printf '#!/bin/sh\ncase "$1" in create) cat > "%s/launched.yaml" ;; get) exit 1 ;; esac\n' "$work" > "$work/bin/kubectl"
chmod +x "$work/bin/kubectl"
if PATH="$work/bin:$PATH" MPCNODE_JOB_ID=job-4c0ffee12345 MPCNODE_WORKER_COUNT=3 PSI_WORKERS_IMAGE=registry.example/mpcnode:1.0 \
     MPCNODE_MAX_RESUMES=2 MPCNODE_MAX_JOB_SECONDS=7200 \
     PSI_WORKERS_TEMPLATE=Deploy/kubernetes/psi-workers/job.yaml sh Deploy/kubernetes/psi-workers/launch-psi-workers.sh > "$work/launch.log" 2>&1 \
   && python3 - "$work/launched.yaml" <<'PY'
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]
assert job["kind"] == "Job" and spec["completionMode"] == "Indexed", "not an Indexed Job"
assert spec["completions"] == 3 and spec["parallelism"] == 3, (spec["completions"], spec["parallelism"])
assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] == 7200, "the node's max_resumes and max_job_seconds not applied"
assert job["metadata"]["labels"]["mpcnode-job"] == "job-4c0ffee12345", job["metadata"]["labels"]
pod = spec["template"]["spec"]
worker = pod["containers"][0]
assert {"name": "MPCNODE_JOB_ID", "value": "job-4c0ffee12345"} in worker["env"], worker["env"]
assert worker["image"] == "registry.example/mpcnode:1.0", worker["image"]
assert worker["args"][:1] == ["worker"] and pod["subdomain"] == "psi-workers", "not the worker pods of the headless Service"
PY
then
  if command -v kubernetes-validate >/dev/null 2>&1 && kubernetes-validate --strict --quiet "$work/launched.yaml"; then
    echo "deploy: the PSI workers' Indexed Job as launched (3 workers, job id, image set) is valid (kubernetes-validate --strict)"
  else
    echo "deploy: the PSI workers' Indexed Job as launched is INVALID"; failed=1
  fi
else
  echo "deploy: launch-psi-workers.sh did not make the Indexed Job asked for:"; sed 's/^/    /' "$work/launch.log"; failed=1
fi
# A Job of an earlier PSI job whose workers still run is not replaced: the launch fails and says why.
printf '#!/bin/sh\ncase "$1" in create) touch "%s/replaced" ;; delete) touch "%s/replaced" ;; get) echo "" ;; esac\n' "$work" "$work" > "$work/bin/kubectl"
if PATH="$work/bin:$PATH" MPCNODE_JOB_ID=job-4c0ffee12346 MPCNODE_WORKER_COUNT=2 PSI_WORKERS_TEMPLATE=Deploy/kubernetes/psi-workers/job.yaml PSI_WORKERS_IMAGE=x \
     sh Deploy/kubernetes/psi-workers/launch-psi-workers.sh > "$work/busy.log" 2>&1 || [ -e "$work/replaced" ] || ! grep -q "still running" "$work/busy.log"; then
  echo "deploy: launch-psi-workers.sh replaced (or did not refuse) a workers' Job that still runs:"; sed 's/^/    /' "$work/busy.log"; failed=1
else
  echo "deploy: launch-psi-workers.sh refuses to replace a workers' Job that still runs"
fi
# Stopping (the job failed at the node): its own workers' Job is deleted, another job's is not.
printf '#!/bin/sh\ncase "$1" in get) echo job-4c0ffee12345 ;; delete) touch "%s/deleted" ;; esac\n' "$work" > "$work/bin/kubectl"
stop() { PATH="$work/bin:$PATH" MPCNODE_ACTION=stop MPCNODE_JOB_ID=$1 MPCNODE_WORKER_COUNT=3 PSI_WORKERS_IMAGE=x \
           sh Deploy/kubernetes/psi-workers/launch-psi-workers.sh > "$work/stop.log" 2>&1; }
if stop job-ffffffffffff && [ ! -e "$work/deleted" ] && stop job-4c0ffee12345 && [ -e "$work/deleted" ]; then
  echo "deploy: launch-psi-workers.sh stops its job's workers and no other job's"
else
  echo "deploy: launch-psi-workers.sh did not stop exactly its job's workers:"; sed 's/^/    /' "$work/stop.log"; failed=1
fi

# systemd.
if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s|/usr/local/bin/mpcnode|$BIN|" Deploy/systemd/mpcnode.service > "$work/mpcnode.service"
  if out=$(systemd-analyze verify "$work/mpcnode.service" 2>&1) && [ -z "$out" ]; then
    echo "deploy: systemd unit valid (systemd-analyze verify)"
  else
    echo "deploy: systemd unit: $out"; failed=1
  fi
else
  echo "deploy: systemd-analyze is not installed here: the unit was not checked"
fi

# Compose: its init script, for real.
if PKI="$work/pki" NODES="$work/nodes" MPCNODE="$BIN" sh Deploy/docker/compose-init.sh > "$work/init.log" 2>&1; then
  for id in coordinator bank-a bank-b; do
    for f in node.yaml "$id.pem" "$id-key.pem" ca.pem; do
      [ -f "$work/nodes/$id/$f" ] || { echo "deploy: compose-init.sh made no $id/$f"; failed=1; }
    done
    [ "$(stat -c %a "$work/nodes/$id/$id-key.pem")" = 600 ] || { echo "deploy: $id's key is not 0600"; failed=1; }
    [ ! -e "$work/nodes/$id/ca-key.pem" ] || { echo "deploy: the CA's key is in $id's volume"; failed=1; }
  done
  grep -q "roles: \[lookup, read, metrics\]" "$work/nodes/bank-a/node.yaml" || { echo "deploy: bank-a has no API token"; failed=1; }
  # Each configuration loads, its key is private and its certificate verifies (mpcnode doctor, files only).
  for id in coordinator bank-a bank-b; do
    "$BIN" doctor --offline --config "$work/nodes/$id/node.yaml" > "$work/doctor.log" 2>&1 \
      || { echo "deploy: mpcnode doctor refuses $id's configuration:"; sed 's/^/    /' "$work/doctor.log"; failed=1; }
  done
  [ "$failed" = 1 ] || echo "deploy: Compose init made a CA and three nodes' keys, certificates and configurations"
else
  echo "deploy: Deploy/docker/compose-init.sh failed:"; sed 's/^/    /' "$work/init.log"; failed=1
fi
if docker compose version >/dev/null 2>&1; then
  if docker compose -f Deploy/docker/compose.yaml config --quiet; then echo "deploy: compose.yaml valid (docker compose config)"; else failed=1; fi
else
  python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert {"pki", "coordinator", "bank-a", "bank-b"} <= set(d["services"])' \
    Deploy/docker/compose.yaml || { echo "deploy: compose.yaml does not parse"; failed=1; }
  echo "deploy: the Docker Compose plugin is not installed here: compose.yaml was only parsed as YAML"
fi
exit "$failed"
