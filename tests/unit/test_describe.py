"""kubectl-like describe text, YAML and AGE from the API's JSON (installer.diagnosis.describe)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from installer.diagnosis.describe import aligned, as_yaml, describe_node, describe_pod, human_age

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
    (600, "10m"), (179 * 60, "179m"), (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"),
    (47 * 3600, "47h"), (2 * 86400 + 3600, "2d1h"), (8 * 86400, "8d"), (700 * 86400, "700d"),
    (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y")])
def test_age_reads_as_kubectl_prints_it(seconds, shown):
    assert human_age(NOW - timedelta(seconds=seconds), NOW) == shown


def test_unknown_creation_time_is_said():
    assert human_age(None, NOW) == "<unknown>"


HELD = {
    "metadata": {"name": "nvidia-sandbox-validator-x", "namespace": "gpu-operator",
                 "labels": {"app": "nvidia-sandbox-validator"},
                 "managedFields": [{"manager": "kubelet"}]},
    "spec": {"nodeName": "gpu-node-2", "runtimeClassName": None,
             "initContainers": [{"name": "cc-manager-validation", "image": "validator:v1"},
                                {"name": "vfio-pci-validation", "image": "validator:v1"}],
             "containers": [{"name": "nvidia-sandbox-validator", "image": "validator:v1",
                             "resources": {"limits": {"nvidia.com/pgpu": "1"}}}]},
    "status": {"phase": "Pending",
               "initContainerStatuses": [
                   {"name": "cc-manager-validation", "ready": True, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                   {"name": "vfio-pci-validation", "ready": False, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
               "containerStatuses": [{"name": "nvidia-sandbox-validator", "ready": False,
                                      "state": {"waiting": {"reason": "PodInitializing"}}}],
               "conditions": [{"type": "Initialized", "status": "False",
                               "reason": "ContainersNotInitialized",
                               "message": "containers with incomplete status"}]}}
EVENTS = [{"type": "Warning", "reason": "BackOff", "count": 12,
           "lastTimestamp": "2026-12-07T11:58:00Z", "source": {"component": "kubelet"},
           "message": "Back-off restarting failed container vfio-pci-validation"}]


def test_a_pod_held_in_an_init_container_shows_which_and_why():
    text = describe_pod(HELD, EVENTS, NOW)
    init = text.index("Init Containers:")
    held = text.index("vfio-pci-validation:", init)
    assert init < held < text.index("Containers:", held)
    state = text[held:].splitlines()
    assert state[2].split() == ["State:", "Waiting"]
    assert state[3].split() == ["Reason:", "CrashLoopBackOff"]
    assert "Last State:" in state[4] and "Exit Code:" in text[held:]
    assert any(line.split() == ["Restart", "Count:", "4"] for line in state)
    assert "nvidia.com/pgpu:" in text
    assert "ContainersNotInitialized" in text
    event = next(line for line in text.splitlines() if "Back-off" in line)
    assert event.split()[:4] == ["Warning", "BackOff", "2m", "(x12)"]
    assert "\t" not in text  # padded into columns, no tab stops left to the terminal


def test_a_pod_without_events_says_so():
    assert describe_pod(HELD, [], NOW).rstrip().endswith("<none>")


def test_columns_line_up_within_a_block():
    lines = aligned("Name:\tx\nNamespace:\ty\n\tz\nplain").splitlines()
    assert lines == ["Name:       x", "Namespace:  y", "            z", "plain"]


def test_yaml_leaves_out_managed_fields_and_keeps_the_rest():
    shown = yaml.safe_load(as_yaml(HELD))
    assert "managedFields" not in shown["metadata"]
    assert shown["spec"] == HELD["spec"] and shown["status"] == HELD["status"]


def test_a_node_shows_its_gpu_labels_taints_and_allocatable():
    node = {"metadata": {"name": "gpu-node-1", "labels": {
        "nvidia.com/gpu.workload.config": "vm-passthrough"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true",
                             "effect": "NoSchedule"}]},
        "status": {"allocatable": {"nvidia.com/pgpu": "4"},
                   "nodeInfo": {"kubeletVersion": "v1.35.4"}}}
    text = describe_node(node, [], NOW)
    assert "nvidia.com/gpu.workload.config=vm-passthrough" in text
    assert "nvidia.com/gpu=true:NoSchedule" in text
    assert any(line.split() == ["nvidia.com/pgpu:", "4"] for line in text.splitlines())
    assert "v1.35.4" in text


def test_a_time_without_a_zone_is_read_as_utc():
    from installer.diagnosis.describe import parse_time

    assert parse_time("2026-12-07T11:59:00") == parse_time("2026-12-07T11:59:00Z")
    assert human_age(parse_time("2026-12-07T11:59:00"), NOW) == "60s"
