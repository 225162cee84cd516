"""The children of an array or multi-node parent on AWS Batch: complete (DescribeJobs of every
child, as `out` and `stat -d` read them) or for a table (ListJobs by status), in as few calls as
possible. `AwsProvider` hands its `list_children*` calls here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from batchkit.models import STATUS_ORDER, Job, JobKind, JobStatus
from batchkit.providers.aws.batch import DESCRIBE_CHUNK, BatchGateway, in_parallel


class ChildLister:
    """Lists the children of parents through the Batch gateway (`workers` calls in parallel)."""

    def __init__(self, batch: BatchGateway, workers: int) -> None:
        self._batch = batch
        self._workers = workers

    def _by_status(
        self, statuses: Sequence[JobStatus], one: Callable[[JobStatus], list[Job]]
    ) -> list[Job]:
        pages = in_parallel(one, ordered(statuses), self._workers)
        return [job for page in pages for job in page]

    def list_children(self, parent: Job) -> list[Job]:
        """Every child of an array parent (`id:i`) or node of an MNP parent (`id#n`), complete:
        log stream, attempts, command, S3 folder, as `describe_jobs` gives them (100 ids a call,
        calls in parallel). Nodes that do not exist yet (an MNP job that has not started) are
        left out.

        Complete, because callers read log streams and details from children (`out` of a
        parent, `stat -d`), as they do on the local engine. A table that needs no more than
        status and times can use the cheaper `list_child_summaries`.
        """
        if not parent.is_parent:
            return []
        return self._in_index_order(self._batch.describe_jobs(parent.child_ids()))

    def list_child_summaries(self, parent: Job) -> list[Job]:
        """The children of a parent for a table (status, times, exit code, status reason), in
        as few calls as possible, never more than DescribeJobs of every child (awsbstat's way):

        * ListJobs(arrayJobId) per status, 1,000 a page, asking only the statuses the parent's
          status summary counts (one or two calls for a finished array of any size) or all
          seven when it has none;
        * ListJobs(multiNodeJobId) likewise for MNP nodes (Batch gives MNP parents no summary);
        * DescribeJobs of `id:i` / `id#n`, 100 a call, when that takes no more calls than
          listing (a small array, any MNP job of up to 700 nodes): the children are complete.
        """
        if not parent.is_parent:
            return []
        if self._describe_is_cheaper(parent):
            return self.list_children(parent)
        return self._listed_children(parent)

    def list_child_summaries_of(self, parents: Sequence[Job]) -> dict[str, list[Job]]:
        """`list_child_summaries` of many parents at once (what `stat -e` needs), by parent id:
        the children of every parent that is cheaper to describe share DescribeJobs calls (100
        ids a call, whoever their parent), as awsbstat's do, so that ten arrays of ten children
        take one call, not ten."""
        found: dict[str, list[Job]] = {p.job_id: [] for p in parents}
        pooled = [p for p in parents if p.is_parent and self._describe_is_cheaper(p)]
        described = {p.job_id for p in pooled}
        for parent in parents:
            if parent.is_parent and parent.job_id not in described:
                found[parent.job_id] = self._listed_children(parent)
        ids = [child for parent in pooled for child in parent.child_ids()]
        for child in self._batch.describe_jobs(ids):
            if child.id.parent in found:
                found[child.id.parent].append(child)
        for parent in pooled:
            found[parent.job_id] = self._in_index_order(found[parent.job_id])
        return found

    def _describe_is_cheaper(self, parent: Job) -> bool:
        """Whether DescribeJobs of every child takes no more calls than listing them by status."""
        size = parent.array_size if parent.kind is JobKind.ARRAY_PARENT else parent.nodes
        return -(-(size or 0) // DESCRIBE_CHUNK) <= len(self._child_statuses(parent))

    def _listed_children(self, parent: Job) -> list[Job]:
        statuses = self._child_statuses(parent)
        if parent.kind is JobKind.MNP_PARENT:
            nodes = self._by_status(
                statuses,
                lambda status: self._batch.list_node_jobs(parent.job_id, status, parent.queue),
            )
            # moto lists no node jobs: DescribeJobs of id#n finds what exists
            return self._in_index_order(nodes) if nodes else self.list_children(parent)
        return self._array_children(parent, statuses)

    @staticmethod
    def _child_statuses(parent: Job) -> list[JobStatus]:
        """The statuses to list a parent's children in first: those its status summary counts
        and every later one (a child only moves forward), or all of them without a summary."""
        counted = [s for s in STATUS_ORDER if parent.status_summary.get(s.value)]
        if not counted:
            return list(STATUS_ORDER)
        start = min(s.order for s in counted)
        return [s for s in STATUS_ORDER if s.order >= start]

    @staticmethod
    def _in_index_order(children: list[Job]) -> list[Job]:
        def index(job: Job) -> int:
            ident = job.id
            return ident.array_index if ident.array_index is not None else ident.node_index or 0

        return sorted(children, key=index)

    def _array_children(self, parent: Job, first: list[JobStatus]) -> list[Job]:
        size = parent.array_size or 0

        def one(status: JobStatus) -> list[Job]:
            return self._batch.list_array_children(parent.job_id, status, parent.queue)

        children = {job.job_id: job for job in self._by_status(first, one)}
        if len(children) < size:
            # a child moved on between the summary and the listing
            rest = [s for s in STATUS_ORDER if s not in first]
            children.update({job.job_id: job for job in self._by_status(rest, one)})
        return self._in_index_order(list(children.values()))


def ordered(statuses: Sequence[JobStatus]) -> list[JobStatus]:
    """`statuses` in the order a job goes through them, each once."""
    return [s for s in STATUS_ORDER if s in set(statuses)]
