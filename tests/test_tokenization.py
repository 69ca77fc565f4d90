"""The planning tokenizer: the direct `tokenizers` path must agree with transformers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from medgate.core.errors import EngineError
from medgate.models.fingerprint import resolve_location
from medgate.models.registry import load_registry
from medgate.models.tokenization import _fast_context, _transformers_context, model_context
from tests.conftest import FIXTURES, REPO


@pytest.fixture(scope="module")
def smollm2() -> tuple:
    spec = load_registry(REPO / "models.toml").resolve("smollm2")
    return spec, resolve_location(spec)


def longhealth_texts() -> list[str]:
    patients = json.loads((FIXTURES / "benchmark_v5.json").read_text())
    return [text for patient in patients.values() for text in patient["texts"].values()]


def test_fast_and_transformers_tokenizers_count_and_cut_alike(smollm2):
    spec, location = smollm2
    fast, slow = _fast_context(spec, Path(location)), _transformers_context(spec, location)
    texts = longhealth_texts() + ["Na+ 131 mmol/L ; K+ 5.9 , Cr 2.1 mg/dL . Pt's BP isn't 90/60 !", "",
                                  "  Afebrile overnight.\n\n"]
    assert len(texts) >= 12
    for text in texts:
        assert fast.count_tokens(text) == slow.count_tokens(text)
        for n in (0, 1, 7, 100, fast.count_tokens(text)):
            cut = fast.truncate(text, n)
            assert cut == slow.truncate(text, n)
            assert fast.count_tokens(cut) <= max(n, 0) + 1  # a re-encoded cut may merge at its edge
        assert fast.truncate(text, fast.count_tokens(text)) == text  # raw decode: nothing tidied away


def test_local_model_with_tokenizer_json_takes_the_fast_path(smollm2, monkeypatch):
    spec, location = smollm2
    calls = []
    monkeypatch.setattr("medgate.models.tokenization._transformers_context", lambda *a: calls.append(a))
    context = model_context(spec, location)
    assert calls == [] and context.count_tokens("discharge summary") > 0
    # trust_remote_code may bring a custom tokenizer: then transformers decides
    model_context(dataclasses.replace(spec, trust_remote_code=True), location)
    assert len(calls) == 1


def test_a_malformed_tokenizer_json_names_the_file(smollm2, tmp_path):
    spec, _ = smollm2
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineError, match=r"smollm2: cannot load .*tokenizer\.json"):
        model_context(spec, str(tmp_path))
