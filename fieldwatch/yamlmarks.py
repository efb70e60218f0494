"""YAML loading that remembers where every value came from.

Config and rule files are validated after loading; to report `file:line:col` for a problem in a
nested value we keep a map from each value's path (a tuple of keys and indexes) to its position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fieldwatch.errors import LocatedError, Problem

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Loaded:
    """A parsed YAML document and the 1-based (line, col) of each value by path."""

    data: Any
    marks: dict[PathKey, tuple[int, int]]
    file: str
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of the deepest known prefix of `path` (a missing key points at its parent)."""
        p = tuple(path)
        while p not in self.marks and p:
            p = p[:-1]
        return self.marks.get(p, (1, 1))

    def problem(self, path: Sequence[str | int], message: str, at_key: bool = False) -> Problem:
        """A problem located at the value of `path` (or at its key, for unknown keys)."""
        pos = self.key_marks.get(tuple(path)) if at_key else None
        line, col = pos or self.where(path)
        return Problem(self.file, line, col, message)


def _construct(node: yaml.Node, path: PathKey, marks: dict[PathKey, tuple[int, int]],
               loader: yaml.SafeLoader, problems: list[Problem], file: str,
               key_marks: dict[PathKey, tuple[int, int]]) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1,
                                        "mapping keys must be plain scalars"))
                continue
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1,
                                        f"duplicate key {key!r}"))
            key_marks[(*path, key)] = (key_node.start_mark.line + 1,
                                       key_node.start_mark.column + 1)
            out[key] = _construct(value_node, (*path, key), marks, loader, problems, file,
                                  key_marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, (*path, i), marks, loader, problems, file, key_marks)
                for i, child in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp like 2024-13-45
        problems.append(Problem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                                f"invalid value: {exc}"))
        return None


def load_yaml(text: str, file: str = "<string>") -> Loaded:
    """Parse one YAML document; syntax errors and duplicate keys raise LocatedError."""
    try:  # the reader rejects control characters as soon as it is built
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        before = text[:exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise LocatedError([Problem(file, line, col, f"invalid YAML: {exc.reason} "
                                    f"(character #x{exc.character:04x})")]) from None
    marks: dict[PathKey, tuple[int, int]] = {}
    key_marks: dict[PathKey, tuple[int, int]] = {}
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        data = None if node is None else _construct(node, (), marks, loader, problems, file,
                                                    key_marks)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise LocatedError([Problem(file, line, col, f"invalid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise LocatedError([Problem(file, 0, 0, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise LocatedError(problems)
    return Loaded(data, marks, file, key_marks)


def load_yaml_file(path: str | Path) -> Loaded:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocatedError([Problem(str(p), 0, 0, f"cannot read: {exc.strerror}")]) from None
    return load_yaml(text, str(p))


def merge_problems(errors: Iterable[LocatedError]) -> list[Problem]:
    return [p for e in errors for p in e.problems]
