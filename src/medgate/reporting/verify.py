"""`medgate verify`: check a release record against a public key and, where given, the artefacts
it names. Each check is one Binding (signature, statement, weights, data, scores, criteria) that
holds, fails or, for an envelope without a signature and no key to demand one, reports
"unsigned". Recomputes every digest the same way the writer did (medgate.reporting.digests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.core.io import file_digest, file_sha256
from medgate.reporting.attestation import PREDICATE_TYPE, STATEMENT_TYPE
from medgate.reporting.digests import (canonical_json, criteria_digest, merkle_root, sha256_hex,
                                       weights_digest)
from medgate.reporting.dsse import PAYLOAD_TYPE, check_signatures, open_envelope

ResolveCriteria = Callable[[Path, str], Mapping[str, Any]]


@dataclass(frozen=True)
class Binding:
    name: str  # signature, statement, weights, data, scores, criteria
    ok: bool | None  # None: the signature was not checked (unsigned, or no key given)
    detail: str

    def line(self) -> str:
        state = "OK" if self.ok else "UNSIGNED" if self.ok is None else "FAIL"
        return f"{state} {self.name}: {self.detail}"


def exit_status(bindings: Sequence[Binding], key_given: bool) -> int:
    """0 when every binding holds; 1 on any failure, and on an unchecked signature when a key
    was given (an unsigned record does not pass a check that asks for a signature)."""
    if any(b.ok is False for b in bindings) or (key_given and any(b.ok is None for b in bindings)):
        return 1
    return 0


def statement_problems(statement: Any) -> list[str]:
    """What breaks the in-toto Statement v1 layout (statement.md, resource_descriptor.md) or
    medgate's predicate type; empty when it holds."""
    if not isinstance(statement, dict):
        return ["the payload is not a JSON object"]
    problems = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {statement.get('_type')!r}, not {STATEMENT_TYPE!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        problems.append("subject is not a non-empty list")
    else:
        for i, subject in enumerate(subjects):
            digest = subject.get("digest") if isinstance(subject, dict) else None
            if not isinstance(digest, dict) or not digest or not all(_is_hex(v) for v in digest.values()):
                problems.append(f"subject[{i}].digest is not a set of hex digests")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is {statement.get('predicateType')!r}, not {PREDICATE_TYPE!r}")
    if not isinstance(statement.get("predicate"), dict):
        problems.append("predicate is not an object")
    return problems


def _is_hex(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and all(ch in "0123456789abcdef" for ch in value.lower())


def _consistency(statement: Mapping[str, Any]) -> list[str]:
    """The subject digest must be the one the predicate's file list gives."""
    model = statement["predicate"].get("model") or {}
    subject = statement["subject"][0]["digest"].get("sha256")
    if not model.get("weightsHashed"):
        if subject != sha256_hex(str(model.get("identity", "")).encode("utf-8")):
            return ["the subject digest is not the sha256 of predicate.model.identity"]
        return []
    pairs = sorted([f["name"], f["digest"]["sha256"]] for f in model.get("files", []))
    listed = sha256_hex(canonical_json(pairs))
    problems = []
    if listed != model.get("digest", {}).get("sha256"):
        problems.append("predicate.model.digest is not the digest of its file list")
    if subject != model.get("digest", {}).get("sha256"):
        problems.append("the subject digest is not predicate.model.digest")
    return problems


def read_envelopes(file: Path) -> list[dict[str, Any]]:
    envelopes = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{file}, line {number}: not a DSSE envelope (a JSON object)")
        envelopes.append(data)
    if not envelopes:
        raise ValueError(f"{file}: no envelope in the file")
    return envelopes


def _default_resolve(models_file: Path, model: str) -> Mapping[str, Any]:
    from medgate.judging.criteria import resolve_criteria

    return resolve_criteria(models_file, model, metrics=None).resolved()


def verify(file: Path, public_key: Any = None, model_dir: Path | None = None, data_dir: Path | None = None,
           models_file: Path | None = None, runs_dir: Path | None = None,
           resolve_criteria: ResolveCriteria | None = None) -> list[Binding]:
    """Every binding of every envelope in ``file``. ``public_key``: a loaded Ed25519 public key
    (dsse.load_public_key); None: signatures are not checked (each reports ok None). An
    envelope without a signature reports ok None, "unsigned", with or without a key.
    ``resolve_criteria(models_file, model)`` gives the criteria dict the run recorded (default:
    medgate.judging.criteria.resolve_criteria)."""
    out: list[Binding] = []
    statements: list[dict[str, Any]] = []
    for index, data in enumerate(read_envelopes(file), start=1):
        where = f"envelope {index}"
        try:
            payload_type, body = open_envelope(data)
        except ValueError as exc:
            out.append(Binding("statement", False, f"{where}: {exc}"))
            continue
        if public_key is None:
            signed = bool(data["signatures"])
            out.append(Binding("signature", None, f"{where}: signed, not checked (no public key given)" if signed
                               else f"{where}: unsigned (the envelope has no signature)"))
        else:
            ok, detail = check_signatures(data, public_key)
            out.append(Binding("signature", ok, f"{where}: {detail}"))
        # From here on only the bytes that were verified are read (DSSE: never re-parse the envelope).
        try:
            statement = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.append(Binding("statement", False, f"{where}: the payload is not JSON ({exc})"))
            continue
        problems = statement_problems(statement)
        if payload_type != PAYLOAD_TYPE:
            problems.insert(0, f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}")
        if not problems:
            problems = _consistency(statement)
        name = (statement.get("subject") or [{}])[0].get("name", "?") if isinstance(statement, dict) else "?"
        out.append(Binding("statement", not problems,
                           f"{where} ({name}): " + ("; ".join(problems) if problems else "in-toto Statement v1, "
                                                    f"{PREDICATE_TYPE}")))
        if not problems:
            statements.append(statement)
    if model_dir is not None:
        out.append(_weights(statements, model_dir))
    for statement in statements:
        model = statement["subject"][0]["name"]
        predicate = statement["predicate"]
        if data_dir is not None:
            out += _data(model, predicate, data_dir)
        if runs_dir is not None:
            out += _scores(model, predicate, runs_dir)
        if models_file is not None:
            out.append(_criteria(model, predicate, models_file, resolve_criteria or _default_resolve))
    return out


def _weights(statements: Sequence[Mapping[str, Any]], folder: Path) -> Binding:
    """The folder's digest must be the subject of a statement whose weights were hashed."""
    hashed = [s for s in statements if s["predicate"].get("model", {}).get("weightsHashed")]
    if not folder.is_dir():
        return Binding("weights", False, f"{folder} is not a folder")
    found = weights_digest(folder)
    if not hashed:
        return Binding("weights", False, f"no statement has hashed weights to compare {folder} with")
    if not found.get("hashed"):
        return Binding("weights", False, f"{folder}: {found['reason']}")
    digest = found["digest"]["sha256"]
    for s in hashed:
        if s["subject"][0]["digest"].get("sha256") == digest:
            name = s["subject"][0]["name"]
            return Binding("weights", True, f"{name}: {folder} has sha256 {digest[:16]}, the subject's")
    # Say which files differ, against the statement that lists most of the same file names.
    mine = {f["name"]: f["digest"]["sha256"] for f in found["files"]}

    def listed(s: Mapping[str, Any]) -> dict[str, str]:
        return {f["name"]: f["digest"]["sha256"] for f in s["predicate"]["model"].get("files", [])}

    best = max(hashed, key=lambda s: len(set(listed(s)) & set(mine)))
    theirs = listed(best)
    changed = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
    missing, extra = sorted(set(theirs) - set(mine)), sorted(set(mine) - set(theirs))
    parts = [f"{', '.join(changed)} changed"] if changed else []
    parts += [f"{', '.join(missing)} missing"] if missing else []
    parts += [f"{', '.join(extra)} not in the record"] if extra else []
    return Binding("weights", False, f"{best['subject'][0]['name']}: {folder} has sha256 {digest[:16]}, the subject "
                                     f"{str(best['subject'][0]['digest'].get('sha256'))[:16]} ({'; '.join(parts)})")


def _data(model: str, predicate: Mapping[str, Any], data_dir: Path) -> list[Binding]:
    out = []
    for task in predicate.get("tasks", []):
        dataset = task.get("dataset")
        if not dataset or not dataset.get("name"):
            continue
        path = data_dir / str(dataset["name"])
        label = f"{model} {task['name']}: {path}"
        if not path.is_file():
            out.append(Binding("data", False, f"{label} not found"))
            continue
        if dataset.get("digest", {}).get("sha256"):
            expected, found = dataset["digest"]["sha256"], file_digest(path)
        else:  # the writer could not reread the file: medgate's shortened hash is what it recorded
            expected = str(dataset.get("medgateHash", ""))
            found = file_sha256(path, length=max(len(expected) - len("sha256:"), 1))
        out.append(Binding("data", found == expected,
                           f"{label} has sha256 {found.removeprefix('sha256:')[:16]}"
                           + ("" if found == expected else f", the record {expected.removeprefix('sha256:')[:16]}")))
    return out


def _scores(model: str, predicate: Mapping[str, Any], runs_dir: Path) -> list[Binding]:
    run_id = str(predicate.get("runId", ""))
    path = runs_dir / f"{run_id}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [Binding("scores", False, f"{model}: run record {path} unreadable ({exc})")]
    out = []
    for task in predicate.get("tasks", []):
        scores = task.get("scores")
        if not scores:
            continue
        items = (record.get("items") or {}).get(model, {}).get(task["name"])
        label = f"{model} {task['name']}"
        if items is None:
            out.append(Binding("scores", False, f"{label}: {path} has no per-item scores"))
            continue
        expected, found = scores["merkleRoot"]["sha256"], merkle_root(items)
        out.append(Binding("scores", found == expected,
                           f"{label}: Merkle root of {len(items)} items in {path.name} is {found[:16]}"
                           + ("" if found == expected else f", the record {expected[:16]}")))
    return out


def _criteria(model: str, predicate: Mapping[str, Any], models_file: Path, resolve: ResolveCriteria) -> Binding:
    expected = (predicate.get("criteria") or {}).get("digest")
    if not expected:
        return Binding("criteria", False, f"{model}: the record holds no criteria digest")
    try:
        # a checkpoint by path took another entry's criteria (--model PATH --against BASE)
        found = criteria_digest(resolve(models_file, str((predicate.get("criteria") or {}).get("from") or model)))
    except Exception as exc:  # any reason the file cannot give the criteria is this binding's failure
        return Binding("criteria", False, f"{model}: {models_file} gives no criteria ({type(exc).__name__}: {exc})")
    ok = found == expected["sha256"]
    return Binding("criteria", ok, f"{model}: criteria from {models_file} have sha256 {found[:16]}"
                                   + ("" if ok else f", the record {expected['sha256'][:16]}"))
