"""What a value was measured on, and why two values may not be set side by side: the one rule
that the table across models, the published-figures view and the item-by-item comparisons share.

The conditions come from the provenance every result records (pipeline/scoring.py and
pipeline/model_run.py): the data (source, file hash, item count, --limit) and the set-up
(prompt source and version, BERTScore encoder, decoding). It lives in core so that judging,
which may not import reporting, can use it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Callable, Mapping, Sequence

from medgate.core.outcome import Outcome

NOT_USED = ""  # the encoder of a metric that uses none (ROUGE, accuracy): never a difference

DATA_FIELDS = ("data_source", "dataset_hash", "n_items", "limit")
SETUP_FIELDS = ("prompts", "prompt_version", "encoder", "decoding")
FIELDS = DATA_FIELDS + SETUP_FIELDS
# What an item-by-item comparison needs besides equal item ids (judging/paired.py checks those).
PAIRED_FIELDS = ("dataset_hash", "prompt_version", "encoder", "decoding")


@dataclass(frozen=True)
class Like:
    """A requirement met by any recorded value that contains ``text`` (case-insensitive), for
    conditions known only by name, such as "SciBERT" in the published figures."""

    text: str
    name: str

    def matches(self, value: object) -> bool:
        return value is not None and self.text.lower() in str(value).lower()


@dataclass(frozen=True)
class Conditions:
    """What one value (or one task's result) was measured on. None: not recorded, except for
    ``limit``, where None is "all items" (every run records its limit)."""

    data_source: str | None = None  # "synthetic" (the shipped fixtures) or "user"
    dataset_hash: str | None = None  # "sha256:<20 hex digits>" of the task's data file
    n_items: int | None = None
    limit: int | None = None
    prompts: str | None = None  # "medgate" or "reference"
    prompt_version: str | None = None  # holds the templates' hash for the reference's prompts
    encoder: str | Like | None = None  # BERTScore encoder and layer; NOT_USED for other metrics
    decoding: tuple[tuple[str, Any], ...] | None = None  # sorted (setting, value) pairs

    @property
    def data_set(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in DATA_FIELDS)

    @property
    def setup(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in SETUP_FIELDS)


def conditions(provenance: Mapping[str, Any], metric: str | None = None) -> Conditions:
    """The conditions recorded in a result's provenance. ``metric``: those that decide that
    metric's value (the encoder only for BERTScore); None: those of the whole task."""
    notes = provenance.get("notes")
    encoder = notes.get("bertscore_encoder") if isinstance(notes, Mapping) else None
    if metric is None:
        encoder = encoder or NOT_USED  # a task without BERTScore records no encoder
    elif not metric.startswith("bertscore"):
        encoder = NOT_USED
    decoding = provenance.get("decoding")
    return Conditions(
        data_source=_text(provenance.get("data_source")),
        dataset_hash=_text(provenance.get("dataset_hash")),
        n_items=_int(provenance.get("n_items")),
        limit=_int(provenance.get("limit")),
        prompts=_text(provenance.get("prompts")),
        prompt_version=_text(provenance.get("prompt_version")),
        encoder=None if encoder is None else str(encoder),
        decoding=tuple(sorted((str(k), v) for k, v in decoding.items())) if isinstance(decoding, Mapping) else None,
    )


def measured_on(outcome: Outcome) -> Conditions:
    """The conditions that decide one stored value."""
    return conditions(outcome.provenance, outcome.metric)


def differences(a: Conditions, b: Conditions, *, fields: Sequence[str] = FIELDS) -> list[str]:
    """Why a value measured under ``a`` is not comparable with one under ``b``: one reason per
    differing condition, worded "a's, not b's"; empty when they agree. A field of ``b`` may be
    a Like (a requirement by name); a condition that either side does not use is no difference."""
    out = []
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        if NOT_USED in (x, y) and name == "encoder":
            continue
        if isinstance(y, Like):
            if not y.matches(x):
                out.append(_REASONS[name](x, y))
        elif x != y:
            out.append(_REASONS[name](x, y))
    return out


def short_hash(value: str | None, digits: int = 12) -> str:
    """``sha256:1a2b...`` -> its first hex digits, as reports show it."""
    return "not recorded" if value is None else value.removeprefix("sha256:")[:digits]


def describe_source(value: str | None) -> str:
    return {"synthetic": "synthetic data", "user": "user data", None: "data source not recorded"}.get(
        value, f"data source {value}")


def describe_limit(value: int | None) -> str:
    return "all items" if value is None else f"--limit {value}"


def describe_prompts(value: str | None) -> str:
    return {"medgate": "medgate's own", "reference": "the reference's", None: "not recorded"}.get(value, str(value))


def describe_encoder(value: str | Like | None) -> str:
    """"all-MiniLM-L6-v2 (layer 6, no idf, ...)" -> "all-MiniLM-L6-v2 at layer 6"."""
    if isinstance(value, Like):
        return value.name
    if value is None:
        return "not recorded"
    if value == NOT_USED:
        return "-"
    found = re.match(r"^(.*) \(layer (\d+)", value)
    return f"{found.group(1)} at layer {found.group(2)}" if found else value


def describe_decoding(value: tuple[tuple[str, Any], ...] | None) -> str:
    return "not recorded" if value is None else " ".join(f"{k}={v}" for k, v in value)


def _decoding_reason(a: tuple[tuple[str, Any], ...] | None, b: tuple[tuple[str, Any], ...] | None) -> str:
    if a is None or b is None:
        return f"decoding {describe_decoding(a)}, not {describe_decoding(b)}"
    x, y = dict(a), dict(b)
    keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
    return "decoding " + ", ".join(f"{k} {x.get(k, 'unset')}, not {y.get(k, 'unset')}" for k in keys)


def _items(value: int | None) -> str:
    return "item count not recorded" if value is None else f"{value} items"


_REASONS: dict[str, Callable[[Any, Any], str]] = {
    "data_source": lambda a, b: f"{describe_source(a)}, not {describe_source(b)}",
    "dataset_hash": lambda a, b: f"data file {short_hash(a)}, not {short_hash(b)}",
    "n_items": lambda a, b: f"{_items(a)}, not {_items(b).removesuffix(' items')}",
    "limit": lambda a, b: f"{describe_limit(a)}, not {describe_limit(b)}",
    "prompts": lambda a, b: f"{describe_prompts(a)} prompts, not {describe_prompts(b)}",
    "prompt_version": lambda a, b: f"prompt version {a or 'not recorded'}, not {b or 'not recorded'}",
    "encoder": lambda a, b: f"BERTScore encoder {describe_encoder(a)}, not {describe_encoder(b)}",
    "decoding": _decoding_reason,
}
assert set(_REASONS) == {f.name for f in dataclass_fields(Conditions)}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
