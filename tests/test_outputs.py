"""`--format sarif | github | json-lines`, `--statistics` and `--output-file`, through the real entry point.

SARIF is validated against the official OASIS SARIF 2.1.0 schema, vendored in tests/schemas/ (see its README).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from losslint.model import Diagnostic, FileResult, Position, Range, Severity
from losslint.outputs import FORMATS
from losslint.outputs.github import render as render_github
from losslint.rules import all_rules, rule_by_id

SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))

BUGGY = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''
# Two findings on one line after an astral-plane character (2 UTF-16 code units, 1 code point).
EMOJI = '''import tensorflow as tf


def ratio(y_true, y_pred):
    s = "\N{GRINNING FACE}"; return tf.math.log(y_pred) / tf.reduce_sum(y_true)
'''
CLEAN = '''import tensorflow as tf


def crossentropy(y_true, y_pred):
    y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0 - 1e-7)
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''
BROKEN = "import tensorflow as tf\ndef (:\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "buggy.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "emoji.py").write_text(EMOJI, encoding="utf-8")
    (tmp_path / "clean.py").write_text(CLEAN, encoding="utf-8")
    return tmp_path


def _validate_sarif(doc: dict) -> None:
    cls = jsonschema.validators.validator_for(SARIF_SCHEMA)
    cls.check_schema(SARIF_SCHEMA)
    errors = sorted(cls(SARIF_SCHEMA, format_checker=cls.FORMAT_CHECKER).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def _default_enabled(run_cli, project: Path) -> list[str]:
    return json.loads(run_cli("check", "--show-settings", str(project), cwd=project).stdout)["enabled"]


# ---- SARIF ---------------------------------------------------------------------------------------------------------

def test_sarif_is_valid_and_complete(run_cli, project):
    proc = run_cli("check", "--format", "sarif", ".", cwd=project)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    _validate_sarif(doc)
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "losslint" and driver["version"] and driver["informationUri"].startswith("https://")
    # Every enabled rule, once, with its metadata.
    assert [r["id"] for r in driver["rules"]] == sorted(_default_enabled(run_cli, project))
    for desc in driver["rules"]:
        rule = rule_by_id(desc["id"])
        assert desc["name"] == rule.name
        assert desc["shortDescription"]["text"] == rule.summary
        assert desc["fullDescription"]["text"]
        assert desc["helpUri"] == rule.docs_url()
        assert desc["defaultConfiguration"]["level"] == {1: "error", 2: "warning"}.get(int(rule.severity), "note")
    assert run["columnKind"] == "utf16CodeUnits"
    assert run["invocations"][0]["toolExecutionNotifications"] == []

    by_file: dict[str, list[dict]] = {}
    for res in run["results"]:
        by_file.setdefault(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], []).append(res)
    assert set(by_file) == {"buggy.py", "emoji.py"}  # relative to the working directory, clean.py has none
    (res,) = by_file["buggy.py"]
    assert res["ruleId"] == "LL101" and res["level"] == "warning"
    assert driver["rules"][res["ruleIndex"]]["id"] == "LL101"
    assert res["message"]["text"].startswith("log of `y_pred`")
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    # `tf.math.log(y_pred)` on line 5, 1-based columns 36..55 (end exclusive)
    assert loc["region"] == {"startLine": 5, "startColumn": 36, "endLine": 5, "endColumn": 55}
    (fix,) = res["fixes"]
    assert fix["description"]["text"]
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "buggy.py"
    (rep,) = change["replacements"]
    assert rep["deletedRegion"] == {"startLine": 5, "startColumn": 48, "endLine": 5, "endColumn": 54}  # `y_pred`
    assert "y_pred" in rep["insertedContent"]["text"]


def test_sarif_columns_count_utf16_code_units(run_cli, project):
    doc = json.loads(run_cli("check", "--format", "sarif", "emoji.py", cwd=project).stdout)
    _validate_sarif(doc)
    regions = {r["ruleId"]: r["locations"][0]["physicalLocation"]["region"] for r in doc["runs"][0]["results"]}
    line = EMOJI.splitlines()[4]
    cp = line.index("tf.math.log")  # code points, 0-based
    assert regions["LL101"]["startColumn"] == cp + 2  # +1 for the surrogate pair, +1 for 1-based
    assert regions["LL101"]["endColumn"] == cp + len("tf.math.log(y_pred)") + 2
    assert regions["LL103"]["startColumn"] == cp + 2 and regions["LL103"]["endColumn"] == len(line) + 2


def test_sarif_fingerprints_survive_moved_lines_and_separate_repeats(run_cli, project):
    def prints(name: str) -> list[str]:
        doc = json.loads(run_cli("check", "--format", "sarif", name, cwd=project).stdout)
        _validate_sarif(doc)
        return [r["partialFingerprints"]["losslint/v1"] for r in doc["runs"][0]["results"]]

    before = prints("buggy.py")
    assert len(before) == 1 and len(before[0]) == 32
    # lines inserted above the finding: same fingerprint, though the region moved
    (project / "buggy.py").write_text("# a comment\n\n" + BUGGY, encoding="utf-8")
    assert prints("buggy.py") == before
    # the same finding twice in one scope: two distinct fingerprints
    twice = BUGGY.replace("return -tf", "a = -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)\n    return -tf")
    (project / "buggy.py").write_text(twice, encoding="utf-8")
    both = prints("buggy.py")
    assert len(both) == 2 and len(set(both)) == 2 and before[0] in both
    # another file, same code: another fingerprint
    (project / "other.py").write_text(BUGGY, encoding="utf-8")
    assert prints("other.py") != before


def test_sarif_file_errors_are_tool_execution_notifications(run_cli, project):
    (project / "broken.py").write_text(BROKEN, encoding="utf-8")
    proc = run_cli("check", "--format", "sarif", "--select", "LL101", "broken.py", "buggy.py", cwd=project)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    _validate_sarif(doc)
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["LL101"]  # only the enabled rules
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and note["descriptor"]["id"] == "syntax-error"
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"
    assert [r["ruleId"] for r in run["results"]] == ["LL101"]


def test_sarif_without_findings_is_valid(run_cli, project):
    proc = run_cli("check", "--format", "sarif", str(project / "clean.py"))
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    _validate_sarif(doc)
    assert doc["runs"][0]["results"] == []
    assert len(doc["runs"][0]["tool"]["driver"]["rules"]) >= 1


# ---- GitHub workflow commands --------------------------------------------------------------------------------------

def test_github_annotations(run_cli, project):
    proc = run_cli("check", "--format", "github", ".", cwd=project)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == ("::warning file=buggy.py,line=5,col=36,endLine=5,endColumn=55,title=LL101::"
                        "log of `y_pred` (y_pred), which can be 0: the loss becomes -inf and its gradient NaN")
    cp = EMOJI.splitlines()[4].index("tf.math.log")
    assert any(line.startswith(f"::warning file=emoji.py,line=5,col={cp + 2},") and "title=LL103::" in line
               for line in lines)
    assert len(lines) == 3


def test_github_escapes_properties_and_message(run_cli, tmp_path):
    # A file name with %, comma and colon (property escaping) and a syntax error whose message has ":" and ","
    # (data: only %, CR and LF are escaped).
    name = "100%,a:b.py"
    (tmp_path / name).write_text(BROKEN, encoding="utf-8")
    proc = run_cli("check", "--format", "github", name, cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert line.startswith("::error file=100%25%2Ca%3Ab.py,title=losslint syntax-error::syntax error at line 2, ")
    # The pure renderer, with a message holding every character the spec escapes.
    rng = Range(Position(0, 0), Position(0, 1))
    d = Diagnostic("LL101", "unguarded-log", "100% sure: a, b\nnext line\r", rng, Severity.ERROR)
    notice = Diagnostic("LL101", "unguarded-log", "hint", rng, Severity.INFORMATION)
    out = render_github([FileResult("d,ir/x:y.py", "x = 1\n", (d, notice))], cwd=str(tmp_path))
    assert out.splitlines() == [
        "::error file=d%2Cir/x%3Ay.py,line=1,col=1,endLine=1,endColumn=2,title=LL101::100%25 sure: a, b%0Anext line%0D",
        "::notice file=d%2Cir/x%3Ay.py,line=1,col=1,endLine=1,endColumn=2,title=LL101::hint",
    ]


# ---- json-lines ----------------------------------------------------------------------------------------------------

def test_json_lines_is_the_json_diagnostic_plus_path(run_cli, project):
    (project / "broken.py").write_text(BROKEN, encoding="utf-8")
    proc = run_cli("check", "--format", "json-lines", ".", cwd=project)
    assert proc.returncode == 1
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    full = json.loads(run_cli("check", "--format", "json", ".", cwd=project).stdout)
    expected = []
    for f in full["files"]:
        if f["error"] is not None:
            expected.append({"path": f["path"], "error": f["error"]})
        expected.extend({"path": f["path"], **d} for d in f["diagnostics"])
    assert objs == expected
    assert {Path(o["path"]).name for o in objs} == {"broken.py", "buggy.py", "emoji.py"}
    assert next(o for o in objs if "error" in o)["error"]["kind"] == "syntax-error"
    assert sum(1 for o in objs if o.get("code")) == 3
    assert list(objs[-1])[0] == "path"


# ---- --statistics --------------------------------------------------------------------------------------------------

def test_statistics_text_and_json(run_cli, project):
    (project / "more.py").write_text(BUGGY.replace("crossentropy", "other"), encoding="utf-8")
    proc = run_cli("check", "--statistics", ".", cwd=project)
    assert proc.returncode == 1, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert rows == [["3", "LL101", "[*] unguarded-log"], ["1", "LL103", "[*] unguarded-division"]]
    proc = run_cli("check", "--statistics", "--format", "json", ".", cwd=project)
    assert json.loads(proc.stdout) == [{"code": "LL101", "name": "unguarded-log", "count": 3},
                                       {"code": "LL103", "name": "unguarded-division", "count": 1}]
    clean = run_cli("check", "--statistics", "--format", "json", "clean.py", cwd=project)
    assert clean.returncode == 0 and json.loads(clean.stdout) == []


def test_statistics_reports_file_errors_on_stderr(run_cli, project):
    (project / "broken.py").write_text(BROKEN, encoding="utf-8")
    proc = run_cli("check", "--statistics", "broken.py", "buggy.py", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout.split("\t")[:2] == ["1", "LL101"]
    assert "broken.py: error[syntax-error]" in proc.stderr


# ---- --output-file -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_for_every_format(run_cli, project, fmt):
    target = project / f"report.{fmt}"
    proc = run_cli("check", "--format", fmt, "--output-file", str(target), "buggy.py", cwd=project)
    assert proc.returncode == 1 and proc.stdout == ""
    written = target.read_text(encoding="utf-8")
    assert "LL101" in written
    if fmt != "text":
        assert written == run_cli("check", "--format", fmt, "buggy.py", cwd=project).stdout
    if fmt == "sarif":
        _validate_sarif(json.loads(written))


def test_statistics_to_output_file(run_cli, project):
    target = project / "stats.json"
    proc = run_cli("check", "--statistics", "--format", "json", "--output-file", str(target), "buggy.py", cwd=project)
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8")) == [{"code": "LL101", "name": "unguarded-log", "count": 1}]


def test_every_rule_descriptor_is_valid_sarif():
    # Every rule's metadata, not only the default selection, renders into schema-valid SARIF.
    from losslint.outputs.sarif import render

    doc = json.loads(render([], rules=all_rules()))
    _validate_sarif(doc)
    assert [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]] == [r.code for r in all_rules()]


def test_notebook_findings_in_sarif_and_github(run_cli, tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# losses"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["import tensorflow as tf\n"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["def loss(y_true, y_pred):\n", "    return -tf.reduce_sum(y_true * tf.math.log(y_pred))\n"]}]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                   "nbformat_minor": 5}), encoding="utf-8")
    doc = json.loads(run_cli("check", "--format", "sarif", "nb.ipynb", cwd=tmp_path).stdout)
    _validate_sarif(doc)
    (res,) = doc["runs"][0]["results"]
    # cell-relative lines, as in --format json, with the index into `cells`; no fixes (notebooks are not rewritten)
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert res["properties"]["cell"] == 2 and "fixes" not in res
    out = run_cli("check", "--format", "github", "nb.ipynb", cwd=tmp_path).stdout
    assert out.startswith("::warning file=nb.ipynb,title=LL101::cell 3:2:36: log of `y_pred`")
