"""Every command line the documentation shows: README.md, docs/*.md and examples/.

A command line is a `$ `-prompted line of a console block, a line of a bash/sh block, or an inline
code span, that runs `batchkit` or one of awsbatch-cli's aliases. Shell around it (pipes,
redirections, `&&`, comments, `[optional]` brackets, `…`) is stripped, leaving the argv.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("batchkit", "awsbsub", "awsbstat", "awsbout", "awsbkill", "awsbqueues", "awsbhosts")
_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE = re.compile(r"`([^`\n]+)`")
_SEPARATORS = {"|", "||", "&&", ";", "&"}
_REDIRECTS = {"<", ">", ">>", "2>", "2>&1", "<<<"}


@dataclass(frozen=True)
class DocCommand:
    source: str  # file:line
    text: str
    argv: tuple[str, ...]  # program first

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


def documents() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return files + sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".md"))


def commands() -> list[DocCommand]:
    found: list[DocCommand] = []
    for path in documents():
        found += commands_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return found


def commands_in(text: str, name: str) -> list[DocCommand]:
    found: list[DocCommand] = []
    language: str | None = None  # inside a fenced block: its language
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if fence:
            language = None if language is not None else fence.group(1) or "text"
            continue
        where = f"{name}:{number}"
        if language == "console":
            if line.startswith("$ "):
                found += _parse(line[2:], where)
        elif language in ("bash", "sh", "shell"):
            found += _parse(line, where)
        elif language is None:
            for span in _INLINE.findall(line):
                found += _parse(span, where)
    return found


def _parse(text: str, where: str) -> list[DocCommand]:
    cleaned = re.sub(r"\[([^\]]*)\]", r"\1", text)  # `[--events]` → `--events`
    try:
        tokens = shlex.split(cleaned, comments=True)
    except ValueError:
        return []
    found: list[DocCommand] = []
    for segment in _segments(tokens):
        for start, token in enumerate(segment):
            if token in PROGRAMS:
                argv = tuple(t for t in segment[start:] if t not in ("…", "..."))
                found.append(DocCommand(where, text.strip(), argv))
                break
    return found


def _segments(tokens: list[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token in _SEPARATORS:
            segments.append([])
        elif token in _REDIRECTS:
            skip = True
        elif "|" in token and not token.startswith("-"):
            first, *rest = token.split("|")
            segments[-1].append(first)
            segments += [[part] for part in rest]
        else:
            segments[-1].append(token)
    return [s for s in segments if s]
