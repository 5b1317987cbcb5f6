#!/bin/sh
# The deployment guide's commands as an operator would script them: kata-deploy, the GPU
# nodes labelled for VM passthrough, the GPU Operator, then wait for the same "done" the
# installer's verification waits for, and run the sample pod to Test PASSED. The peer of
# the headless install in bench/e2e.py. No host checks, no fixes, no record for uninstall.
#
#   KATA_SET="--set a=b ..." OPERATOR_SET="--set c=d ..." \
#       sh bench/guide_install.sh KATA_CHART OPERATOR_CHART SAMPLE_POD_JSON NODE...
#
# helm and kubectl come from PATH, the cluster from KUBECONFIG.
set -eu
kata_chart=$1 operator_chart=$2 sample=$3
shift 3
t=3m

# shellcheck disable=SC2086 # the --set lists are meant to split
helm install kata-deploy "$kata_chart" -n kata-system --create-namespace --wait --timeout $t \
    $KATA_SET
for n in "$@"; do
    kubectl label node "$n" nvidia.com/gpu.workload.config=vm-passthrough --overwrite
done
# shellcheck disable=SC2086
helm install gpu-operator "$operator_chart" -n gpu-operator --create-namespace $OPERATOR_SET

kubectl wait --for=create clusterpolicy/cluster-policy --timeout=$t
kubectl wait --for=jsonpath='{.status.state}'=ready clusterpolicy/cluster-policy --timeout=$t
for n in "$@"; do
    kubectl wait "node/$n" --timeout=$t \
        --for=jsonpath='{.metadata.labels.katacontainers\.io/kata-runtime}'=true
    kubectl wait "node/$n" --timeout=$t \
        --for=jsonpath='{.metadata.labels.nvidia\.com/cc\.ready\.state}'=false
    until [ "$(kubectl get node "$n" -o jsonpath='{.status.allocatable.nvidia\.com/pgpu}')" \
            -gt 0 ] 2>/dev/null; do
        sleep 1
    done
done

kubectl apply -f "$sample"
name=$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$sample")
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" --timeout=5m
kubectl logs "$name" | grep "Test PASSED"
