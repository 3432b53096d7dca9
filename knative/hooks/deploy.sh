#!/bin/sh
# Deploy-time steps that skaffold.yaml runs as host hooks (from the repository root).
# skaffold gives deploy hooks SKAFFOLD_KUBE_CONTEXT but not the built image names, which is
# why the migration Job itself is applied by skaffold (config patient-mgt-migrate, rendered
# with the freshly built image) and this script only clears and awaits it.
#
#   check-site-values     refuse a prod deploy while site values are still the examples
#   delete-migration-job  remove the previous release's Job (a Job's template is immutable)
#   wait-for-migration    block until the Job succeeded; fail the deploy (with logs) if not
#   wait-for-services     block until the Services, Broker, Triggers and sources are Ready
set -eu

NS=patient-mgt
JOB=patient-mgt-migrate
TIMEOUT=${PATIENT_MGT_DEPLOY_TIMEOUT_SECONDS:-960}

kc() {
    if [ -n "${SKAFFOLD_KUBE_CONTEXT:-}" ]; then
        kubectl --context "$SKAFFOLD_KUBE_CONTEXT" "$@"
    else
        kubectl "$@"
    fi
}

case "${1:-}" in
check-site-values)
    if grep -rnE '^[^#]*(example\.org|example-lab-project|111111111111)' knative/overlays/prod knative/gcp; then
        echo "deploy.sh: the prod site values above are still the examples; edit them first (docs/deploy.md, Site values)" >&2
        exit 1
    fi
    ;;
delete-migration-job)
    kc -n "$NS" delete job "$JOB" --ignore-not-found --wait=true
    ;;
wait-for-migration)
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        succeeded=$(kc -n "$NS" get job "$JOB" -o jsonpath='{.status.succeeded}')
        failed=$(kc -n "$NS" get job "$JOB" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')
        if [ "${succeeded:-0}" -ge 1 ]; then
            kc -n "$NS" logs "job/$JOB" --tail=20 || true
            echo "deploy.sh: migrations applied"
            exit 0
        fi
        if [ "$failed" = "True" ]; then
            echo "deploy.sh: migration Job failed; the Services were NOT updated. Its logs:" >&2
            kc -n "$NS" logs "job/$JOB" --tail=200 >&2 || true
            exit 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "deploy.sh: migration Job did not finish within ${TIMEOUT}s; the Services were NOT updated" >&2
            kc -n "$NS" describe job "$JOB" >&2 || true
            exit 1
        fi
        sleep 3
    done
    ;;
wait-for-services)
    kc -n "$NS" wait --for=condition=Ready --timeout="${TIMEOUT}s" \
        services.serving.knative.dev --all
    kc -n "$NS" wait --for=condition=Ready --timeout="${TIMEOUT}s" \
        brokers.eventing.knative.dev,triggers.eventing.knative.dev,pingsources.sources.knative.dev,sinkbindings.sources.knative.dev --all
    ;;
*)
    echo "usage: $0 check-site-values|delete-migration-job|wait-for-migration|wait-for-services" >&2
    exit 2
    ;;
esac
