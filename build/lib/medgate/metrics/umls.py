"""UMLS concept F1 with scispaCy: each text becomes the set of canonical names of its
entities' top UMLS candidates; precision, recall and F1 of the prediction's set against the
reference's, per item.

scispaCy's ``en_core_sci_sm`` model and UMLS linker are not always installable (they are not
on PyPI). Without them the metric is reported as not computed, with the reason.

Abbreviations are not resolved, as in the reference: it passes ``resolve_abbreviations=True`` to
the linker but never adds scispaCy's abbreviation detector, so that setting has no effect there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Sequence

from medgate.metrics.sets import prf

UMLS_METRICS = ("umls_p", "umls_r", "umls_f1")


def concept_names(doc: Any, canonical_name: Callable[[str], str]) -> set[str]:
    """Canonical names of the top-ranked candidate of every entity that has one."""
    names = set()
    for ent in doc.ents:
        candidates = ent._.kb_ents
        if candidates:
            names.add(canonical_name(candidates[0][0]))
    return names


def umls_scores(predictions: Sequence[str], references: Sequence[str], nlp: Any,
                canonical_name: Callable[[str], str]) -> list[dict[str, float]]:
    out = []
    for prediction, reference in zip(predictions, references):
        p, r, f = prf(concept_names(nlp(prediction), canonical_name), concept_names(nlp(reference), canonical_name))
        out.append({"umls_p": p, "umls_r": r, "umls_f1": f})
    return out


@lru_cache(maxsize=1)
def load_scispacy() -> tuple[Any, Callable[[str], str]] | str:
    """(pipeline, canonical-name lookup), or the reason the pipeline is unavailable."""
    try:
        import scispacy.linking  # noqa: F401  (registers the scispacy_linker factory)
        import spacy
    except ImportError as exc:
        return f"scispaCy is not installed ({exc.name})"
    try:
        nlp = spacy.load("en_core_sci_sm")
    except OSError:
        return "the scispaCy model en_core_sci_sm is not installed"
    try:
        # what the reference's setting amounts to: no abbreviation detector, so nothing to resolve
        linker = nlp.add_pipe("scispacy_linker", config={"resolve_abbreviations": False, "linker_name": "umls"})
    except Exception as exc:  # the linker downloads its index on first use; offline that fails
        return f"the scispaCy UMLS linker is unavailable ({type(exc).__name__}: {exc})"
    return nlp, lambda cui: linker.kb.cui_to_entity[cui].canonical_name
