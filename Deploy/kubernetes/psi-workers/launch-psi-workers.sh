#!/bin/sh
# The node's launch command for Kubernetes (workers.launch: command). The node runs it once it has
# agreed on a PSI job's buckets with its peer, with MPCNODE_JOB_ID and MPCNODE_WORKER_COUNT set; it
# replaces the previous `psi-workers` Indexed Job with this job's and returns. The node then follows
# the job's checkpoints until every bucket is done. Needs kubectl, or curl and the pod's service
# account token (the ServiceAccount mpcnode-launcher of rbac.yaml).
set -eu
: "${MPCNODE_JOB_ID:?the node sets MPCNODE_JOB_ID}" "${MPCNODE_WORKER_COUNT:?the node sets MPCNODE_WORKER_COUNT}"
case "$MPCNODE_JOB_ID" in *[!A-Za-z0-9_-]*|"") echo "not a job id: $MPCNODE_JOB_ID" >&2; exit 1 ;; esac
case "$MPCNODE_WORKER_COUNT" in *[!0-9]*|"") echo "not a worker count: $MPCNODE_WORKER_COUNT" >&2; exit 1 ;; esac
template="${PSI_WORKERS_TEMPLATE:-/etc/mpcnode/psi-workers/job.yaml}"
image="${PSI_WORKERS_IMAGE:-}"
manifest=$(sed -e "s/^\(  completions:\) [0-9]*\(   # set by the launcher\)$/\1 $MPCNODE_WORKER_COUNT\2/" \
               -e "s/^\(  parallelism:\) [0-9]*\(   # set by the launcher\)$/\1 $MPCNODE_WORKER_COUNT\2/" \
               -e "s/^\(              value: \)\"[^\"]*\"\(   # set by the launcher\)$/\1\"$MPCNODE_JOB_ID\"\2/" \
               ${image:+-e "s|^\(          image:\) mpcnode$|\1 $image|"} "$template")
# The previous workers' Job is replaced only once it has ended (Complete or Failed): a job whose workers
# still run is never cut short by the next one, which fails at launch instead.
busy() { echo "the PSI workers of another job are still running (Job psi-workers); run this job again when it has ended" >&2; exit 1; }
if command -v kubectl >/dev/null 2>&1; then
  if kubectl get job psi-workers >/dev/null 2>&1; then
    case " $(kubectl get job psi-workers -o 'jsonpath={.status.conditions[*].type}') " in
      *" Complete "*|*" Failed "*) kubectl delete job psi-workers --wait=true ;;
      *) busy ;;
    esac
  fi
  printf '%s\n' "$manifest" | kubectl create -f -
else
  sa=/var/run/secrets/kubernetes.io/serviceaccount
  api="https://kubernetes.default.svc/apis/batch/v1/namespaces/$(cat "$sa/namespace")/jobs"
  auth="Authorization: Bearer $(cat "$sa/token")"
  if previous=$(curl -fsS --cacert "$sa/ca.crt" -H "$auth" "$api/psi-workers" 2>/dev/null); then
    case "$previous" in
      *'"type":"Complete"'*|*'"type": "Complete"'*|*'"type":"Failed"'*|*'"type": "Failed"'*)
        curl -fsS --cacert "$sa/ca.crt" -H "$auth" -X DELETE "$api/psi-workers?propagationPolicy=Background" >/dev/null
        while curl -fsS --cacert "$sa/ca.crt" -H "$auth" "$api/psi-workers" >/dev/null 2>&1; do sleep 1; done ;;
      *) busy ;;
    esac
  fi
  printf '%s\n' "$manifest" | curl -fsS --cacert "$sa/ca.crt" -H "$auth" -H 'Content-Type: application/yaml' -X POST --data-binary @- "$api" >/dev/null
fi
echo "launched $MPCNODE_WORKER_COUNT PSI workers for $MPCNODE_JOB_ID"
