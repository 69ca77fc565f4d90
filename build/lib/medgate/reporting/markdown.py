"""Markdown pieces every report shares: a table and one-line text that cannot break it (a `|`
or a newline in a message) or hide anything (HTML such as a comment marker)."""

from __future__ import annotations

import re
from typing import Sequence

_TAG = re.compile(r"<(?=[A-Za-z!/?])")  # what starts an HTML tag or comment; "<= 0.2" stays


def one_line(text: str) -> str:
    """Text as one Markdown line: newlines folded into spaces, HTML tags shown as text."""
    return _TAG.sub("&lt;", " ".join(text.split()))


def cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")


def table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [table_row(header), "|" + "---|" * len(header), *(table_row(r) for r in rows)]
