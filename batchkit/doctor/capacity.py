"""Rules about what a RUNNABLE job asks for against what its compute environments can give:
maxvCpus headroom, the largest instance type, GPUs, Fargate's combinations, architecture.

Each rule takes the `Scene` and returns findings; a rule says "problem" only when no compute
environment of the queue can run the job (a job runs in any one of them).
"""

from __future__ import annotations

import math

from batchkit.computemodel import FARGATE_MEMORY, ComputeEnvironment, InstanceType
from batchkit.doctor.findings import Finding, Verdict
from batchkit.doctor.scene import Scene, number

ECS_RESERVED_MIB = 32
"""What the Batch AMI reserves for the ECS agent and the system (AWS Batch user guide, "Reserve
system memory")."""

KERNEL_OVERHEAD = 0.025
"""ECS registers less memory than an instance has installed (kernel, platform): the user guide's
example ("Compute resource memory management") registers 7985 of an m4.large's 8192 MiB, about
2.5 % less. An estimate: the registered figure of a running instance is what `hosts` shows."""


def usable_memory(instance: InstanceType) -> int:
    """About how many MiB an instance of this type offers jobs once it joins ECS."""
    return max(0, math.floor(instance.memory * (1 - KERNEL_OVERHEAD)) - ECS_RESERVED_MIB)


def _ec2(scene: Scene) -> list[ComputeEnvironment]:
    return [ce for ce in scene.environments if not ce.is_fargate and ce.type == "MANAGED"]


def _ask(scene: Scene) -> str:
    r = scene.job.resources
    gpus = f", {r.gpus} GPUs" if r.gpus else ""
    return f"{number(r.vcpus)} vCPUs, {r.memory} MiB{gpus}"


def max_vcpus(scene: Scene) -> list[Finding]:
    """The vCPUs the job needs at once (every node of a multi-node job) against maxvCpus, and
    how much headroom is left (desiredvCpus is what Batch has asked for so far)."""
    need = scene.job.resources.vcpus * scene.nodes
    out: list[Finding] = []
    fits = [ce for ce in scene.environments if ce.max_vcpus >= need]
    for ce in scene.environments:
        check = f"compute environment {ce.name}: maxvCpus"
        seen = f"the job needs {number(need)} vCPUs at once; maxvCpus is {ce.max_vcpus}"
        if ce.max_vcpus < need:
            out.append(
                Finding(
                    "max-vcpus",
                    check,
                    Verdict.PROBLEM if not fits else Verdict.WARNING,
                    seen + " (it can never run here)",
                    fix=f"raise `max_vcpus` of environment {ce.name} in batchkit.yaml to at least "
                    f"{math.ceil(need)} and `batchkit cluster update`, or ask for fewer vCPUs "
                    "(-p) or nodes (-n)",
                    likelihood=95,
                )
            )
        elif ce.desired_vcpus + need > ce.max_vcpus:
            out.append(
                Finding(
                    "max-vcpus",
                    check,
                    Verdict.WARNING,
                    f"{seen}; {ce.desired_vcpus} are already in use or asked for: the job waits "
                    "until running jobs free some",
                    fix=f"raise `max_vcpus` of environment {ce.name} in batchkit.yaml, or wait",
                    likelihood=70,
                )
            )
        else:
            out.append(
                Finding(
                    "max-vcpus",
                    check,
                    Verdict.OK,
                    f"{seen}; {ce.desired_vcpus} in use, {ce.max_vcpus - ce.desired_vcpus} free",
                )
            )
    return out


def _fits(instance: InstanceType, scene: Scene) -> bool:
    r = scene.job.resources
    return (
        instance.vcpus >= r.vcpus
        and usable_memory(instance) >= r.memory
        and instance.gpus >= r.gpus
    )


def instance_fit(scene: Scene) -> list[Finding]:
    """The job's vCPU, memory and GPU ask against the instance types each EC2 environment may
    launch (families and `optimal` expanded). An ask of all of an instance's memory never fits:
    ECS keeps some of it."""
    out: list[Finding] = []
    envs = [ce for ce in _ec2(scene) if ce.name in scene.instance_types]
    fitting = [ce for ce in envs if any(_fits(t, scene) for t in scene.instance_types[ce.name])]
    for ce in envs:
        types = scene.instance_types[ce.name]
        check = f"compute environment {ce.name}: instance types"
        if not types:
            out.append(
                Finding(
                    "instance-fit",
                    check,
                    Verdict.WARNING,
                    f"EC2 knows none of its instance types ({', '.join(ce.instance_types)}) "
                    "in this region",
                    fix=f"set `instance_types` of environment {ce.name} to types this region has",
                    likelihood=60,
                )
            )
            continue
        if ce in fitting:
            best = [t for t in types if _fits(t, scene)]
            smallest = min(best, key=lambda t: (t.vcpus, t.memory))
            out.append(
                Finding(
                    "instance-fit",
                    check,
                    Verdict.OK,
                    f"the job ({_ask(scene)}) fits {len(best)} of {len(types)} types, "
                    f"the smallest {smallest.name} ({smallest.vcpus} vCPUs, about "
                    f"{usable_memory(smallest)} MiB for jobs)",
                )
            )
            continue
        cpu = max(types, key=lambda t: t.vcpus)
        mem = max(types, key=lambda t: t.memory)
        seen = (
            f"the job asks for {_ask(scene)}; the largest types are {cpu.name} ({cpu.vcpus} "
            f"vCPUs) and {mem.name} ({mem.memory} MiB installed, about {usable_memory(mem)} MiB "
            "for jobs)"
        )
        r = scene.job.resources
        limit = usable_memory(mem)
        fix = (
            f"ask for at most {cpu.vcpus} vCPUs (-p) and {limit} MiB (-m), or add larger types "
            f"to `instance_types` of environment {ce.name} in batchkit.yaml"
        )
        if r.gpus and not any(t.gpus >= r.gpus for t in types):
            seen += f"; none has {r.gpus} GPUs"
        out.append(
            Finding(
                "instance-fit",
                check,
                Verdict.PROBLEM if not fitting else Verdict.WARNING,
                seen,
                fix=fix,
                likelihood=90,
            )
        )
    return out


def gpus(scene: Scene) -> list[Finding]:
    """A GPU ask on compute environments without GPU instance types (or on Fargate)."""
    want = scene.job.resources.gpus
    if not want:
        return []
    able = [
        ce
        for ce in _ec2(scene)
        if any(t.gpus >= want for t in scene.instance_types.get(ce.name) or ())
    ]
    if able:
        names = ", ".join(ce.name for ce in able)
        return [
            Finding("gpus", "GPU instance types", Verdict.OK, f"{names} can launch {want} GPUs")
        ]
    if any(ce.name not in scene.instance_types and not ce.is_fargate for ce in _ec2(scene)):
        return []  # the instance types were not read: "not checked" says so already
    kinds = ", ".join(
        f"{ce.name} ({'Fargate' if ce.is_fargate else '/'.join(ce.instance_types) or '?'})"
        for ce in scene.environments
    )
    return [
        Finding(
            "gpus",
            "GPU instance types",
            Verdict.PROBLEM,
            f"the job asks for {want} GPUs but no compute environment of queue "
            f"{scene.job.queue} launches GPU instances: {kinds}",
            fix="submit to a GPU queue (`gpu: true` in batchkit.yaml, with GPU `instance_types` "
            "such as g5 or p4d) with -q, or drop --gpus",
            likelihood=98,
        )
    ]


def fargate_combination(scene: Scene) -> list[Finding]:
    """Fargate takes only certain vCPU/memory pairs and no GPUs."""
    envs = [ce for ce in scene.environments if ce.is_fargate]
    if not envs:
        return []
    r = scene.job.resources
    allowed = FARGATE_MEMORY.get(float(r.vcpus))
    check = "Fargate vCPU and memory"
    if r.gpus:
        seen = f"the job asks for {r.gpus} GPUs; Fargate has none"
        fix = "submit to an EC2 GPU queue with -q, or drop --gpus"
    elif allowed is None:
        seen = f"{number(r.vcpus)} vCPUs is not a Fargate size (0.25, 0.5, 1, 2, 4, 8, 16)"
        fix = "ask for one of those vCPU counts with -p"
    elif r.memory not in allowed:
        seen = (
            f"{number(r.vcpus)} vCPUs with {r.memory} MiB is no Fargate combination; "
            f"{number(r.vcpus)} vCPUs take {allowed[0]}-{allowed[-1]} MiB in steps of "
            f"{allowed[1] - allowed[0]}"
        )
        nearest = min((m for m in allowed if m >= r.memory), default=allowed[-1])
        fix = f"ask for {nearest} MiB (-m {nearest}), or another vCPU count (-p)"
    else:
        return [Finding("fargate", check, Verdict.OK, f"{number(r.vcpus)} vCPUs, {r.memory} MiB")]
    verdict = Verdict.PROBLEM if len(envs) == len(scene.environments) else Verdict.WARNING
    return [Finding("fargate", check, verdict, seen, fix=fix, likelihood=97)]


def architecture(scene: Scene, image_architectures: tuple[str, ...] | None) -> list[Finding]:
    """The image's architectures (when known) against the instance types' architectures."""
    if not image_architectures:
        return []
    out: list[Finding] = []
    for ce in _ec2(scene):
        types = scene.instance_types.get(ce.name)
        if not types:
            continue
        arches = {a for t in types for a in t.architectures}
        if arches & set(image_architectures):
            continue
        out.append(
            Finding(
                "architecture",
                f"compute environment {ce.name}: architecture",
                Verdict.PROBLEM,
                f"the image is built for {', '.join(image_architectures)}; the instance types "
                f"are {', '.join(sorted(arches))}",
                fix="build the image for the instances' architecture, or use matching "
                f"`instance_types` (e.g. default_arm64) for environment {ce.name}",
                likelihood=85,
            )
        )
    return out
