"""The real thing: the README's main command on the embedded model through vLLM (CPU build here)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, outcomes


def test_mednli_end_to_end_on_smollm2_through_vllm(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_medical", "--model", "smollm2", f"--reports-dir={reports}",
         "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout
    # The progress bar shows items done of total and tokens per second.
    assert "smollm2 mednli generated: 100%" in proc.stderr and "toks/s" in proc.stderr

    found = {o["metric"]: o for o in outcomes(reports)}
    assert set(found) == {"accuracy", "no_label_rate"}
    assert all(o["status"] == "pass" for o in found.values())
    prov = found["accuracy"]["provenance"]
    assert prov["engine"] == "vllm" and prov["device"] == "cpu"
    assert prov["model_fingerprint"].startswith("sha256:")
    assert prov["n_items"] == 33 and prov["completion_tokens"] > 0
    assert prov["decoding"] == {"max_tokens": 20, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert 0.0 <= found["accuracy"]["value"] <= 1.0

    results = [json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")]
    assert sorted(r["status"] for r in results) == ["passed", "passed"]
    env = (reports / "allure-results" / "environment.properties").read_text()
    assert f"smollm2.model_fingerprint={prov['model_fingerprint'].replace(':', chr(92) + ':')}" in env
    assert "# medgate: PASSED" in (reports / "summary.md").read_text()
