"""Which way the run reaches each host (hostAccess: over SSH, or through a host-access pod),
and what that pod is made of - read from the answers alone, so the plan can show the pod
(its name, image and namespace) before anything is created, and the run makes exactly it.
"""

from __future__ import annotations

from installer.answers.model import Answers
from installer.charts.registry import mirror_of
from installer.charts.values import kata_nodes_of
from installer.cluster.facts import Facts
from installer.hosts.podaccess import PodSettings, pod_name


def reached_by_pod(answers: Answers, node: str) -> bool:
    return answers.nodes.access_for(node, answers.host_access.mode) == "pod"


def host_pod(answers: Answers, node: str) -> str | None:
    """`namespace/name` of the node's host-access pod, or None when it is reached over SSH."""
    if not reached_by_pod(answers, node):
        return None
    return f"{answers.host_access.namespace}/{pod_name(node)}"


def pod_settings(answers: Answers) -> PodSettings:
    """The pods' settings: the image under images.registry when one is set (an air-gapped
    cluster pulls it from its mirror as it pulls the charts' images), with the same pull
    secrets; a command's limit is the SSH one, so a fix has the same time either way."""
    access, images = answers.host_access, answers.images
    image = mirror_of(access.pod_image, images.registry) if images.registry else \
        access.pod_image
    return PodSettings(image, access.namespace, access.concurrency,
                       float(access.pod_start_seconds), float(answers.ssh.command_timeout),
                       tuple(images.pull_secrets))


def probe_pods(answers: Answers, facts: Facts) -> list[str]:
    """The host-access pods the probe of the Kata hosts makes (namespace/name): what a
    front end names when it asks before the checks."""
    return [pod for n in kata_nodes_of(answers, facts.cluster)
            if (pod := host_pod(answers, n.name)) is not None]
