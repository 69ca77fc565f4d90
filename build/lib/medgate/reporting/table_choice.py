"""`medgate table --data ... --limit ...`: which data sets the table across models shows.

--data synthetic | user | <hash prefix> | <a data file or folder>: a path is hashed as the
pipeline hashes the file it reads (pipeline/plan.py), so it finds the runs made on that file.
--limit N | all: only the runs of that --limit (all: runs without one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Sequence

from medgate.core.comparable import short_hash
from medgate.core.errors import ConfigError, MedgateError, MissingDataFile
from medgate.core.io import file_sha256
from medgate.reporting.table import Section

SOURCES = ("synthetic", "user")
_PREFIX = re.compile(r"^(sha256:)?([0-9a-f]+)$")


def parse_limit(text: str) -> int | None:
    """"all" -> None (runs without --limit); a positive whole number -> itself."""
    if text.strip().lower() == "all":
        return None
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError(f"--limit {text}: give a positive whole number of items, or 'all' for runs without --limit")


def choose(found: Sequence[Section], data: str | None = None, limit: str | None = None) -> list[Section]:
    """The sections of ``found`` that match both options (None: no choice). A choice that matches
    nothing is an error listing what is stored."""
    chosen = list(found)
    if limit is not None:
        wanted = parse_limit(limit)
        chosen = [s for s in chosen if s.limit == wanted]
    if data is not None:
        matches = _matcher(found, data)
        chosen = [s for s in chosen if matches(s)]
    if not chosen and (data, limit) != (None, None):
        said = " ".join(f"--{name} {value}" for name, value in (("data", data), ("limit", limit)) if value is not None)
        stored = "; ".join(f"{s.title} ({_files(s)})" for s in found) or "none"
        raise ConfigError(f"{said}: no stored data set matches (stored: {stored})")
    return chosen


def describe(data: str | None, limit: str | None) -> str:
    return " ".join(f"`--{n} {v}`" for n, v in (("data", data), ("limit", limit)) if v is not None)


def _files(section: Section) -> str:
    return ", ".join(f"{t} {short_hash(f.dataset_hash)}" for t, f in section.files.items())


def _matcher(found: Sequence[Section], data: str) -> Callable[[Section], bool]:
    text = data.strip()
    if not text:
        raise ConfigError("--data: empty; give synthetic, user, a hash prefix or a data file or folder")
    if text in SOURCES:
        return lambda s: s.data_source == text
    path = Path(text).expanduser()
    if path.exists():
        hashes = path_hashes(path)
        if not any(_uses(s, hashes) for s in found):
            shown = ", ".join(f"{t} {short_hash(h)}" if t else short_hash(h) for t, h in sorted(hashes.items()))
            raise ConfigError(f"--data {data}: no stored run used this data ({shown})")
        return lambda s: _uses(s, hashes)
    prefix = _PREFIX.match(text.lower())
    if prefix is None:
        raise ConfigError(f"--data {data}: no such file or folder (give synthetic, user, a hash prefix or a path)")
    digits = prefix.group(2)
    known = {f.dataset_hash: t for s in found for t, f in s.files.items() if f.dataset_hash}
    matching = sorted(h for h in known if h.removeprefix("sha256:").startswith(digits))
    if not matching:
        stored = ", ".join(f"{t} {short_hash(h)}" for h, t in sorted(known.items(), key=lambda x: x[1])) or "none"
        raise ConfigError(f"--data {data}: no stored run used a data file whose hash starts with {digits}, and "
                          f"there is no such file or folder (stored: {stored})")
    if len(matching) > 1:
        raise ConfigError(f"--data {data}: ambiguous, the hashes of {len(matching)} data files start with {digits} "
                          f"({', '.join(f'{known[h]} {short_hash(h)}' for h in matching)}); give more digits")
    return lambda s: any(f.dataset_hash == matching[0] for f in s.files.values())


def _uses(section: Section, hashes: dict[str, str]) -> bool:
    """``hashes``: task -> hash of a folder's files; "" -> the hash of one file of any task."""
    return any(f.dataset_hash in (hashes.get(t), hashes.get("")) for t, f in section.files.items())


def path_hashes(path: Path) -> dict[str, str]:
    """A data file's hash (key ""), or each task's file in a folder, found and hashed as the
    pipeline does."""
    try:
        if not path.is_dir():
            return {"": file_sha256(path)}
        from medgate.pipeline.plan import data_file  # here: the tasks load only for a folder
        from medgate.tasks import TASKS

        out = {}
        for task in TASKS.values():
            try:
                out[task.name] = file_sha256(data_file(task, path))
            except MissingDataFile:
                continue
    except (OSError, MedgateError) as exc:
        raise ConfigError(f"--data {path}: cannot read it ({exc})") from None
    if not out:
        names = ", ".join(t.filename for t in TASKS.values())
        raise ConfigError(f"--data {path}: the folder holds none of the task files ({names})")
    return out
