"""The release record: one in-toto Statement v1 per gated model, binding the run's verdicts to
the model's weights, the data files, the prompts, the decoding settings, the pass criteria and
the per-item scores, each in a DSSE envelope (signed when a key is given), one per line of
reports/attestation.intoto.jsonl. docs/attestation.md documents the predicate field by field.

Built from the run record (reports/runs/<run_id>.json) by an explicit list of fields: no prompt,
output, patient text, token, path or credential is copied, item ids appear only as a digest, and
every URL left in a string loses its user:password@, query and fragment before signing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.io import atomic_write, file_digest, short_hash
from medgate.core.outcome import Outcome
from medgate.reporting.digests import (canonical_json, criteria_digest, ids_digest, merkle_root, scrub,
                                       sha256_hex, unhashed_weights, weights_digest)
from medgate.reporting.dsse import envelope, load_private_key
from medgate.reporting.summary import not_gated

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://medgate.dev/attestation/eval-result/v0.1"
FILENAME = "attestation.intoto.jsonl"
SIGNING_KEY_ENV = "MEDGATE_SIGNING_KEY"
MERKLE_TREE = "rfc6962-sha256 over canonical-json {id, scores} leaves sorted by id"
Weights = Mapping[str, Mapping[str, Any]]  # model -> weights_digest(...) or unhashed_weights(...)


def signing_key_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The private key file that $MEDGATE_SIGNING_KEY names, or None (the record stays unsigned)."""
    value = environ.get(SIGNING_KEY_ENV, "").strip()
    return Path(value).expanduser() if value else None


def weights_of(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each model's weights digest from the run record's ``models``: a folder on disk (embedded,
    path, or a hub model that is a local folder) is hashed; a server model or a hub id not on
    disk is named by its identity, with the reason its weights were not hashed."""
    out: dict[str, dict[str, Any]] = {}
    for model, info in record.get("models", {}).items():
        source, location = str(info.get("source", "")), str(info.get("location", ""))
        identity = str(info.get("fingerprint") or location)
        if source == "server":
            out[model] = unhashed_weights("served by a remote server: its weights cannot be read from here",
                                          f"server:{location}")
        elif location and Path(location).is_dir():
            out[model] = weights_digest(Path(location))
        else:
            out[model] = unhashed_weights(f"{source or 'model'} {location!r} is not a folder on this machine", identity)
    return out


def dataset_digests(record: Mapping[str, Any]) -> dict[str, str]:
    """Full sha256 of each data file the run read, keyed by medgate's dataset_hash, when the file
    is still where the run read it and still has that hash (provenance ``dataset``)."""
    out: dict[str, str] = {}
    for outcome in record.get("outcomes", []):
        prov = outcome.get("provenance") or {}
        path, short = prov.get("dataset"), prov.get("dataset_hash")
        if not path or not str(short or "").startswith("sha256:") or short in out:
            continue
        file = Path(str(path))
        if file.is_file():
            full = file_digest(file)  # one read: the full digest, and whether it is still the file the run read
            if short_hash(full, len(str(short)) - len("sha256:")) == short:
                out[str(short)] = full
    return out


def gated_models(record: Mapping[str, Any], outcomes: Sequence[Outcome]) -> list[str]:
    """Models that a threshold, baseline or reference gated (the summary's rule), or whose
    criteria set thresholds (every task of theirs may have errored)."""
    ungated = set(not_gated(outcomes))
    models = {o.model for o in outcomes if o.model not in ungated}
    for model, criteria in record.get("criteria", {}).items():
        if any((criteria or {}).get("thresholds", {}).values()) and any(o.model == model for o in outcomes):
            models.add(model)
    return sorted(models)


def build_statements(record: Mapping[str, Any], weights: Weights,
                     data_digests: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One in-toto Statement v1 per gated model of the run record. ``weights``: model ->
    weights_digest() or unhashed_weights(); ``data_digests``: dataset_hash -> full sha256 (None:
    read from the data files the record names, where they still are)."""
    outcomes = [Outcome.from_dict(o) for o in record.get("outcomes", [])]
    if data_digests is None:
        data_digests = dataset_digests(record)
    statements = []
    for model in gated_models(record, outcomes):
        own = [o for o in outcomes if o.model == model]
        known = (record.get("models") or {}).get(model, {})
        info = weights.get(model) or unhashed_weights("no weights digest was given for this model",
                                                      str(known.get("fingerprint") or model))
        if info.get("hashed"):
            subject_digest = dict(info["digest"])
        else:  # the identity as the statement shows it (credentials stripped) is what the digest is over
            info = {**info, "identity": scrub(str(info.get("identity", model)))}
            subject_digest = {"sha256": sha256_hex(info["identity"].encode("utf-8"))}
        predicate = _predicate(record, model, own, info, data_digests)
        statements.append(scrub({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": model, "digest": subject_digest}],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }))
    return statements


def _predicate(record: Mapping[str, Any], model: str, outcomes: Sequence[Outcome], weights: Mapping[str, Any],
               data_digests: Mapping[str, str]) -> dict[str, Any]:
    medgate = record.get("medgate") or {}
    criteria = (record.get("criteria") or {}).get(model)
    verdict = str(record.get("verdict", ""))
    harness: dict[str, Any] = {"name": "medgate", "version": str(medgate.get("version", "unknown"))}
    if medgate.get("commit"):
        harness["digest"] = {"gitCommit": str(medgate["commit"])}
    families: dict[str, int] = {}
    for o in outcomes:
        if o.comparison is not None:
            families[o.comparison.reference] = families.get(o.comparison.reference, 0) + 1
    tasks = sorted({o.task for o in outcomes})
    predicate: dict[str, Any] = {}
    if record.get("evaluator"):  # who ran the evaluation (a URI); the draft gives it no default: absent, no claim
        predicate["evaluator"] = {"id": str(record["evaluator"])}
    return {
        **predicate,
        "harness": harness,
        "runId": str(record.get("run_id", "")),
        "startedOn": record.get("started"),
        "finishedOn": record.get("finished"),
        "evaluatedAt": record.get("finished"),
        "assuranceLevel": "self_attested",
        "runVerdict": verdict,
        "passed": verdict.startswith("medgate: PASSED"),
        "model": _model(record, model, outcomes, weights),
        "criteria": ({"digest": {"sha256": criteria_digest(criteria)},
                      "from": str((record.get("models") or {}).get(model, {}).get("criteria_from") or model)}
                     if criteria is not None
                     else {"digest": None, "reason": "the run record holds no criteria for this model"}),
        "packages": dict(record.get("packages") or {}),
        "tasks": [_task(record, model, task, [o for o in outcomes if o.task == task], data_digests, families)
                  for task in tasks],
    }


def _model(record: Mapping[str, Any], model: str, outcomes: Sequence[Outcome],
           weights: Mapping[str, Any]) -> dict[str, Any]:
    info = (record.get("models") or {}).get(model, {})
    source = str(info.get("source", ""))
    location = str(info.get("location", ""))
    fingerprint = info.get("fingerprint") or next(
        (o.provenance.get("model_fingerprint") for o in outcomes if o.provenance.get("model_fingerprint")), None)
    out: dict[str, Any] = {"name": model, "source": source,
                           # a hub id or a served name is public; a local path may name a user: its last part only
                           "location": location if source in ("hub", "server") else Path(location).name,
                           "fingerprint": fingerprint, "weightsHashed": bool(weights.get("hashed"))}
    if weights.get("hashed"):
        out["digest"] = dict(weights["digest"])
        out["files"] = [{"name": f["name"], "digest": dict(f["digest"]), "size": f.get("size")}
                        for f in weights.get("files", [])]
    else:
        out["identity"] = str(weights.get("identity", ""))
        out["reason"] = str(weights.get("reason", ""))
    return out


def _first(outcomes: Sequence[Outcome], key: str) -> Any:
    return next((o.provenance[key] for o in outcomes if key in o.provenance), None)


def _task(record: Mapping[str, Any], model: str, task: str, outcomes: Sequence[Outcome],
          data_digests: Mapping[str, str], families: Mapping[str, int]) -> dict[str, Any]:
    items = (record.get("items") or {}).get(model, {}).get(task)
    short = _first(outcomes, "dataset_hash")
    dataset: dict[str, Any] | None = None
    if short is not None:
        dataset = {"name": Path(str(_first(outcomes, "dataset") or "")).name, "medgateHash": short,
                   "source": _first(outcomes, "data_source")}
        if short in data_digests:
            dataset["digest"] = {"sha256": data_digests[short]}
    prompts = {"source": _first(outcomes, "prompts"), "version": _first(outcomes, "prompt_version")}
    if _first(outcomes, "prompt_templates_sha256") is not None:
        prompts["templatesSha256"] = _first(outcomes, "prompt_templates_sha256")
        prompts["referenceCommit"] = _first(outcomes, "reference_commit")
    out: dict[str, Any] = {
        "name": task,
        "dataset": dataset,
        "sampleSize": _first(outcomes, "n_items"),
        "limit": _first(outcomes, "limit"),
        "prompts": prompts,
        "decoding": _first(outcomes, "decoding"),
        "engine": {"name": _first(outcomes, "engine"), "version": _first(outcomes, "engine_version"),
                   "device": _first(outcomes, "device"), "generationIdentity": _first(outcomes, "generation_identity")},
        "itemIds": None,
        "scores": None,
        "metrics": [_metric(o, items) for o in outcomes if o.against is None],
        "comparisons": [_comparison(record, o, families) for o in outcomes if o.comparison is not None],
    }
    if items is not None:
        out["itemIds"] = {"digest": {"sha256": ids_digest([str(i["id"]) for i in items])}, "count": len(items)}
        out["scores"] = {"merkleRoot": {"sha256": merkle_root(items)}, "leaves": len(items), "tree": MERKLE_TREE}
    return out


def _passed(status: str) -> bool | None:
    return True if status == "pass" else False if status in ("fail", "error", "known_gap") else None


def _metric(o: Outcome, items: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    n = sum(o.metric in (i.get("scores") or {}) for i in items) if items is not None else None
    return {
        "metric": o.metric,
        "value": o.value,
        "interval": None if o.low is None else {"low": o.low, "high": o.high, "level": 0.95},
        "sampleSize": n,
        "comparator": ">=" if o.higher_is_better else "<=",
        "threshold": o.threshold,
        "gateOn": o.gate_on,
        "passed": _passed(o.status),
        "verdict": o.status,
    }


def _comparison(record: Mapping[str, Any], o: Outcome, families: Mapping[str, int]) -> dict[str, Any]:
    c = o.comparison
    assert c is not None
    diff, low, high = c.difference
    return {
        "metric": c.metric,
        "reference": c.reference,
        "referenceDigest": _reference_digest(record, c.reference, c.task),
        "rule": c.rule,
        "test": c.test,
        "nPairs": c.n_pairs,
        "referenceValue": c.reference_value,
        "candidateValue": c.candidate_value,
        "difference": {"value": diff, "low": low, "high": high, "level": 0.95},
        "margin": c.margin,
        "pValue": c.p_value,
        "pAdjusted": c.p_adjusted,
        "holmFamily": {"reference": c.reference, "size": families.get(c.reference, 1)},
        "verdict": c.verdict,
        "passed": not c.fails,
    }


def _reference_digest(record: Mapping[str, Any], label: str, task: str) -> dict[str, str] | None:
    """The Merkle root of the reference's per-item scores: from the record's ``references``
    (a baseline's items, label -> task -> items), or the items of a model of this run."""
    items = (record.get("references") or {}).get(label, {}).get(task)
    if items is None and label.startswith("model "):
        items = (record.get("items") or {}).get(label[len("model "):], {}).get(task)
    return None if items is None else {"sha256": merkle_root(items)}


def write_attestations(reports_dir: Path, record: Mapping[str, Any], weights: Weights | None = None,
                       key_path: Path | None = None) -> tuple[Path, bool]:
    """reports/attestation.intoto.jsonl, one DSSE envelope per gated model: signed with the
    Ed25519 key in ``key_path`` (a PEM file), else unsigned. Returns (path, signed)."""
    record = dict(record)
    if not record.get("packages"):
        from medgate.core.versions import package_versions

        record["packages"] = package_versions()
    key = load_private_key(key_path) if key_path is not None else None
    statements = build_statements(record, weights if weights is not None else weights_of(record))
    lines = [json.dumps(envelope(canonical_json(s), key), sort_keys=True) for s in statements]
    path = atomic_write(reports_dir / FILENAME, "".join(line + "\n" for line in lines))
    return path, key is not None
