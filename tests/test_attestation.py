"""The release record: digests computed by hand, DSSE against its spec, in-toto Statement v1
layout, sign and verify, and each binding tampered in turn failing under its own name."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from medgate.cli import main
from medgate.core.io import file_sha256
from medgate.core.outcome import Comparison, Outcome
from medgate.reporting.attestation import (FILENAME, PREDICATE_TYPE, STATEMENT_TYPE, build_statements, signing_key_path,
                                           weights_of, write_attestations)
from medgate.reporting.digests import (canonical_json, criteria_digest, ids_digest, merkle_root, strip_url, strip_urls,
                                       weights_digest)
from medgate.reporting.dsse import b64decode, check_signatures, envelope, keyid, pae
from medgate.reporting.verify import exit_status, statement_problems, verify


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- DSSE ---------------------------------------------------------------------------------------


def test_pae_is_the_dsse_spec_example():
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"  # lengths count bytes, not characters


def test_the_dsse_spec_test_vector_signature_verifies_over_our_pae():
    """protocol.md's vector: ECDSA P-256 over PAE; if our PAE differed by one byte it would not verify."""
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    body = b64decode("aGVsbG8gd29ybGQ=")
    public.verify(der, pae("http://example.com/HelloWorld", body), ec.ECDSA(hashes.SHA256()))  # raises if wrong


def test_base64_standard_and_url_safe_both_decode():
    data = bytes(range(250, 256)) * 3
    assert b64decode(base64.b64encode(data).decode()) == data
    assert b64decode(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data


def test_an_unsigned_envelope_has_an_empty_signature_list_and_reports_unsigned():
    env = envelope(b"{}")
    assert env == {"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}
    assert check_signatures(env, Ed25519PrivateKey.generate().public_key())[0] is None


def test_the_keyid_is_the_sha256_of_the_raw_public_key():
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert keyid(key.public_key()) == hashlib.sha256(raw).hexdigest()
    assert envelope(b"x", key)["signatures"][0]["keyid"] == hashlib.sha256(raw).hexdigest()


# -- digests ------------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_keeps_unicode_and_writes_floats_as_repr():
    assert canonical_json({"b": 0.1, "a": [1, 1.0, "é"], "c": float("nan")}) == \
        '{"a":[1,1.0,"é"],"b":0.1,"c":"NaN"}'.encode("utf-8")


A = b'{"id":"a","scores":{"x":1}}'
B = b'{"id":"b","scores":{"x":0.5}}'
C = b'{"id":"c","scores":{}}'


def test_merkle_root_of_one_leaf_is_the_prefixed_leaf_hash():
    assert merkle_root([{"id": "a", "scores": {"x": 1}}]) == sha(b"\x00" + A).hex()


def test_merkle_root_of_two_leaves():
    expected = sha(b"\x01" + sha(b"\x00" + A) + sha(b"\x00" + B)).hex()
    assert merkle_root([{"id": "b", "scores": {"x": 0.5}}, {"id": "a", "scores": {"x": 1}}]) == expected


def test_merkle_root_of_three_leaves_splits_at_the_largest_power_of_two_below_n():
    left = sha(b"\x01" + sha(b"\x00" + A) + sha(b"\x00" + B))
    expected = sha(b"\x01" + left + sha(b"\x00" + C)).hex()
    items = [{"id": "c", "scores": {}, "output": "ignored"}, {"id": "a", "scores": {"x": 1}},
             {"id": "b", "scores": {"x": 0.5}}]
    assert merkle_root(items) == expected


def test_merkle_root_of_no_items_and_of_the_empty_leaf_are_rfc_6962s():
    assert merkle_root([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha(b"\x00").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


items_strategy = st.lists(
    st.fixed_dictionaries({"id": st.text(min_size=1, max_size=6),
                           "scores": st.dictionaries(st.sampled_from(["rougeL", "accuracy"]),
                                                     st.floats(allow_nan=False, width=32), max_size=2)}),
    max_size=12, unique_by=lambda i: i["id"])


@given(items_strategy, st.randoms(use_true_random=False))
def test_merkle_root_does_not_depend_on_item_order(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert merkle_root(shuffled) == merkle_root(items)


@given(items_strategy.filter(lambda items: len(items) >= 1), st.data())
def test_merkle_root_changes_when_one_score_changes(items, data):
    index = data.draw(st.integers(0, len(items) - 1))
    changed = [dict(i) for i in items]
    changed[index] = {"id": changed[index]["id"], "scores": {**changed[index]["scores"], "tampered": 1}}
    assert merkle_root(changed) != merkle_root(items)


def test_ids_and_criteria_digests_are_sha256_of_canonical_json():
    assert ids_digest(["b", "a"]) == hashlib.sha256(b'["a","b"]').hexdigest()
    assert criteria_digest({"thresholds": {"t": {"m": 0.5}}, "alpha": 0.05}) == \
        hashlib.sha256(b'{"alpha":0.05,"thresholds":{"t":{"m":0.5}}}').hexdigest()


def make_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"\x01\x02weights" * 100)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "tokenizer.json").write_text('{"model": {}}')
    (folder / ".cache").mkdir(exist_ok=True)
    (folder / ".cache" / "model.safetensors").write_bytes(b"a cache is not the checkpoint")
    (folder / "README.md").write_text("not part of the weights")
    return folder


def test_weights_digest_lists_the_checkpoint_files_and_digests_their_sorted_pairs(tmp_path):
    folder = make_checkpoint(tmp_path / "ckpt")
    found = weights_digest(folder)
    names = [f["name"] for f in found["files"]]
    assert names == ["config.json", "model.safetensors", "tokenizer.json"]  # no cache, no README
    per_file = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}
    assert [f["digest"]["sha256"] for f in found["files"]] == [per_file[n] for n in names]
    pairs = json.dumps([[n, per_file[n]] for n in names], separators=(",", ":")).encode()
    assert found["digest"] == {"sha256": hashlib.sha256(pairs).hexdigest()}
    assert weights_digest(tmp_path)["hashed"] is False  # no model files: a reason, no digest


# -- nothing private ----------------------------------------------------------------------------


def test_url_credentials_queries_and_fragments_are_stripped():
    assert strip_url("https://alice:s3cret@llm.example.org:8443/v1?api_key=tok-9f8e7d#x") == "https://llm.example.org:8443/v1"
    assert strip_url("http://host/v1") == "http://host/v1"
    assert strip_urls("http://a:b@h1/v1,https://tok@h2/v1") == "http://h1/v1,https://h2/v1"


# -- a run record -------------------------------------------------------------------------------

PATIENT = "Mrs Jane Roe, MRN 0042-7781, admitted with chest pain"


def make_run(tmp_path: Path) -> dict[str, Any]:
    """A checkpoint, a data folder and the run record the plugin writes for them."""
    ckpt = make_checkpoint(tmp_path / "smollm2-ckpt")
    data = tmp_path / "data"
    data.mkdir()
    (data / "meqsum.jsonl").write_text('{"id": "item-1", "question": "q1"}\n{"id": "item-2", "question": "q2"}\n')
    (data / "mednli.jsonl").write_text('{"id": "n1"}\n')
    items = {"meqsum": [{"id": "item-1", "scores": {"rougeL": 0.5}, "output": PATIENT,
                         "messages": [{"role": "user", "content": PATIENT}]},
                        {"id": "item-2", "scores": {"rougeL": 0.25}}],
             "mednli": [{"id": "n1", "scores": {"accuracy": 1.0}}]}

    def prov(task: str) -> dict[str, Any]:
        path = data / f"{task}.jsonl"
        return {"model": "smollm2", "model_location": str(ckpt), "model_fingerprint": "sha256:abc",
                "generation_identity": "gid-1", "engine": "vllm", "engine_version": "0.11.0",
                "device": "https://alice:s3cret@llm.example.org/v1?api_key=tok-9f8e7d", "dataset": str(path),
                "dataset_hash": file_sha256(path), "prompt_version": "v3", "prompts": "medgate",
                "n_items": len(items[task]), "decoding": {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0, "seed": 0},
                "notes": {"example": PATIENT}, "data_source": "synthetic", "limit": None, "cached_items": 0}

    comparison = Comparison(task="meqsum", metric="rougeL", reference="baseline 'v1'", rule="significant_drop",
                            test="paired bootstrap", n_pairs=2, reference_value=0.4, candidate_value=0.375, drop=0.025,
                            drop_low=-0.1, drop_high=0.15, p_value=0.6, p_adjusted=0.6, margin=0.02,
                            verdict="no regression", flips_worse=("item-2",))
    outcomes = [
        Outcome(model="smollm2", task="meqsum", metric="rougeL", status="pass", message=f"meqsum ok {PATIENT}",
                value=0.375, low=0.25, high=0.5, threshold=0.1, comparison=comparison, provenance=prov("meqsum")),
        Outcome(model="smollm2", task="mednli", metric="accuracy", status="fail", message="below the floor",
                value=1.0, low=1.0, high=1.0, threshold=0.15, provenance=prov("mednli")),
        Outcome(model="other", task="mednli", metric="accuracy", status="no_threshold", message="not gated",
                value=1.0, provenance=prov("mednli")),
    ]
    criteria = {"thresholds": {"meqsum": {"rougeL": 0.1}, "mednli": {"accuracy": 0.15}}, "margins": {},
                "tolerances": {}, "expected_failures": {}, "gate_on": "point", "tolerance": 0.0,
                "regression": "significant_drop", "inconclusive": "fail", "alpha": 0.05}
    record = {"run_id": "20261203T120000-ab12cd34", "started": "2026-12-03T12:00:00Z",
              "finished": "2026-12-03T12:05:00Z", "finished_ns": 0, "verdict": "medgate: FAILED (1 of 2 tests failed or errored)",
              "medgate": {"version": "0.1.0", "commit": "c3b05cb" + "0" * 33},
              "outcomes": [o.to_dict() for o in outcomes],
              "items": {"smollm2": items, "other": {"mednli": items["mednli"]}},
              "criteria": {"smollm2": criteria, "other": {"thresholds": {}}},
              "models": {"smollm2": {"source": "path", "location": str(ckpt), "fingerprint": "sha256:abc"},
                         "other": {"source": "server", "location": "https://bob:pw@srv.example/v1", "fingerprint": "openai:x"}},
              "packages": {"vllm": "0.11.0", "torch": "2.8.0"}}
    runs = tmp_path / "reports" / "runs"
    runs.mkdir(parents=True)
    (runs / f"{record['run_id']}.json").write_text(json.dumps(record))
    return {"record": record, "ckpt": ckpt, "data": data, "runs": runs, "reports": tmp_path / "reports",
            "criteria": criteria}


def make_key(path: Path) -> tuple[Path, Any]:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub = path.with_suffix(".pub")
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return pub, key.public_key()


def payloads(path: Path) -> list[bytes]:
    return [base64.b64decode(json.loads(line)["payload"]) for line in path.read_text().splitlines()]


def test_one_statement_per_gated_model_in_the_statement_v1_layout(tmp_path):
    run = make_run(tmp_path)
    [statement] = build_statements(run["record"], weights_of(run["record"]))  # "other" is gated by nothing
    assert statement_problems(statement) == []
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert set(statement) == {"_type", "subject", "predicateType", "predicate"}
    assert statement["subject"] == [{"name": "smollm2", "digest": weights_digest(run["ckpt"])["digest"]}]
    predicate = statement["predicate"]
    assert predicate["runVerdict"].startswith("medgate: FAILED") and predicate["passed"] is False
    assert predicate["criteria"]["digest"] == {"sha256": criteria_digest(run["criteria"])}
    assert "evaluator" not in predicate  # who ran it: only when the record names them
    assert predicate["harness"] == {"name": "medgate", "version": "0.1.0", "digest": {"gitCommit": "c3b05cb" + "0" * 33}}
    meqsum = next(t for t in predicate["tasks"] if t["name"] == "meqsum")
    assert meqsum["dataset"]["digest"] == {"sha256": hashlib.sha256((run["data"] / "meqsum.jsonl").read_bytes()).hexdigest()}
    assert meqsum["dataset"]["name"] == "meqsum.jsonl"
    assert meqsum["itemIds"] == {"digest": {"sha256": ids_digest(["item-1", "item-2"])}, "count": 2}
    assert meqsum["scores"]["merkleRoot"] == {"sha256": merkle_root(run["record"]["items"]["smollm2"]["meqsum"])}
    assert meqsum["metrics"] == [{"metric": "rougeL", "value": 0.375, "interval": {"low": 0.25, "high": 0.5, "level": 0.95},
                                  "sampleSize": 2, "comparator": ">=", "threshold": 0.1, "gateOn": "point",
                                  "passed": True, "verdict": "pass"}]
    [comparison] = meqsum["comparisons"]
    assert comparison["difference"] == {"value": -0.025, "low": -0.15, "high": 0.1, "level": 0.95}
    assert comparison["holmFamily"] == {"reference": "baseline 'v1'", "size": 1}
    assert comparison["referenceDigest"] is None  # the record carries no baseline items
    assert comparison["passed"] is True and comparison["verdict"] == "no regression"


def test_a_server_model_names_its_identity_and_says_its_weights_were_not_hashed(tmp_path):
    run = make_run(tmp_path)
    record = dict(run["record"])
    record["criteria"] = {**record["criteria"], "other": {"thresholds": {"mednli": {"accuracy": 0.1}}}}
    statements = {s["subject"][0]["name"]: s for s in build_statements(record, weights_of(record))}
    other = statements["other"]
    assert other["predicate"]["model"]["weightsHashed"] is False
    assert "server" in other["predicate"]["model"]["reason"]
    identity = other["predicate"]["model"]["identity"]
    assert identity == "server:https://srv.example/v1"  # no bob:pw@
    assert other["subject"][0]["digest"] == {"sha256": hashlib.sha256(identity.encode()).hexdigest()}


def test_nothing_private_reaches_the_payload(tmp_path):
    run = make_run(tmp_path)
    path, signed = write_attestations(run["reports"], run["record"])
    assert path == run["reports"] / FILENAME and signed is False
    [body] = payloads(path)
    text = body.decode("utf-8")
    for secret in (PATIENT, "MRN", "item-1", "item-2", "s3cret", "alice", "api_key", "tok-9f8e7d", "q1", str(tmp_path)):
        assert secret not in text, secret
    assert "https://llm.example.org/v1" in text  # the server is named, without its credentials


def test_sign_then_verify_every_binding_holds(tmp_path, capsys):
    run = make_run(tmp_path)
    pub, public = make_key(tmp_path / "signing.pem")
    path, signed = write_attestations(run["reports"], run["record"], key_path=tmp_path / "signing.pem")
    assert signed
    bindings = verify(path, public, model_dir=run["ckpt"], data_dir=run["data"], models_file=tmp_path / "models.toml",
                      runs_dir=run["runs"], resolve_criteria=lambda f, m: run["criteria"])
    assert [(b.name, b.ok) for b in bindings] == [
        ("signature", True), ("statement", True), ("weights", True), ("data", True), ("data", True),
        ("scores", True), ("scores", True), ("criteria", True)]
    assert exit_status(bindings, key_given=True) == 0
    assert main(["verify", str(path), "--key", str(pub), "--model", str(run["ckpt"]), "--data-dir", str(run["data"]),
                 "--runs", str(run["runs"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("OK signature: envelope 1: Ed25519 signature")
    assert any(line.startswith("OK weights: smollm2:") for line in out)


@pytest.fixture
def signed_run(tmp_path):
    run = make_run(tmp_path)
    pub, public = make_key(tmp_path / "signing.pem")
    path, _ = write_attestations(run["reports"], run["record"], key_path=tmp_path / "signing.pem")
    return {**run, "path": path, "pub": pub, "public": public}


def failures(bindings) -> list[str]:
    return sorted({b.name for b in bindings if b.ok is not True})


def test_one_byte_of_the_weights_changed_fails_naming_the_weights(signed_run, capsys):
    weights = signed_run["ckpt"] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[10] ^= 1
    weights.write_bytes(bytes(data))
    bindings = verify(signed_run["path"], signed_run["public"], model_dir=signed_run["ckpt"])
    assert failures(bindings) == ["weights"]
    [line] = [b.line() for b in bindings if b.name == "weights"]
    assert line.startswith("FAIL weights: smollm2:") and "model.safetensors changed" in line
    assert main(["verify", str(signed_run["path"]), "--key", str(signed_run["pub"]), "--model", str(signed_run["ckpt"])]) == 1
    assert "FAIL weights" in capsys.readouterr().out


def test_another_key_fails_naming_the_signature(signed_run, tmp_path, capsys):
    other_pub, other = make_key(tmp_path / "other.pem")
    assert failures(verify(signed_run["path"], other, model_dir=signed_run["ckpt"])) == ["signature"]
    assert main(["verify", str(signed_run["path"]), "--key", str(other_pub)]) == 1
    assert capsys.readouterr().out.startswith("FAIL signature: envelope 1: no signature verifies")


def test_a_changed_payload_fails_naming_the_signature(signed_run):
    env = json.loads(signed_run["path"].read_text())
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["runVerdict"] = "medgate: PASSED"
    env["payload"] = base64.b64encode(canonical_json(statement)).decode()
    signed_run["path"].write_text(json.dumps(env) + "\n")
    assert failures(verify(signed_run["path"], signed_run["public"])) == ["signature"]


def test_a_changed_data_row_fails_naming_the_data(signed_run):
    path = signed_run["data"] / "meqsum.jsonl"
    path.write_text(path.read_text().replace("q2", "q3"))
    bindings = verify(signed_run["path"], signed_run["public"], data_dir=signed_run["data"])
    assert failures(bindings) == ["data"]
    assert [b.detail.split(":")[0] for b in bindings if b.ok is False] == ["smollm2 meqsum"]


def test_a_changed_score_in_the_run_record_fails_naming_the_scores(signed_run):
    path = signed_run["runs"] / f"{signed_run['record']['run_id']}.json"
    record = json.loads(path.read_text())
    record["items"]["smollm2"]["meqsum"][1]["scores"]["rougeL"] = 0.26
    path.write_text(json.dumps(record))
    bindings = verify(signed_run["path"], signed_run["public"], runs_dir=signed_run["runs"])
    assert failures(bindings) == ["scores"]
    assert [b.detail.split(":")[0] for b in bindings if b.ok is False] == ["smollm2 meqsum"]


def test_a_changed_threshold_fails_naming_the_criteria(signed_run, tmp_path):
    changed = json.loads(json.dumps(signed_run["criteria"]))
    changed["thresholds"]["meqsum"]["rougeL"] = 0.09
    bindings = verify(signed_run["path"], signed_run["public"], models_file=tmp_path / "models.toml",
                      resolve_criteria=lambda f, m: changed)
    assert failures(bindings) == ["criteria"]
    same = verify(signed_run["path"], signed_run["public"], models_file=tmp_path / "models.toml",
                  resolve_criteria=lambda f, m: signed_run["criteria"])
    assert failures(same) == []


def test_an_unsigned_record_verifies_its_digests_but_reports_unsigned(tmp_path, capsys):
    run = make_run(tmp_path)
    pub, public = make_key(tmp_path / "signing.pem")
    path, signed = write_attestations(run["reports"], run["record"])
    assert not signed
    bindings = verify(path, public, model_dir=run["ckpt"], data_dir=run["data"], runs_dir=run["runs"])
    assert [b.ok for b in bindings if b.name != "signature"] == [True] * 6
    [sig] = [b for b in bindings if b.name == "signature"]
    assert sig.ok is None and sig.line() == "UNSIGNED signature: envelope 1: unsigned (the envelope has no signature)"
    assert exit_status(bindings, key_given=True) == 1  # a key asks for a signature
    assert main(["verify", str(path), "--model", str(run["ckpt"])]) == 0  # digests only: no key, no demand
    assert "UNSIGNED signature" in capsys.readouterr().out


def test_verify_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(tmp_path / "missing.jsonl")])
    assert exc.value.code == 2
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(tmp_path / "a.jsonl"), "--key", str(tmp_path / "bad.pem")])
    assert exc.value.code == 2 and "bad.pem" in capsys.readouterr().err


def test_a_broken_statement_layout_fails_naming_the_statement(tmp_path):
    path = tmp_path / FILENAME
    path.write_text(json.dumps(envelope(canonical_json({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}))) + "\n")
    bindings = verify(path)
    assert [(b.name, b.ok) for b in bindings] == [("signature", None), ("statement", False)]
    assert "subject is not a non-empty list" in bindings[1].detail and "_type" in bindings[1].detail


def test_the_signing_key_comes_from_the_environment():
    assert signing_key_path({}) is None
    assert signing_key_path({"MEDGATE_SIGNING_KEY": " /keys/k.pem "}) == Path("/keys/k.pem")
