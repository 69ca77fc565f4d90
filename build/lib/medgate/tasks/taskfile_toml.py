"""Reading a task file: the TOML text, the line of every key, and the JSON Schema check, with each
problem as one line naming the file, the dotted key and its line ("a.task.toml:12: prompt.user: ...").

tomllib gives a position only for syntax errors; the line of a key is found by scanning the text
for table headers and ``key =`` lines (multi-line strings skipped), so a message can point at it.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from medgate.core.errors import ConfigError

KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_PART = r"(?:[A-Za-z0-9_-]+|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=(.*)$")
_SYNTAX_AT = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")


def dotted(path: Sequence[str | int]) -> str:
    """A key path as TOML and a reader write it: ``metrics.label_accuracy.labels[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE.match(part) else json.dumps(part)
            out += f".{text}" if out else text
    return out


def _parts(key: str) -> tuple[str, ...]:
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in re.findall(_PART, key))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line where each table and key is written (the first time)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing: str | None = None  # inside a multi-line string: its delimiter
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:
            if line.count(closing) % 2 == 1:
                closing = None
            continue
        if header := _HEADER.match(line):
            table = _parts(header.group(1))
            lines.setdefault(table, number)
            continue
        if key := _KEY.match(line):
            lines.setdefault(table + _parts(key.group(1)), number)
            value = key.group(2)
            for delimiter in ('"""', "'''"):
                if value.count(delimiter) % 2 == 1:
                    closing = delimiter
                    break
    return lines


@dataclass
class TaskFileText:
    """A task file's path, text and key lines: where its messages point."""

    path: Path
    text: str
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of a key, else of the nearest enclosing table or key written in the file."""
        keys = tuple(p for p in path if isinstance(p, str))
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.lines:
                return self.lines[keys[:end]]
        return None

    def where(self, path: Sequence[str | int]) -> str:
        """``file:line: key`` (``file: key`` when the key is nowhere in the file)."""
        line = self.line(path)
        return f"{self.path}:{line}: {dotted(path)}" if line else f"{self.path}: {dotted(path)}"

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(f"{self.where(path)}: {message}")


def read_task_toml(path: Path) -> tuple[TaskFileText, dict[str, Any]]:
    """The task file's text (UTF-8, a byte order mark allowed) and its parsed TOML."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: task file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the task file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02X}); save the task file as "
                          "UTF-8") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _SYNTAX_AT.match(message)
        if at:  # "Invalid value (at line 3, column 7)"
            raise ConfigError(f"{path}:{at.group(2)}: not valid TOML: {at.group(1)} (column {at.group(3)})") from None
        raise ConfigError(f"{path}: not valid TOML: {message}") from None
    return TaskFileText(path, text, key_lines(text)), document


@lru_cache(maxsize=1)
def task_file_schema() -> dict[str, Any]:
    """The JSON Schema of a task file, shipped with the package (editors can use it too)."""
    return json.loads(resources.files("medgate.tasks").joinpath("taskfile.schema.json").read_text(encoding="utf-8"))


def check_schema(source: TaskFileText, document: dict[str, Any]) -> None:
    """The first problem the schema finds, in the file's order, as one ConfigError."""
    from jsonschema import Draft7Validator

    problems = [_problem(source, error) for error in Draft7Validator(task_file_schema()).iter_errors(document)]
    if problems:
        problems.sort(key=lambda p: (source.line(p[0]) or 0, len(p[0])))
        key, message = problems[0]
        raise source.error(key, message)


def _problem(source: TaskFileText, error: Any) -> tuple[KeyPath, str]:
    """The key a jsonschema error concerns and what to say about it."""
    path: KeyPath = tuple(error.absolute_path)
    kind, expected, instance, schema = error.validator, error.validator_value, error.instance, error.schema
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = next(k for k in instance if k not in known)
        what = "unknown metric" if path == ("metrics",) else "unknown key"
        return path + (extra,), f"{what} {extra!r} (known{' here' if path else ''}: {', '.join(known)})"
    if kind == "required":
        missing = next(k for k in expected if k not in instance)
        sub = schema.get("properties", {}).get(missing, {})
        if sub.get("type") == "object":
            return path + (missing,), f"missing table [{dotted(path + (missing,))}]"
        return path + (missing,), "missing (required)"
    if kind == "type":
        return path, f"expected {_TYPE_WORDS.get(expected, expected)}, got {_kind(instance)} {_short(instance)}"
    if kind == "enum":
        return path, f"{_short(instance)} is not one of {', '.join(map(str, expected))}"
    if kind == "minimum":
        return path, f"must be at least {expected}, got {instance}"
    if kind in ("minLength", "minItems"):
        return path, "must not be empty"
    if kind == "minProperties":
        return path, "no metric declared: add a table such as [metrics.exact_match]"
    if kind == "uniqueItems":
        return path, f"{_short(instance)} names an entry twice"
    if kind == "pattern" and path == ("name",):
        return path, (f"{_short(instance)} is not a task name: lower-case letters, digits and _, starting with a "
                      "letter (test ids and models.toml keys use it)")
    return path, error.message


_TYPE_WORDS = {"string": "text", "integer": "a whole number", "boolean": "true or false", "array": "a list",
               "object": "a table"}


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", dict: "a table",
            list: "a list"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
