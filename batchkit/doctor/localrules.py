"""The local engine's rules: the job's ask against this machine's capacity (and the variables that
change it), the Docker engine and the job's image, the worker that runs jobs, a worker that
crashed. Dependencies and failures share the AWS rules (`queueing.dependencies`,
`failure.explain`): the local engine speaks the same data model."""

from __future__ import annotations

from batchkit.computemodel import LocalScene
from batchkit.doctor.findings import Finding, Verdict
from batchkit.doctor.scene import number
from batchkit.models import Job, JobStatus, Resources

CAPACITY_VARIABLES = "BATCHKIT_LOCAL_VCPUS, BATCHKIT_LOCAL_MEMORY (MiB), BATCHKIT_LOCAL_GPUS"


def _fits(need: Resources, count: int, have: Resources) -> bool:
    return (
        need.vcpus * count <= have.vcpus + 1e-9
        and need.memory * count <= have.memory
        and need.gpus * count <= have.gpus
    )


def _describe(r: Resources) -> str:
    return f"{number(r.vcpus)} vCPUs, {r.memory} MiB, {r.gpus} GPUs"


def capacity(job: Job, scene: LocalScene) -> list[Finding]:
    if job.status.is_final or job.status is JobStatus.RUNNING:
        return []
    count = max(1, job.nodes)
    need = job.resources
    check = "local capacity"
    asked = f"{_describe(Resources(need.vcpus * count, need.memory * count, need.gpus * count))}"
    if not _fits(need, count, scene.total):
        return [
            Finding(
                "local-capacity",
                check,
                Verdict.PROBLEM,
                f"the job needs {asked}; this machine's local compute environment has "
                f"{_describe(scene.total)}: it can never run (CannotPlaceJob)",
                fix=f"ask for less (-p, -m, --gpus), or raise {CAPACITY_VARIABLES} and restart "
                "the worker",
                likelihood=98,
            )
        ]
    if not _fits(need, count, scene.free):
        return [
            Finding(
                "local-capacity",
                check,
                Verdict.WARNING,
                f"the job needs {asked}; {scene.running_jobs} running jobs leave "
                f"{_describe(scene.free)} free: it starts when they finish",
                fix=f"wait, or raise {CAPACITY_VARIABLES}",
                likelihood=60,
            )
        ]
    return [
        Finding(
            "local-capacity",
            check,
            Verdict.OK,
            f"the job needs {asked}; free: {_describe(scene.free)}",
        )
    ]


def worker(job: Job, scene: LocalScene) -> list[Finding]:
    check = "local worker"
    if scene.worker_pid is not None:
        return [Finding("local-worker", check, Verdict.OK, f"running (pid {scene.worker_pid})")]
    if job.status.is_final:
        return []
    crashed = job.status in (JobStatus.STARTING, JobStatus.RUNNING)
    tail = tuple(line for line in scene.worker_log_tail if line.strip())[-5:]
    if crashed or any("Traceback" in line or "Error" in line for line in tail):
        seen = (
            f"no worker runs, yet the job is {job.status.value}: the worker that ran it stopped "
            "(crashed or was killed)"
        )
    else:
        seen = f"no worker runs, so nothing starts the {job.status.value} job"
    return [
        Finding(
            "local-worker",
            check,
            Verdict.PROBLEM,
            seen,
            fix="start one: `batchkit local worker` (foreground, shows its errors), or any "
            "`batchkit sub` starts one in the background; its log is worker.log in BATCHKIT_HOME",
            likelihood=96 if crashed else 90,
            details=tail,
        )
    ]


def docker(job: Job, scene: LocalScene) -> list[Finding]:
    if not job.image:
        return []
    check = f"image {job.image}"
    if not scene.docker_reachable:
        if scene.executor == "docker":
            verdict, likelihood = Verdict.PROBLEM, 95
            seen = (
                "the job asks for the Docker executor but no Docker engine answers at "
                f"{scene.docker_endpoint}"
            )
        else:
            verdict, likelihood = Verdict.WARNING, 30
            seen = (
                f"no Docker engine answers at {scene.docker_endpoint}: the job runs as a local "
                "process and its image is not used"
            )
        if scene.docker_error:
            seen += f" ({scene.docker_error})"
        return [
            Finding(
                "local-docker",
                check,
                verdict,
                seen,
                fix="start Docker or set DOCKER_HOST (`batchkit local doctor` shows what it tried)",
                likelihood=likelihood,
            )
        ]
    if scene.image_present is False:
        return [
            Finding(
                "local-docker",
                check,
                Verdict.PROBLEM,
                f"the Docker engine at {scene.docker_endpoint} has no image {job.image}; the "
                "local engine does not pull",
                fix=f"build it (`batchkit image build -c local`) or `docker pull {job.image}`",
                likelihood=94,
            )
        ]
    if scene.image_present:
        return [Finding("local-docker", check, Verdict.OK, f"present in {scene.docker_endpoint}")]
    return []


def local_rules(job: Job, scene: LocalScene) -> list[Finding]:
    """Every local rule that applies to a job that has not ended."""
    if job.status.is_final:
        return []
    return [*worker(job, scene), *capacity(job, scene), *docker(job, scene)]


def engine_rules(scene: LocalScene) -> list[Finding]:
    """The engine as a whole (`batchkit doctor -c local` without a job): the worker when jobs
    wait, the Docker engine."""
    out: list[Finding] = []
    if scene.worker_pid is not None:
        out.append(
            Finding("local-worker", "local worker", Verdict.OK, f"running (pid {scene.worker_pid})")
        )
    elif scene.waiting_jobs or scene.running_jobs:
        out.append(
            Finding(
                "local-worker",
                "local worker",
                Verdict.PROBLEM,
                f"no worker runs, yet {scene.waiting_jobs} jobs wait and {scene.running_jobs} "
                "are marked running: the worker stopped (crashed or was killed)",
                fix="start one: `batchkit local worker` (foreground, shows its errors); its log "
                "is worker.log in BATCHKIT_HOME",
                likelihood=95,
                details=tuple(line for line in scene.worker_log_tail if line.strip())[-5:],
            )
        )
    else:
        out.append(Finding("local-worker", "local worker", Verdict.OK, "idle: no job waits"))
    docker_seen = (
        f"answers at {scene.docker_endpoint}"
        if scene.docker_reachable
        else f"no engine answers at {scene.docker_endpoint}: jobs run as local processes"
    )
    out.append(
        Finding(
            "local-docker",
            "Docker engine",
            Verdict.OK if scene.docker_reachable else Verdict.WARNING,
            docker_seen,
            fix=None if scene.docker_reachable else "start Docker or set DOCKER_HOST to use images",
            likelihood=20,
        )
    )
    out.append(
        Finding(
            "local-capacity",
            "local capacity",
            Verdict.OK,
            f"{_describe(scene.total)} in all, {_describe(scene.free)} free "
            f"(set by {CAPACITY_VARIABLES})",
        )
    )
    return out
