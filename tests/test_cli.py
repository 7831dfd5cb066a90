"""The command line through the real entry point: exit codes, formats, the JSON schema, positions."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from losslint.outputs.json_output import schema

BUGGY = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''
CLEAN = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0 - 1e-7)
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "buggy.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "clean.py").write_text(CLEAN, encoding="utf-8")
    return tmp_path


def test_exit_1_with_findings_and_0_when_clean(run_cli, project):
    assert run_cli("check", str(project / "buggy.py")).returncode == 1
    clean = run_cli("check", str(project / "clean.py"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert run_cli("check", "--exit-zero", str(project / "buggy.py")).returncode == 0


def test_exit_2_on_usage_errors(run_cli, project):
    assert run_cli("check", "--select", "LL999", str(project)).returncode == 2
    assert run_cli("check", "--format", "nope", str(project)).returncode == 2
    assert run_cli("rule", "LL999").returncode == 2


def test_select_and_ignore_by_code_prefix_and_name(run_cli, project):
    assert run_cli("check", "--ignore", "LL101", str(project / "buggy.py")).returncode == 0
    assert run_cli("check", "--ignore", "unguarded-log", str(project / "buggy.py")).returncode == 0
    assert run_cli("check", "--select", "LL10", str(project / "buggy.py")).returncode == 1
    assert run_cli("check", "--select", "LL103", str(project / "buggy.py")).returncode == 0


def test_text_output_shows_source_caret_scope_and_summary(run_cli, project):
    out = run_cli("check", str(project)).stdout
    assert "buggy.py:5:36: LL101" in out
    assert "return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)" in out
    caret_line = next(line for line in out.splitlines() if "^" in line)
    src_line = next(line for line in out.splitlines() if "tf.math.log(y_pred)" in line and "|" in line)
    assert caret_line.index("^") == src_line.index("tf.math.log")
    assert caret_line.count("^") == len("tf.math.log(y_pred)")
    assert "loss-style function `crossentropy`" in out
    assert "Found 1 finding, 2 files checked." in out


def test_concise_output(run_cli, project):
    out = run_cli("check", "--format", "concise", str(project / "buggy.py")).stdout
    assert out.strip().endswith("LL101 log of `y_pred` (y_pred), which can be 0: the loss becomes -inf and its "
                                "gradient NaN")
    assert out.startswith(f"{project / 'buggy.py'}:5:36: LL101 ")


def test_json_output_validates_against_the_shipped_schema(run_cli, project):
    proc = run_cli("check", "--format", "json", str(project))
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, schema())
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    diag = by_name["buggy.py"]["diagnostics"][0]
    assert diag["code"] == "LL101" and diag["severity"] == 2 and diag["source"] == "losslint"
    assert diag["range"] == {"start": {"line": 4, "character": 35}, "end": {"line": 4, "character": 54}}
    assert diag["data"]["scope"] == "loss-style function `crossentropy` (y_true, y_pred)"
    assert diag["codeDescription"]["href"].endswith("docs/rules/LL101-unguarded-log.md")
    assert by_name["clean.py"]["diagnostics"] == [] and by_name["clean.py"]["error"] is None
    assert doc["summary"] == {"files": 2, "findings": 1, "errors": 0, "fixable": 1}
    fix = diag["data"]["fix"]
    assert fix["applicability"] == "safe" and fix["confirmed"] is None  # check never runs TensorFlow
    assert fix["edits"] == [{"range": {"start": {"line": 4, "character": 47}, "end": {"line": 4, "character": 53}},
                             "newText": "tf.math.maximum(y_pred, 1e-7)"}]
    assert by_name["buggy.py"]["uri"].startswith("file:///")


def test_json_positions_count_utf16_code_units(run_cli, tmp_path):
    # U+1F600 is two UTF-16 units but one code point: the column after it must count 2.
    src = BUGGY.replace("    return -tf", "    s = '\U0001F600'; return -tf")
    (tmp_path / "emoji.py").write_text(src, encoding="utf-8")
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path / "emoji.py")).stdout)
    start = doc["files"][0]["diagnostics"][0]["range"]["start"]
    line = src.splitlines()[4]
    code_points = line.index("tf.math.log")
    assert start == {"line": 4, "character": code_points + 1}
    text = run_cli("check", "--format", "concise", str(tmp_path / "emoji.py")).stdout
    assert f":5:{code_points + 1}: LL101" in text  # text formats count code points, 1-based


def test_stdin_with_filename(run_cli):
    proc = run_cli("check", "--format", "concise", "--stdin-filename", "snippet.py", "-", stdin=BUGGY)
    assert proc.returncode == 1
    assert proc.stdout.startswith("snippet.py:5:36: LL101")


def test_output_file(run_cli, project, tmp_path):
    target = tmp_path / "report.json"
    proc = run_cli("check", "--format", "json", "--output-file", str(target), str(project / "buggy.py"))
    assert proc.returncode == 1 and proc.stdout == ""
    jsonschema.validate(json.loads(target.read_text(encoding="utf-8")), schema())


def test_files_without_a_framework_import_are_skipped(run_cli, tmp_path):
    (tmp_path / "plain.py").write_text("import math\n\ndef loss(y_true, y_pred):\n    return math.log(y_pred)\n")
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 0
    assert "1 without a deep-learning import skipped" in proc.stdout


def test_no_progress_bar_in_machine_formats(run_cli, project):
    proc = run_cli("check", "--format", "json", str(project))
    assert proc.stderr == ""


def test_rules_and_rule_pages(run_cli):
    listing = run_cli("rules").stdout
    for code in ("LL101", "LL102", "LL103"):
        assert code in listing
    rules = json.loads(run_cli("rules", "--format", "json").stdout)
    assert {r["code"] for r in rules} >= {"LL101", "LL102", "LL103"}
    page = run_cli("rule", "unguarded-division").stdout
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety"):
        assert section in page
    assert run_cli("rule", "LL101").stdout.startswith("# LL101 unguarded-log")


def test_parallel_jobs_give_the_same_report_in_the_same_order(run_cli, tmp_path):
    for i in range(12):
        (tmp_path / f"m{i:02d}.py").write_text(BUGGY if i % 3 == 0 else CLEAN, encoding="utf-8")
    serial = run_cli("check", "--format", "concise", "--jobs", "1", str(tmp_path))
    parallel = run_cli("check", "--format", "concise", "--jobs", "2", str(tmp_path))
    assert serial.returncode == parallel.returncode == 1
    assert serial.stdout == parallel.stdout
    assert serial.stdout.count("LL101") == 4


def test_gitignore_and_exclude_are_honoured(run_cli, tmp_path):
    (tmp_path / ".gitignore").write_text("generated/\n", encoding="utf-8")
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "g.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "v.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "own.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "third").mkdir()
    (tmp_path / "third" / "t.py").write_text(BUGGY, encoding="utf-8")
    out = run_cli("check", "--format", "concise", "--exclude", "vendor/", "--exclude", "third/", str(tmp_path)).stdout
    assert "own.py" in out and "g.py" not in out and "v.py" not in out and "t.py" not in out


def test_progress_bar_only_when_stderr_is_a_terminal(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    for i in range(3):
        (tmp_path / f"m{i}.py").write_text(CLEAN, encoding="utf-8")
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    proc = subprocess.run([sys.executable, "-m", "losslint", "check", "--jobs", "1", str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=slave, env=env, timeout=120)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty_err = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "linting" in tty_err  # the bar was drawn on the terminal
    assert "linting" not in proc.stdout.decode()  # and never mixed into the report


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`losslint check | head -1`: the reader leaves early; no traceback, exit 1."""
    import subprocess
    import sys

    body = "".join(f"    a{i} = tf.math.log(y_pred)\n" for i in range(1500))
    (tmp_path / "many.py").write_text(f"import tensorflow as tf\n\n\ndef loss(y_true, y_pred):\n{body}    return a0\n")
    proc = subprocess.Popen([sys.executable, "-m", "losslint", "check", str(tmp_path / "many.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # far more than a pipe buffer is still to come
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err
