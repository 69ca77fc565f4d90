"""xdist scheduling by model: every test of one model runs on one worker, so it loads once.

``--dist loadgroup`` would do this through ``xdist_group`` marks, but pytest 9.2 with
pytest-xdist 3.8 silently turns it into ``load`` (pytest-xdist issue 1386). Grouping by the
model id in the test's parameters does not depend on that mechanism.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from xdist.scheduler import LoadScopeScheduling


def model_scope(nodeid: str, model_ids: Sequence[str] | Mapping[str, str]) -> str | None:
    """The model a node id belongs to, read from its parameter id (a test id -> model mapping
    sends a comparison's tests to its candidate), or None."""
    scopes = model_ids if isinstance(model_ids, Mapping) else {m: m for m in model_ids}
    if "[" not in nodeid or not nodeid.endswith("]"):
        return None
    params = "-" + nodeid[nodeid.index("[") + 1 : -1] + "-"
    # Longest first, so "llama-3-70b" is not mistaken for "llama-3", nor "a-vs-b" for "a".
    for test_id in sorted(scopes, key=len, reverse=True):
        if f"-{test_id}-" in params:
            return scopes[test_id]
    return None


class ModelScheduling(LoadScopeScheduling):
    """LoadScope with the model as the scope; tests of no model keep their module scope."""

    def __init__(self, config, log=None, scopes: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
        super().__init__(config, log)
        self.scopes = dict(scopes or {})

    def _split_scope(self, nodeid: str) -> str:
        model = model_scope(nodeid, self.scopes)
        return f"medgate-model::{model}" if model else super()._split_scope(nodeid)
