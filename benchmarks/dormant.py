"""What an installed medgate costs a pytest session of an unrelated project: the same session
with the plugin (dormant) and without it (-p no:medgate), alternated, best of N each, in one run.
Also checks that the dormant session imported nothing heavy and wrote no file.
Run: python benchmarks/dormant.py [--tests 200] [--repeat 7]"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = '''
import sys
HEAVY = ("numpy", "torch", "vllm", "transformers", "medgate.pipeline", "medgate.plugin.session", "medgate.tasks")
def test_probe():
    with open("loaded.txt", "w") as handle:
        handle.write(" ".join(m for m in HEAVY if m in sys.modules))
'''


def project(root: Path, tests: int) -> None:
    body = "\n".join(f"def test_{i}():\n    assert {i} + 1 == {i + 1}\n" for i in range(tests))
    (root / "test_many.py").write_text(body, encoding="utf-8")
    (root / "test_probe.py").write_text(PROBE, encoding="utf-8")


def session(root: Path, extra: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra], cwd=root, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "project", Path(tmp) / "cache"
        root.mkdir()
        project(root, args.tests)
        env = {**os.environ, "MEDGATE_CACHE": str(cache)}
        before = sorted(p.name for p in root.iterdir())
        with_plugin, without = [], []
        for _ in range(args.repeat):  # alternated, so drift on a noisy machine hits both sides
            with_plugin.append(session(root, [], env))
            without.append(session(root, ["-p", "no:medgate"], env))
        session(root, [], env)
        loaded = (root / "loaded.txt").read_text(encoding="utf-8").split()
        written = sorted(set(p.name for p in root.iterdir()) - set(before) - {"loaded.txt"})
        print(f"unrelated project, {args.tests + 1} tests, best of {args.repeat}:")
        print(f"  with medgate installed (dormant): {min(with_plugin):.3f} s")
        print(f"  with -p no:medgate:               {min(without):.3f} s")
        print(f"  ratio: {min(with_plugin) / min(without):.3f}")
        print(f"  heavy modules imported: {', '.join(loaded) or 'none'}")
        print(f"  files medgate wrote: {', '.join(written) or 'none'}; cache folder created: {cache.exists()}")


if __name__ == "__main__":
    main()
