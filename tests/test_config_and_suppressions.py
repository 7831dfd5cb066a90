"""[tool.losslint] / losslint.toml settings and suppression comments, through the real CLI and tomllib."""

from __future__ import annotations

import json
from pathlib import Path

BUGGY = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)


def dice_loss(y_true, y_pred):
    return 1 - 2 * tf.reduce_sum(y_true * y_pred) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred))
'''


def _codes(run_cli, *args: str) -> list[str]:
    proc = run_cli("check", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    return sorted(d["code"] for f in doc["files"] for d in f["diagnostics"])


def test_pyproject_select_ignore_and_flags_win(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.losslint]\nignore = ["LL103"]\n')
    (tmp_path / "m.py").write_text(BUGGY)
    assert _codes(run_cli, str(tmp_path)) == ["LL101"]
    assert _codes(run_cli, "--select", "LL103", str(tmp_path)) == []  # config still ignores LL103
    assert _codes(run_cli, "--ignore", "unguarded-log", str(tmp_path)) == []


def test_nearest_config_wins_and_losslint_toml_is_read(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nignore = ["LL103"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "losslint.toml").write_text('select = ["LL103"]\n')
    (tmp_path / "top.py").write_text(BUGGY)
    (sub / "inner.py").write_text(BUGGY)
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    by_file = {Path(f["path"]).name: sorted(d["code"] for d in f["diagnostics"]) for f in doc["files"]}
    assert by_file == {"top.py": ["LL101"], "inner.py": ["LL103"]}


def test_per_file_ignores_and_severity(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.losslint]\n[tool.losslint.per-file-ignores]\n"legacy/*.py" = ["LL1"]\n'
        '[tool.losslint.severity]\nLL101 = "error"\n')
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text(BUGGY)
    (tmp_path / "new.py").write_text(BUGGY)
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    by_file = {Path(f["path"]).name: f["diagnostics"] for f in doc["files"]}
    assert by_file["old.py"] == []
    assert {d["code"]: d["severity"] for d in by_file["new.py"]} == {"LL101": 1, "LL103": 2}


def test_unknown_key_or_code_is_exit_2_naming_file_and_key(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nselcet = ["LL1"]\n')
    (tmp_path / "m.py").write_text(BUGGY)
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 2
    assert "pyproject.toml" in proc.stderr and "'selcet'" in proc.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nignore = ["LL999"]\n')
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 2 and "'LL999'" in proc.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.losslint.rules.LL101]\nbogus = 1\n')
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 2 and "'bogus'" in proc.stderr and "Traceback" not in proc.stderr


def test_show_settings(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nignore = ["LL103"]\n')
    (tmp_path / "m.py").write_text(BUGGY)
    doc = json.loads(run_cli("check", "--show-settings", str(tmp_path / "m.py")).stdout)
    assert doc["config"].endswith("pyproject.toml")
    assert "LL101" in doc["enabled"] and "LL103" not in doc["enabled"]


def test_suppression_comments(run_cli, tmp_path: Path):
    src = BUGGY.replace("axis=-1)\n", "axis=-1)  # losslint: ignore[LL101]\n", 1)
    src = src.replace("    return 1 - 2", "    # noqa: LL103\n    return 1 - 2")
    (tmp_path / "m.py").write_text(src)
    assert _codes(run_cli, str(tmp_path)) == []
    (tmp_path / "m.py").write_text(BUGGY.replace("axis=-1)\n", "axis=-1)  # losslint: ignore[LL103]\n", 1))
    assert _codes(run_cli, str(tmp_path)) == ["LL101", "LL103"]  # the wrong code suppresses nothing


def test_suppression_on_a_multiline_statement_and_file_level(run_cli, tmp_path: Path):
    multi = BUGGY.replace("    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)",
                          "    # losslint: ignore[unguarded-log-is-not-a-code, LL101]\n"
                          "    return -tf.reduce_sum(\n        y_true * tf.math.log(y_pred),\n        axis=-1)")
    (tmp_path / "m.py").write_text(multi)
    assert _codes(run_cli, str(tmp_path)) == ["LL103"]
    (tmp_path / "m.py").write_text("# losslint: ignore-file[LL1]\n" + BUGGY)
    assert _codes(run_cli, str(tmp_path)) == []


def test_warn_unused_ignores(run_cli, tmp_path: Path):
    src = BUGGY.replace("axis=-1)\n", "axis=-1)  # losslint: ignore[LL101]\n", 1)
    src = src.replace("def dice_loss", "x = 1  # noqa: LL105\n\n\ndef dice_loss")
    (tmp_path / "m.py").write_text(src)
    assert _codes(run_cli, str(tmp_path)) == ["LL103"]
    proc = run_cli("check", "--format", "json", "--warn-unused-ignores", str(tmp_path))
    doc = json.loads(proc.stdout)
    diags = doc["files"][0]["diagnostics"]
    assert sorted(d["code"] for d in diags) == ["LL000", "LL103"]
    unused = next(d for d in diags if d["code"] == "LL000")
    assert unused["range"]["start"]["line"] == src.splitlines().index("x = 1  # noqa: LL105")
    assert "LL105" in unused["message"] and unused["data"]["name"] == "unused-suppression"
    from losslint.outputs.json_output import schema
    import jsonschema

    jsonschema.validate(doc, schema())


def test_force_exclude_applies_exclude_to_files_named_explicitly(run_cli, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nexclude = ["vendor/"]\n')
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "v.py").write_text(BUGGY)
    named = str(tmp_path / "vendor" / "v.py")
    assert run_cli("check", named).returncode == 1  # named explicitly: linted, as Ruff does
    proc = run_cli("check", "--force-exclude", "--format", "json", named)
    assert proc.returncode == 0 and json.loads(proc.stdout)["files"] == []
    assert run_cli("check", str(tmp_path)).returncode == 0  # walking honours exclude anyway
