"""`losslint fix`: what it applies without and with confirmation, --diff, idempotence, atomic faithful writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from losslint.files import FileChangedError, read_bytes, write_atomic

BUGGY = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)


def softmax_xent(labels, logits):
    return -tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)
'''
FIXED = BUGGY.replace("tf.math.log(y_pred)", "tf.math.log(tf.math.maximum(y_pred, 1e-7))").replace(
    "tf.math.log(tf.nn.softmax(logits))", "tf.nn.log_softmax(logits)")


def test_unconfirmed_fixes_are_not_applied_without_unsafe_fixes(run_cli, tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_text(BUGGY)
    proc = run_cli("fix", "--no-confirm", str(f))
    assert proc.returncode == 1
    assert f.read_text() == BUGGY
    assert "Fixed 0 findings; 2 remaining." in proc.stderr


def test_diff_shows_and_writes_nothing(run_cli, tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_text(BUGGY)
    proc = run_cli("fix", "--no-confirm", "--unsafe-fixes", "--diff", str(f))
    assert f.read_text() == BUGGY
    assert "-    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)" in proc.stdout
    assert "+    return -tf.reduce_sum(labels * tf.nn.log_softmax(logits), axis=-1)" in proc.stdout
    assert proc.stdout.startswith("--- a/")


def test_unsafe_fixes_apply_idempotently_and_keep_file_mode_and_newlines(run_cli, tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_bytes(BUGGY.replace("\n", "\r\n").encode())
    os.chmod(f, 0o640)
    proc = run_cli("fix", "--no-confirm", "--unsafe-fixes", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f.read_bytes() == FIXED.replace("\n", "\r\n").encode()
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    before = f.read_bytes()
    again = run_cli("fix", "--no-confirm", "--unsafe-fixes", str(f))
    assert again.returncode == 0 and f.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".losslint-")], "no temp files left behind"
    assert run_cli("check", str(f)).returncode == 0


def test_encoding_cookie_and_bom_are_kept(run_cli, tmp_path: Path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n# caf\xe9\n" + BUGGY).encode("latin-1"))
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + BUGGY.encode())
    assert run_cli("fix", "--no-confirm", "--unsafe-fixes", str(tmp_path)).returncode == 0
    assert latin.read_bytes() == ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + FIXED).encode("latin-1")
    assert bom.read_bytes() == b"\xef\xbb\xbf" + FIXED.encode()


def test_write_is_refused_when_the_file_changed(tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_text(BUGGY)
    original = read_bytes(f)
    f.write_text(BUGGY + "# edited meanwhile\n")
    with pytest.raises(FileChangedError):
        write_atomic(str(f), original, FIXED)
    assert f.read_text().endswith("# edited meanwhile\n")


def test_apply_edits_skips_overlaps_for_a_later_pass():
    from losslint.fixes.apply import apply_edits
    from losslint.model import Edit, Position, Range

    src = "abcdef\n"
    e1 = Edit(Range(Position(0, 1), Position(0, 4)), "X")
    e2 = Edit(Range(Position(0, 2), Position(0, 5)), "Y")
    e3 = Edit(Range(Position(0, 5), Position(0, 6)), "Z")
    out, left = apply_edits(src, [e2, e3, e1])
    assert out == "aXeZ\n" and left == [e2]


def test_a_pass_that_breaks_parsing_is_reverted():
    from losslint.fixes.apply import fix_text
    from losslint.model import Diagnostic, Edit, FileResult, Fix, Position, Range, Severity

    src = "import tensorflow as tf\nx = 1\n"
    bad = Diagnostic("LL101", "unguarded-log", "m", Range(Position(1, 0), Position(1, 5)), Severity.WARNING,
                     fix=Fix("break it", "safe", (Edit(Range(Position(1, 0), Position(1, 5)), "x = ("),),
                             confirmed=True))
    outcome = fix_text(src, "m.py", lambda s, p: FileResult(p, s, diagnostics=(bad,) if s == src else ()))
    assert outcome.fixed == src and outcome.error and "reverted" in outcome.error


def test_check_show_fixes_lists_each_edit(run_cli, tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_text(BUGGY)
    out = run_cli("check", "--show-fixes", str(f)).stdout
    assert "= fix (safe, unconfirmed): bound `y_pred` below by eps before the log" in out
    assert "- y_pred" in out and "+ tf.math.maximum(y_pred, 1e-7)" in out
    assert "+ tf.nn.log_softmax(logits)" in out
