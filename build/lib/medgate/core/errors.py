"""Errors that name what is wrong and where, so a user can fix input without a traceback.

Where each one surfaces: a ConfigError found while pytest starts is a usage error (exit 4)
before anything loads; every other MedgateError (and a ConfigError found later, inside a test)
is an error of the tests it concerns, shown as one line without a traceback.
"""

from __future__ import annotations


class MedgateError(Exception):
    """Base of medgate's own errors."""


class ConfigError(MedgateError):
    """models.toml, a command-line option or another setting is wrong."""


class DataError(MedgateError):
    """A dataset file is unreadable or an item lacks a field; names file, item and field."""

    def __init__(self, path: object, message: str, *, item: object = None, field: str | None = None):
        where = str(path)
        if item is not None:
            # Callers say "line 7" for line-based files and pass an index for JSON lists.
            where += f", {item}" if isinstance(item, str) else f", item {item}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.item = item
        self.field = field


class MissingDataFile(DataError):
    """The data directory has no file for a task: its tests skip, unless the task was asked for."""


class EngineError(MedgateError):
    """An engine failed to load or died; names the model."""


class EmbeddedModelError(EngineError):
    """The embedded model cannot be found or converted."""


class BaselineError(MedgateError):
    """A baseline is missing, unreadable or was measured on other items, data or prompts."""


class CacheError(MedgateError):
    """The generation cache file cannot be used."""
