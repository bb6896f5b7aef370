"""Reading a product file while remembering where every value came from.

YAML is composed into nodes (never constructed into arbitrary objects), turned into
plain data, and each path is mapped to its line, so an error can name the file, the
line and the field, the way a compiler would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from liquidfab.errors import ProductError

__all__ = ["MAX_PRODUCT_BYTES", "Located", "dotted_path", "read_source", "validation_problems"]

MAX_PRODUCT_BYTES = 2 * 1024 * 1024

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """Plain data and, for every path in it, the 1-based line it starts on."""

    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    file: str = "<text>"

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def read_source(source: str | Path, *, file: str | None = None) -> Located:
    """Read YAML (or JSON) text or a file into data with line numbers.

    A ``Path`` is read from disk; a ``str`` is the text itself.
    """
    if isinstance(source, Path):
        name = file or str(source)
        try:
            raw = source.read_bytes()
        except OSError as e:
            raise ProductError([("", None, f"cannot read the file: {e.strerror}")], name) from e
        if len(raw) > MAX_PRODUCT_BYTES:
            raise ProductError([("", None, f"larger than {MAX_PRODUCT_BYTES} bytes")], name)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProductError([("", None, "the file is not UTF-8 text")], name) from e
    else:
        name = file or "<text>"
        text = source
        if len(text.encode()) > MAX_PRODUCT_BYTES:
            raise ProductError([("", None, f"larger than {MAX_PRODUCT_BYTES} bytes")], name)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ProductError([("", 1, "the file is empty")], name)
        located = Located(None, {}, name)
        located.data = _plain(loader, node, (), located.lines)
        return located
    except ProductError as e:
        raise e.with_file(name) from None
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise ProductError([("", line, f"not valid YAML: {e.problem}")], name) from e
    except yaml.YAMLError as e:
        raise ProductError([("", None, f"not valid YAML: {e}")], name) from e
    except ValueError as e:  # PyYAML's int() of a number over 4300 digits
        raise ProductError([("", None, f"not valid YAML: {e}")], name) from e
    finally:
        loader.dispose()


def _plain(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey, lines: dict) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool) or isinstance(key, bool):
                mark = key_node.start_mark.line + 1
                raise ProductError([(dotted_path(path), mark, "keys are plain names")], "")
            key = str(key)
            if key in out:
                mark = key_node.start_mark.line + 1
                raise ProductError(
                    [(dotted_path((*path, key)), mark, f"{key!r} appears twice")], ""
                )
            out[key] = _plain(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str | int | float | bool | type(None)):
        raise ProductError(
            [(dotted_path(path), lines[path], f"{type(value).__name__} values are not accepted")],
            "",
        )
    return value


def dotted_path(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problems(e: ValidationError, located: Located) -> list[tuple[str, int | None, str]]:
    """Pydantic's errors as ``(path, line, message)``: paths named as in the file, one
    line per place, union members merged into one sentence."""
    problems: list[tuple[str, int | None, str]] = []
    for err in e.errors():
        loc = _in_data(located.data, tuple(err["loc"]))
        problem = (dotted_path(loc), located.line_of(loc), _pydantic_message(err))
        if problem not in problems:
            problems.append(problem)
    return _merged(problems)


_UNION_TAGS = {"str", "int", "float", "bool", "decimal", "list", "dict", "none"}


def _in_data(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The path without Pydantic's union-member tags (``.str``, ``.EnumValue``), which
    name no place in the file."""
    out: list[str | int] = []
    node = data
    for part in loc:
        here = isinstance(node, dict) and part in node
        here = here or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if here:
            node = node[part]  # type: ignore[index]
            out.append(part)
        elif isinstance(part, str) and (
            part in _UNION_TAGS or not part[:1].islower() or "[" in part
        ):
            continue
        else:
            out.append(part)  # a missing field: name it
            node = None
    return tuple(out)


def _merged(problems: list[tuple[str, int | None, str]]) -> list[tuple[str, int | None, str]]:
    """One 'should be a valid a, b or c' per place instead of one line per union member."""
    kinds: dict[tuple[str, int | None], list[str]] = {}
    out: list[tuple[str, int | None, str]] = []
    prefix = "Input should be a valid "
    for path, line, message in problems:
        if message.startswith(prefix) and ";" not in message:
            if (path, line) not in kinds:
                kinds[(path, line)] = []
                out.append((path, line, ""))
            kinds[(path, line)].append(message[len(prefix) :])
        else:
            out.append((path, line, message))
    merged = []
    for path, line, message in out:
        if not message:
            names = kinds[(path, line)]
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            message = prefix + listed
        merged.append((path, line, message))
    return merged


def _pydantic_message(err: Mapping[str, Any]) -> str:
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if err.get("type") == "string_type" and isinstance(err.get("input"), bool):
        message += f"; YAML read {err['input']!r} as true/false, so quote it"
    elif err.get("type") == "string_type" and isinstance(err.get("input"), int | float):
        message += f"; YAML read {err['input']!r} as a number, so quote it"
    return message
