"""Progress bars and status tables: what a notebook user sees, escaped, and the text fallback."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from batchkit.jobs import progress as progress_module
from batchkit.jobs.display import (
    job_html,
    jobs_table_html,
    jobs_table_text,
    progress_html,
    progress_text,
)
from batchkit.jobs.progress import TextProgress, auto_progress
from batchkit.models import Job, JobStatus
from batchkit.notebook import progress as notebook_progress_module
from batchkit.notebook.progress import HtmlProgress, in_notebook, install

HOSTILE = "<script>alert('x')</script>"


def array_job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "job_id": "abc",
        "name": "squares",
        "status": JobStatus.RUNNING,
        "array_size": 4,
        "started_at": 1_000,
        "status_summary": {"SUCCEEDED": 2, "FAILED": 1, "RUNNING": 1},
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def test_an_array_shows_how_many_children_are_done() -> None:
    line = progress_text(array_job(stopped_at=66_000), width=8)

    assert line == "squares abc [######--] 3/4 RUNNING (1 running, 1 failed) 1m05s"


def test_a_single_job_shows_its_status_and_reason() -> None:
    job = Job(job_id="j1", name="one", status=JobStatus.FAILED, status_reason="OOM")

    assert progress_text(job, width=4) == "one j1 [####] 1/1 FAILED - OOM"


def test_the_html_bar_has_one_segment_per_state() -> None:
    html = progress_html(array_job())

    assert 'title="2 SUCCEEDED"' in html
    assert 'title="1 FAILED"' in html
    assert 'title="1 RUNNING"' in html
    assert "3/4 done" in html


def test_user_data_is_escaped_everywhere() -> None:
    job = Job(
        job_id="j<1>",
        name=HOSTILE,
        status=JobStatus.FAILED,
        status_reason=HOSTILE,
        image=HOSTILE,
    )

    for html in (progress_html(job), job_html(job), jobs_table_html([job])):
        assert "<script>" not in html
        assert "&lt;script&gt;" in html


def test_the_table_lists_every_job_and_says_when_there_is_none() -> None:
    jobs = [array_job(), Job(job_id="j2", name="other", status=JobStatus.SUCCEEDED, exit_code=0)]

    html = jobs_table_html(jobs)
    text = jobs_table_text(jobs)

    assert html.count("<tr>") == 3  # header + 2 rows
    assert "abc [4]" in html and "other" in html
    assert text.splitlines()[2].startswith("j2 ")
    assert "no jobs" in jobs_table_html([])


def test_text_progress_writes_a_line_per_change_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = TextProgress(stream)
    submitted = Job(job_id="j", name="n", status=JobStatus.SUBMITTED)
    running = Job(job_id="j", name="n", status=JobStatus.RUNNING)

    progress(submitted)
    progress(submitted)
    progress.close(running)

    assert [line.split()[-1] for line in stream.getvalue().splitlines()] == [
        "SUBMITTED",
        "RUNNING",
    ]


def test_outside_a_kernel_there_is_no_notebook() -> None:
    assert in_notebook() is False


def test_a_handle_waits_with_the_html_bar_once_the_notebook_plugs_it_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress_module, "_notebook_progress", None)
    assert isinstance(auto_progress(), TextProgress)

    install()
    monkeypatch.setattr(notebook_progress_module, "in_notebook", lambda: True)
    assert isinstance(auto_progress(), HtmlProgress)
    monkeypatch.setattr(notebook_progress_module, "in_notebook", lambda: False)
    assert isinstance(auto_progress(), TextProgress)


@pytest.mark.parametrize(("first", "plugged"), [("", False), ("import IPython; ", True)])
def test_import_batchkit_plugs_the_notebook_in_only_where_ipython_runs(
    first: str, plugged: bool
) -> None:
    """Where IPython runs, `import batchkit` plugs in the HTML bar; elsewhere it loads nothing."""
    probe = (
        f"{first}import sys, batchkit; "
        "plugged = getattr(sys.modules.get('batchkit.jobs.progress'), '_notebook_progress', None); "
        "print('batchkit.notebook.progress' in sys.modules, plugged is not None)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.split() == [str(plugged), str(plugged)]
