#!/bin/sh
# The node's launch command for Kubernetes (workers.launch: command). The node runs it with
# MPCNODE_ACTION=start once it has agreed on a PSI job's buckets with its peer (MPCNODE_JOB_ID,
# MPCNODE_WORKER_COUNT, MPCNODE_MAX_RESUMES, MPCNODE_MAX_JOB_SECONDS set): it replaces an ended
# `psi-workers` Indexed Job with this job's and returns, and the node follows the job's checkpoints
# until every bucket is done. With MPCNODE_ACTION=stop (the job failed or was aborted at the node) it
# deletes this job's workers. Needs kubectl, or curl and the pod's service account token (the
# ServiceAccount mpcnode-launcher of rbac.yaml).
set -eu
: "${MPCNODE_JOB_ID:?the node sets MPCNODE_JOB_ID}" "${MPCNODE_WORKER_COUNT:?the node sets MPCNODE_WORKER_COUNT}"
action="${MPCNODE_ACTION:-start}"
resumes="${MPCNODE_MAX_RESUMES:-3}"
deadline="${MPCNODE_MAX_JOB_SECONDS:-86400}"
case "$MPCNODE_JOB_ID" in *[!A-Za-z0-9_-]*|"") echo "not a job id: $MPCNODE_JOB_ID" >&2; exit 1 ;; esac
for n in "$MPCNODE_WORKER_COUNT" "$resumes" "$deadline"; do
  case "$n" in *[!0-9]*|"") echo "not a number: $n" >&2; exit 1 ;; esac
done
sa=/var/run/secrets/kubernetes.io/serviceaccount
api() { # METHOD PATH [curl options]: the Kubernetes API with the pod's token (without kubectl)
  m=$1; p=$2; shift 2
  curl -fsS --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" -X "$m" \
    "https://kubernetes.default.svc/apis/batch/v1/namespaces/$(cat "$sa/namespace")/jobs$p" "$@"
}
# This job's workers only: the Job's label names the job it runs.
if [ "$action" = stop ]; then
  if command -v kubectl >/dev/null 2>&1; then
    [ "$(kubectl get job psi-workers -o 'jsonpath={.metadata.labels.mpcnode-job}' 2>/dev/null)" = "$MPCNODE_JOB_ID" ] \
      && kubectl delete job psi-workers --cascade=foreground --wait=false
  else
    api GET /psi-workers 2>/dev/null | grep -q "\"mpcnode-job\": *\"$MPCNODE_JOB_ID\"" \
      && api DELETE "/psi-workers?propagationPolicy=Foreground" >/dev/null
  fi
  echo "stopped the PSI workers of $MPCNODE_JOB_ID (if they ran)"
  exit 0
fi
template="${PSI_WORKERS_TEMPLATE:-/etc/mpcnode/psi-workers/job.yaml}"
image="${PSI_WORKERS_IMAGE:?set PSI_WORKERS_IMAGE in the node pod: the image its workers run (the node'"'"'s own)}"
manifest=$(sed -e "s/^\(  completions:\) [0-9]*\(   # set by the launcher\)$/\1 $MPCNODE_WORKER_COUNT\2/" \
               -e "s/^\(  parallelism:\) [0-9]*\(   # set by the launcher\)$/\1 $MPCNODE_WORKER_COUNT\2/" \
               -e "s/^\(  backoffLimit:\) [0-9]*\(   # set by the launcher\)$/\1 $resumes\2/" \
               -e "s/^\(  activeDeadlineSeconds:\) [0-9]*\(   # set by the launcher\)$/\1 $deadline\2/" \
               -e "s/^\(    mpcnode-job:\) [A-Za-z0-9_-]*\(   # set by the launcher\)$/\1 $MPCNODE_JOB_ID\2/" \
               -e "s/^\(              value: \)\"[^\"]*\"\(   # set by the launcher\)$/\1\"$MPCNODE_JOB_ID\"\2/" \
               -e "s|^\(          image:\) mpcnode$|\1 $image|" "$template")
# The previous workers' Job is replaced only once it has ended (Complete or Failed): a job whose workers
# still run is never cut short by the next one, which fails at launch instead.
busy() { echo "the PSI workers of another job are still running (Job psi-workers); run this job again when it has ended" >&2; exit 1; }
if command -v kubectl >/dev/null 2>&1; then
  if kubectl get job psi-workers >/dev/null 2>&1; then
    case " $(kubectl get job psi-workers -o 'jsonpath={.status.conditions[*].type}') " in
      *" Complete "*|*" Failed "*) kubectl delete job psi-workers --cascade=foreground --wait=true ;;
      *) busy ;;
    esac
  fi
  printf '%s\n' "$manifest" | kubectl create -f -
else
  if previous=$(api GET /psi-workers 2>/dev/null); then
    case "$previous" in
      *'"type":"Complete"'*|*'"type": "Complete"'*|*'"type":"Failed"'*|*'"type": "Failed"'*)
        api DELETE "/psi-workers?propagationPolicy=Foreground" >/dev/null
        while api GET /psi-workers >/dev/null 2>&1; do sleep 1; done ;;
      *) busy ;;
    esac
  fi
  printf '%s\n' "$manifest" | api POST "" -H 'Content-Type: application/yaml' --data-binary @- >/dev/null
fi
echo "launched $MPCNODE_WORKER_COUNT PSI workers for $MPCNODE_JOB_ID"
