"""The bundled examples/, linted through the real CLI, report exactly the lines marked `# BUG LLxxx: reason`.

A buggy line carries `# BUG LL101: reason` (or `# BUG LL101, LL103: reason` when two rules fire on it). Files named
`*_clean.py` hold the safe idioms people really write and must produce no finding at all.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
_BUG_RE = re.compile(r"#\s*BUG\s+(LL\d{3}(?:\s*,\s*LL\d{3})*)\s*:\s*\S")


def _bug_comments(path: Path) -> set[tuple[str, int, str]]:
    source = path.read_text(encoding="utf-8")
    out = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        m = _BUG_RE.search(tok.string)
        if m:
            out.update((path.name, tok.start[0], code.strip()) for code in m.group(1).split(","))
        else:
            assert "BUG" not in tok.string, f"{path.name}:{tok.start[0]}: malformed BUG comment {tok.string!r}"
    return out


@pytest.fixture(scope="module")
def report(run_cli_module):
    proc = run_cli_module("check", "examples", "--format", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def run_cli_module():
    import os
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
        return subprocess.run([sys.executable, "-m", "losslint", *args], cwd=ROOT, capture_output=True, text=True,
                              env=env, timeout=300)

    return run


def _findings(report) -> set[tuple[str, int, str]]:
    return {(Path(f["path"]).name, d["range"]["start"]["line"] + 1, d["code"])
            for f in report["files"] for d in f["diagnostics"]}


def test_every_example_file_is_analysed(report):
    paths = {Path(f["path"]).name for f in report["files"]}
    assert paths == {p.name for p in EXAMPLES.glob("*.py")}
    for f in report["files"]:
        assert f["error"] is None, (f["path"], f["error"])


def test_findings_are_exactly_the_bug_comments(report):
    expected = set().union(*(_bug_comments(p) for p in EXAMPLES.glob("*.py")))
    got = _findings(report)
    assert got == expected, f"unexpected: {sorted(got - expected)}; missing: {sorted(expected - got)}"
    assert report["summary"]["findings"] == sum(len(f["diagnostics"]) for f in report["files"])


def test_clean_files_are_silent(report):
    clean = [f for f in report["files"] if f["path"].endswith("_clean.py")]
    assert len(clean) >= 5
    noisy = {f["path"]: [(d["range"]["start"]["line"] + 1, d["code"], d["message"]) for d in f["diagnostics"]]
             for f in clean if f["diagnostics"]}
    assert not noisy, noisy


def test_every_rule_is_exercised_by_a_buggy_example(report):
    from losslint.rules import all_rules

    codes = {code for _, _, code in _findings(report)}
    assert {r.code for r in all_rules() if r.code in ("LL101", "LL102", "LL103")} <= codes


@pytest.mark.parametrize("stem", ["tf1_graph", "keras3_ops", "torch_training", "jax_grad", "numpy_loss",
                                  "keras_losses"])
def test_each_framework_has_a_buggy_and_a_clean_file(stem):
    assert (EXAMPLES / f"{stem}_buggy.py").is_file()
    assert (EXAMPLES / f"{stem}_clean.py").is_file()
