"""The scheduler's resource sum before the sample is applied (installer.cluster.capacity and the
sample step's choice of node and resource): quantities, overhead, the finding's numbers."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from installer.cluster.capacity import (
    format_quantity,
    parse_quantity,
    pod_requests,
    requested_on_node,
    shortfalls,
)
from installer.engine.params import SampleParams, params_json
from installer.engine.steps.sample import fit_sample, manifest, refuse

GI = 2**30
# kata-deploy's chart: the qemu-nvidia-gpu RuntimeClass's overhead.podFixed
OVERHEAD = {"memory": parse_quantity("10240Mi"), "cpu": parse_quantity("1.0")}


@pytest.mark.parametrize(("text", "value"), [
    ("10240Mi", 10 * GI), ("16Gi", 16 * GI), ("1.0", 1), ("1", 1), ("250m", Fraction(1, 4)),
    ("1500m", Fraction(3, 2)), ("0.5", Fraction(1, 2)), ("1k", 1000), ("1M", 10**6),
    ("1e3", 1000), ("1E3", 1000), ("2E", 2 * 10**18), ("512Ki", 512 * 1024), (".5Gi", GI // 2),
    ("937234648Ki", 937234648 * 1024), ("+3", 3), ("100n", Fraction(1, 10**7)),
])
def test_quantities_parse_exactly(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "1 Gi", "--1", "1.2.3", "0x10"])
def test_not_a_quantity_is_refused_by_name(text):
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@given(st.integers(min_value=1, max_value=2**20), st.sampled_from(["Ki", "Mi", "Gi"]))
def test_formatted_memory_parses_back_to_within_a_tenth_of_its_unit(n, unit):
    value = parse_quantity(f"{n}{unit}")
    shown = format_quantity("memory", value)
    back = parse_quantity(shown)
    size = parse_quantity(f"1{shown[-2:]}")
    assert abs(back - value) <= size / 10


def test_cpu_is_shown_in_cores_or_millicores():
    assert format_quantity("cpu", parse_quantity("1.0")) == "1"
    assert format_quantity("cpu", parse_quantity("250m")) == "250m"
    assert format_quantity("memory", parse_quantity("10240Mi")) == "10Gi"
    assert format_quantity("memory", parse_quantity("1536Mi")) == "1.5Gi"


def test_pod_requests_default_from_limits_and_add_the_overhead():
    spec = manifest(SampleParams("x", "16Gi", 900, "nvidia.com/pgpu", "default"),
                    "nvidia.com/pgpu")["spec"]
    own = pod_requests(spec, overhead={})
    assert own == {"nvidia.com/pgpu": 1, "memory": 16 * GI}
    total = pod_requests(spec, {"memory": "10240Mi", "cpu": "1.0"})
    assert total == {"nvidia.com/pgpu": 1, "memory": 26 * GI, "cpu": 1}


def test_init_containers_count_as_the_scheduler_counts_them():
    spec = {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "500m"},
                                          "limits": {"cpu": "2", "memory": "2Gi"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "4"}}},
                               {"restartPolicy": "Always",
                                "resources": {"requests": {"memory": "1Gi"}}}],
            "overhead": {"memory": "10240Mi", "cpu": "1.0"}}
    # containers: cpu 1.5, memory 3Gi; the sidecar adds 1Gi; the init container's 4 CPU is
    # larger than the sum; then the pod's own overhead
    assert pod_requests(spec) == {"cpu": 5, "memory": 14 * GI}


def test_finished_pods_hold_nothing():
    running = {"spec": {"containers": [{"resources": {"requests": {"memory": "100Gi"}}}]},
               "status": {"phase": "Running"}}
    done = {**running, "status": {"phase": "Succeeded"}}
    assert requested_on_node([running, done]) == {"memory": 100 * GI}


def test_overhead_alone_can_make_a_node_short():
    """20Gi free: the sample's 16Gi fits, its 16Gi plus the 10Gi overhead does not."""
    own = {"memory": 16 * GI, "nvidia.com/pgpu": Fraction(1)}
    alloc = {"memory": "20Gi", "cpu": "64", "nvidia.com/pgpu": "2"}
    assert shortfalls("gpu-1", alloc, [], own, {}) == []
    (short,) = shortfalls("gpu-1", alloc, [], own, OVERHEAD)
    assert (short.resource, short.short, short.free) == ("memory", 6 * GI, 20 * GI)
    text = short.describe("kata-qemu-nvidia-gpu")
    assert "memory short by 6Gi" in text and "16Gi for the pod + 10Gi kata-qemu-nvidia-gpu " \
        "overhead" in text and "20Gi free" in text


def node(name: str, memory: str = "512Gi", cpu: str = "64", **gpus: str) -> dict:
    alloc = {"memory": memory, "cpu": cpu, "pods": "110",
             **{f"nvidia.com/{k}": v for k, v in gpus.items()}}
    return {"metadata": {"name": name}, "status": {"allocatable": alloc}}


def pod(memory: str, cpu: str = "0", phase: str = "Running") -> dict:
    return {"spec": {"containers": [{"resources": {"requests": {"memory": memory, "cpu": cpu}}}]},
            "status": {"phase": phase}}


PARAMS = SampleParams("x", "16Gi", 900, "nvidia.com/pgpu", "default", ("gpu-1", "gpu-2"))


def test_the_sample_goes_where_it_fits_and_the_short_node_is_named():
    nodes = [node("gpu-1", pgpu="2"), node("gpu-2", pgpu="2"), node("cpu-1", memory="1Gi")]
    fit = fit_sample(PARAMS, nodes, {"gpu-1": [pod("490Gi")]}, OVERHEAD)
    assert (fit.resource, fit.fitting) == ("nvidia.com/pgpu", ("gpu-2",))
    (short,) = fit.short["gpu-1"]
    assert (short.resource, short.short) == ("memory", 4 * GI)  # 22Gi free, 26Gi needed
    assert "cpu-1" not in fit.short  # not a Kata node: never a target


def test_no_node_fits_and_the_finding_says_by_how_much_and_what_to_do():
    nodes = [node("gpu-1", pgpu="2"), node("gpu-2", pgpu="1", cpu="1")]
    on = {"gpu-1": [pod("490Gi"), pod("400Gi", phase="Succeeded")],
          "gpu-2": [pod("1Gi", cpu="500m")]}
    fit = fit_sample(PARAMS, nodes, on, OVERHEAD)
    assert fit.resource == "nvidia.com/pgpu" and not fit.fitting
    assert [s.resource for s in fit.short["gpu-2"]] == ["cpu"]
    err = refuse(fit, OVERHEAD)
    text = str(err)
    assert "node gpu-1: memory short by 4Gi" in text
    assert "node gpu-2: cpu short by 500m" in text
    assert "overhead.podFixed (cpu 1, memory 10Gi)" in err.cause
    assert "set sample.memory to 12Gi or less" in err.fix and "free 4Gi of memory on gpu-1" \
        in err.fix


def test_per_model_naming_requests_a_model_a_fitting_node_advertises():
    params = replace(PARAMS, resource=None)
    nodes = [node("gpu-1", **{"GA100_A100_PCIE_80GB": "1", "pgpu": "0"}),
             node("gpu-2", **{"GH100_H100_SXM5_80GB": "2", "nvswitch": "4"})]
    fit = fit_sample(params, nodes, {"gpu-1": [pod("500Gi")]}, OVERHEAD)
    assert (fit.resource, fit.fitting) == ("nvidia.com/GH100_H100_SXM5_80GB", ("gpu-2",))
    none = fit_sample(params, [node("gpu-1", pgpu="2", nvswitch="4")], {}, OVERHEAD)
    assert none.resource is None  # pgpu and nvswitch are no model
    # the plan's JSON (and the journal's fingerprint) names per-model naming as it always did
    assert params_json(params)["resource"] == "per-model"
    assert params_json(PARAMS)["resource"] == "nvidia.com/pgpu"


def test_a_fixed_resource_the_nodes_lack_is_no_fit_at_all():
    fit = fit_sample(PARAMS, [node("gpu-1", pgpu="0")], {}, OVERHEAD)
    assert fit.resource is None and not fit.short
