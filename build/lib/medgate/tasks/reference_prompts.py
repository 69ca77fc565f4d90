"""The reference's own prompts, read from the user's checkout of its evaluation code.

medgate ships no text of the reference (TIO-IKIM/CLUE). A user who wants the paper's prompts
points ``--prompts reference:DIR`` at their checkout (the repository or its ``eval/`` folder).
Each task's script is parsed with ``ast``; nothing is executed or imported. Only module-level
string constants are taken: a string literal (implicitly concatenated literals are one literal
to ``ast``), a name bound earlier to such a constant, and ``+`` of those (MeDiSumCode builds its
answer template as ``assistant_response_start + "{codes}"``). A needed name that is missing,
bound to anything else, or lacking a placeholder is a ConfigError naming the file and the name.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from medgate.core.errors import ConfigError

REFERENCE_PREFIX = "reference:"
MEDGATE = "medgate"


@dataclass(frozen=True)
class ReferenceScript:
    """Where one task's prompts live in the reference code, and how the task uses them.

    ``constants`` maps each module-level name to read to the placeholders its text must hold,
    or to None when the text is used verbatim (a system prompt). A formatted template may hold
    no other placeholder: medgate fills exactly these. ``variant`` turns the texts read into the
    fields of the task that change in reference mode (prompt builder, loader, packing).
    """

    file: str
    constants: Mapping[str, tuple[str, ...] | None]
    variant: Callable[[Mapping[str, str]], Mapping[str, Any]]


@dataclass(frozen=True)
class PromptSource:
    """Which prompts a run uses: medgate's own (no directory) or the reference's, read from
    ``directory`` (at git ``commit`` when it is a checkout), task -> constant -> text."""

    directory: Path | None = None
    commit: str | None = None
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        return self.directory is not None

    def templates_sha256(self, task: str) -> str:
        """What decides a task's prompts in reference mode: its constants' texts."""
        body = json.dumps(dict(self.templates[task]), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    def prompt_version(self, task: str, own_version: str) -> str:
        """medgate's own version, or one that holds the templates' hash (a baseline measured
        with other prompts then does not compare)."""
        if not self.is_reference:
            return own_version
        return f"{task}-reference-{self.templates_sha256(task)[:12]}"

    def provenance(self, task: str) -> dict[str, str]:
        if not self.is_reference:
            return {"prompts": MEDGATE}
        return {
            "prompts": "reference",
            "prompt_templates_sha256": self.templates_sha256(task),
            "reference_commit": self.commit or "unknown (not a git checkout)",
            "reference_dir": str(self.directory),
        }

    def describe(self) -> str:
        if not self.is_reference:
            return "medgate's own prompts"
        return f"the reference's prompts from {self.directory} (commit {self.commit or 'unknown'})"


def parse_prompt_spec(text: str) -> Path | None:
    """``medgate`` -> None; ``reference:DIR`` -> DIR (as given). Raises ValueError otherwise."""
    if text == MEDGATE:
        return None
    if text.startswith(REFERENCE_PREFIX) and text[len(REFERENCE_PREFIX):].strip():
        return Path(text[len(REFERENCE_PREFIX):].strip()).expanduser()
    raise ValueError(f"expected 'medgate' or 'reference:DIR' (DIR: a checkout of the reference code), got {text!r}")


def read_reference(directory: Path, scripts: Mapping[str, ReferenceScript]) -> PromptSource:
    """Read every task's constants from the checkout at ``directory`` (or its ``eval/`` folder)."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise ConfigError(f"--prompts reference:{directory}: not a directory (give a checkout of the reference code)")
    folder = directory
    files = [s.file for s in scripts.values()]
    if not any((folder / name).is_file() for name in files) and (directory / "eval").is_dir():
        folder = directory / "eval"
    templates = {task: read_constants(folder / script.file, script.constants) for task, script in scripts.items()}
    return PromptSource(directory=folder, commit=git_commit(folder), templates=templates)


def read_constants(path: Path, wanted: Mapping[str, tuple[str, ...] | None]) -> dict[str, str]:
    """The module-level string constants ``wanted`` of one script, each checked for its placeholders."""
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (the reference's evaluation scripts are expected here)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read file ({exc})") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}: not valid Python (line {exc.lineno}: {exc.msg})") from None
    env = module_constants(tree)
    out = {}
    for name, placeholders in wanted.items():
        if name not in env:
            raise ConfigError(f"{path}: {name}: not defined at module level")
        value = env[name]
        if isinstance(value, _Unsupported):
            raise ConfigError(f"{path}: {name}: {value.reason} (line {value.line}); medgate reads only string "
                              f"literals, names of such constants and + (it never runs the file)")
        if placeholders is not None:
            _check_placeholders(path, name, value, placeholders)
        out[name] = value
    return out


@dataclass(frozen=True)
class _Unsupported:
    reason: str
    line: int


def module_constants(tree: ast.Module) -> dict[str, str | _Unsupported]:
    """Every name bound by a top-level statement, in order: its string value where medgate can
    tell it without running anything, else why not."""
    env: dict[str, str | _Unsupported] = {}
    for stmt in tree.body:
        line = stmt.lineno
        if isinstance(stmt, ast.Assign):
            value = _evaluate(stmt.value, env)
            for target in stmt.targets:
                _bind(target, value, env, line)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            _bind(stmt.target, _evaluate(stmt.value, env), env, line)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            before, extra = env.get(stmt.target.id), _evaluate(stmt.value, env)
            if isinstance(stmt.op, ast.Add) and isinstance(before, str) and isinstance(extra, str):
                env[stmt.target.id] = before + extra
            else:
                env[stmt.target.id] = _Unsupported("changed by an augmented assignment medgate cannot follow", line)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = (alias.asname or alias.name).split(".")[0]
                env[name] = _Unsupported("imported, not defined in this file", line)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            env[stmt.name] = _Unsupported("a function or class, not a string constant", line)
        else:  # if / for / while / with / try / match at module level: bindings depend on running it
            for node in _walk_block(stmt):
                for name in _bound_names(node):
                    env[name] = _Unsupported("assigned inside a block (if, for, with, try ...)", node.lineno)
    return env


def _bind(target: ast.expr, value: str | _Unsupported, env: dict[str, str | _Unsupported], line: int) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
    else:  # a, b = ...; x[0] = ...: names unpacked from a tuple are not followed
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                env[node.id] = _Unsupported("assigned by unpacking", line)


def _evaluate(node: ast.expr, env: Mapping[str, str | _Unsupported]) -> str | _Unsupported:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return node.value
        return _Unsupported(f"a {type(node.value).__name__}, not a string", node.lineno)
    if isinstance(node, ast.Name):
        value = env.get(node.id)
        if isinstance(value, str):
            return value
        return _Unsupported(f"refers to {node.id}, which is not a string constant defined before it", node.lineno)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, env), _evaluate(node.right, env)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return left if isinstance(left, _Unsupported) else right
    if isinstance(node, ast.JoinedStr):
        return _Unsupported("an f-string", node.lineno)
    return _Unsupported(f"an expression ({type(node).__name__})", node.lineno)


def _walk_block(stmt: ast.stmt) -> list[ast.AST]:
    """Nodes of a compound statement, without descending into functions and classes."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [stmt]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.append(child)
            elif not isinstance(child, ast.Lambda):
                out.append(child)
    return out


def _bound_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


def _check_placeholders(path: Path, name: str, text: str, required: tuple[str, ...]) -> None:
    try:
        found = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{path}: {name}: not a valid format template ({exc})") from None
    fields = {re.split(r"[.\[]", f, maxsplit=1)[0] for f in found}
    for placeholder in required:
        if placeholder not in fields:
            raise ConfigError(f"{path}: {name}: missing placeholder {{{placeholder}}} (it needs "
                              f"{', '.join('{' + p + '}' for p in required)})")
    for extra in sorted(fields - set(required)):
        raise ConfigError(f"{path}: {name}: placeholder {{{extra}}} is not one medgate fills "
                          f"({', '.join('{' + p + '}' for p in required)})")


def git_commit(folder: Path) -> str | None:
    """The commit checked out at ``folder`` (or an ancestor), read from the .git files; git is
    never run. None when there is no checkout or its files cannot be read."""
    for candidate in (folder, *folder.parents):
        dot_git = candidate / ".git"
        try:
            if dot_git.is_dir():
                return _head(dot_git)
            if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = dot_git.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                git_dir = Path(text[len("gitdir:"):].strip())
                return _head(git_dir if git_dir.is_absolute() else (candidate / git_dir).resolve())
        except OSError:
            return None
    return None


_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def _head(git_dir: Path) -> str | None:
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if _SHA.match(head):
        return head  # detached
    if not head.startswith("ref:"):
        return None
    ref = head[len("ref:"):].strip()
    common = git_dir
    if (git_dir / "commondir").is_file():  # a linked worktree keeps its refs in the main repository
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text(encoding="utf-8").strip()
            return value if _SHA.match(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                return parts[0]
    return None
