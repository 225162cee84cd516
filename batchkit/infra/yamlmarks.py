"""YAML loading that remembers where every key came from.

Config errors must name the file, the line and the key. PyYAML forgets positions once it has built
plain dicts, so `MarkedLoader` composes the node graph first, records the start line of every node
by its key path (`("queues", 0, "name")`), and only then constructs the plain data.
"""

from __future__ import annotations

from typing import Any

import yaml
from msgspec import Struct

KeyPath = tuple[str | int, ...]


class DuplicateKeyError(ValueError):
    """A mapping names the same key twice; YAML would silently keep the last one."""

    def __init__(self, path: KeyPath, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key (first given on line {first_line})")
        self.path = path
        self.line = line


class MarkedDocument(Struct, frozen=True):
    """The plain data of a YAML document and the 1-based line of each key path in it."""

    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor that exists (for a missing key)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


class MarkedLoader(yaml.SafeLoader):
    """A SafeLoader that also returns the start line of every key path of the document."""

    def load_marked(self) -> MarkedDocument:
        node = self.get_single_node()
        if node is None:
            return MarkedDocument(data=None, lines={(): 1})
        lines: dict[KeyPath, int] = {}
        self._record(node, (), lines)
        return MarkedDocument(data=self.construct_document(node), lines=lines)

    def _record(self, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, str | int):
                    key = str(key)
                if key in seen:
                    raise DuplicateKeyError((*path, key), key_line, seen[key])
                seen[key] = key_line
                lines[(*path, key)] = key_line
                self._record(value_node, (*path, key), lines)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._record(item, (*path, index), lines)


def load_marked(text: str) -> MarkedDocument:
    """Parse one YAML document; raises yaml.YAMLError or DuplicateKeyError."""
    loader = MarkedLoader(text)
    try:
        return loader.load_marked()
    finally:
        loader.dispose()


def format_path(path: KeyPath) -> str:
    """`("queues", 0, "name")` → `queues[0].name`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"
