"""The UMLS metric's own logic on a small spaCy pipeline built here (scispaCy's model and linker
are not installable on these machines)."""

import pytest
import spacy  # the "test" extra, installed by scripts/setup
from spacy.language import Language
from spacy.tokens import Span

from medgate.metrics.umls import concept_names, load_scispacy, umls_scores

KB = {"C0032285": "Pneumonia", "C0020538": "Hypertensive disease", "C0011849": "Diabetes Mellitus"}
SURFACE = {"pneumonia": "C0032285", "lung infection": "C0032285", "hypertension": "C0020538",
           "high blood pressure": "C0020538", "diabetes": "C0011849"}


@pytest.fixture(scope="module")
def nlp():
    if not Span.has_extension("kb_ents"):
        Span.set_extension("kb_ents", default=[])

    @Language.component("toy_linker")
    def toy_linker(doc):
        for ent in doc.ents:
            ent._.kb_ents = [(SURFACE[ent.text.lower()], 0.99), ("C9999999", 0.5)]
        return doc

    pipeline = spacy.blank("en")
    ruler = pipeline.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "ENTITY", "pattern": [{"LOWER": w} for w in s.split()]} for s in SURFACE])
    pipeline.add_pipe("toy_linker")
    return pipeline


def test_concepts_are_canonical_names_of_top_candidates(nlp):
    doc = nlp("History of high blood pressure and a lung infection.")
    assert concept_names(doc, KB.__getitem__) == {"Hypertensive disease", "Pneumonia"}


def test_synonyms_match_and_scores_are_hand_computed(nlp):
    (item,) = umls_scores(["Pneumonia and hypertension."], ["lung infection, high blood pressure, diabetes"], nlp, KB.__getitem__)
    # predicted {Pneumonia, Hypertensive disease}; gold adds Diabetes: P = 1, R = 2/3, F1 = 0.8
    assert item == pytest.approx({"umls_p": 1.0, "umls_r": 2 / 3, "umls_f1": 0.8})


def test_no_entities_scores_zero(nlp):
    (item,) = umls_scores(["Feeling fine."], ["pneumonia"], nlp, KB.__getitem__)
    assert item == {"umls_p": 0.0, "umls_r": 0.0, "umls_f1": 0.0}


def test_unavailable_scispacy_gives_a_reason_not_a_crash():
    loaded = load_scispacy()
    if isinstance(loaded, str):
        assert "scispaCy" in loaded and "not installed" in loaded
    else:  # a machine with scispaCy and its model: the pipeline must be usable
        nlp_, canonical = loaded
        assert callable(canonical) and nlp_("pneumonia") is not None


def test_the_pipeline_resolves_no_abbreviations_as_in_the_reference(monkeypatch):
    """The reference's resolve_abbreviations=True has no effect (it adds no abbreviation detector):
    medgate's pipeline has no detector either. Checked on stand-ins for scispaCy and its model."""
    import sys
    import types

    import medgate.metrics.umls as umls

    added = []

    class FakeNlp:
        def add_pipe(self, name, config=None):
            added.append((name, config))
            return types.SimpleNamespace(kb=types.SimpleNamespace(cui_to_entity={}))

    scispacy = types.ModuleType("scispacy")
    scispacy.linking = types.ModuleType("scispacy.linking")
    monkeypatch.setitem(sys.modules, "scispacy", scispacy)
    monkeypatch.setitem(sys.modules, "scispacy.linking", scispacy.linking)
    monkeypatch.setattr(spacy, "load", lambda name: FakeNlp())
    loaded = umls.load_scispacy.__wrapped__()
    assert not isinstance(loaded, str)
    assert [name for name, _ in added] == ["scispacy_linker"]
    assert added[0][1]["resolve_abbreviations"] is False and added[0][1]["linker_name"] == "umls"
