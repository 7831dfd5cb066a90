"""Notebooks are checked cell by cell as one module; findings name the cell and the line inside it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from losslint.outputs.json_output import schema


def _nb(cells: list[tuple[str, str]]) -> str:
    return json.dumps({
        "cells": [{"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True),
                   **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, src in cells],
        "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5})


NB = _nb([
    ("markdown", "# Training\n"),
    ("code", "%matplotlib inline\n!pip install tensorflow\nimport tensorflow as tf\n"),
    ("code", "def crossentropy(y_true, y_pred):\n    return -tf.reduce_sum(y_true * tf.math.log(y_pred))\n"),
])


def test_findings_name_the_cell_and_line(run_cli, tmp_path: Path):
    (tmp_path / "train.ipynb").write_text(NB)
    proc = run_cli("check", "--format", "concise", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout.strip() == (f"{tmp_path / 'train.ipynb'}:cell 3:2:36: LL101 log of `y_pred` (y_pred), which "
                                   "can be 0: the loss becomes -inf and its gradient NaN")


def test_json_positions_are_cell_relative(run_cli, tmp_path: Path):
    (tmp_path / "train.ipynb").write_text(NB)
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    jsonschema.validate(doc, schema())
    d = doc["files"][0]["diagnostics"][0]
    assert d["data"]["cell"] == 2
    assert d["range"]["start"] == {"line": 1, "character": 35}


def test_broken_notebook_is_a_per_file_error(run_cli, tmp_path: Path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "ok.py").write_text("import tensorflow as tf\n\ndef loss(y_true, y_pred):\n"
                                    "    return tf.math.log(y_pred)\n")
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    by = {Path(f["path"]).name: f for f in doc["files"]}
    assert by["broken.ipynb"]["error"]["kind"] == "decode-error"
    assert "not a valid notebook" in by["broken.ipynb"]["error"]["message"]
    assert by["ok.py"]["diagnostics"][0]["code"] == "LL101"


def test_fix_writes_back_into_the_cell_and_keeps_the_rest(run_cli, tmp_path: Path):
    nb = tmp_path / "train.ipynb"
    doc = json.loads(NB)
    doc["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ok\n"]}]
    doc["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    original = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    nb.write_text(original)
    assert run_cli("fix", "--no-confirm", str(nb)).returncode == 1  # unconfirmed: nothing written
    assert nb.read_text() == original
    proc = run_cli("fix", "--no-confirm", "--unsafe-fixes", str(nb))
    assert proc.returncode == 0, proc.stderr
    after = json.loads(nb.read_text())
    assert after["cells"][2]["source"] == ["def crossentropy(y_true, y_pred):\n",
                                           "    return -tf.reduce_sum(y_true * tf.math.log(tf.math.maximum(y_pred, "
                                           "1e-7)))\n"]
    assert after["cells"][1]["source"] == doc["cells"][1]["source"]  # the magics are kept
    assert after["cells"][1]["outputs"] == doc["cells"][1]["outputs"] and after["metadata"] == doc["metadata"]
    assert nb.read_text().splitlines()[1].startswith(" \"cells\"")  # nbformat's indent=1 is kept
    assert run_cli("check", str(nb)).returncode == 0


def test_shell_continuations_cell_magics_and_assigned_magics_parse(run_cli, tmp_path: Path):
    """What real notebooks hold (tensorflow/examples courses): `!wget \\` continued on the next lines, a `%%bash`
    cell after a blank line, `files = !ls`; the Python around them is still checked, with the right cell lines."""
    nb = _nb([("code", "!wget --no-check-certificate \\\n    https://example.com/data.zip \\\n    -O /tmp/data.zip\n"
                       "import tensorflow as tf\n"),
              ("code", "\n%%bash -s $DATA_DIR\nls $1 | head\n"),
              ("code", "files = !ls /tmp\nn_files, = %sx ls | wc -l\ntf.keras.Input?\ntf.nn.softmax??\n"
                       "def crossentropy(y_true, y_pred):\n    return -tf.math.log(y_pred)\n")])
    (tmp_path / "m.ipynb").write_text(nb)
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    f = doc["files"][0]
    assert f["error"] is None, f["error"]
    [d] = f["diagnostics"]
    assert d["code"] == "LL101" and d["data"]["cell"] == 2 and d["range"]["start"]["line"] == 5


def test_a_magic_as_the_only_statement_of_a_block_still_parses(run_cli, tmp_path: Path):
    nb = _nb([("code", "import tensorflow as tf\nfor f in files:\n    !rm $f\nif True:\n    %time x = 1\n"),
              ("code", "def crossentropy(y_true, y_pred):\n    return -tf.math.log(y_pred)\n")])
    (tmp_path / "m.ipynb").write_text(nb)
    doc = json.loads(run_cli("check", "--format", "json", str(tmp_path)).stdout)
    assert doc["files"][0]["error"] is None
    assert [d["code"] for d in doc["files"][0]["diagnostics"]] == ["LL101"]


def test_an_indented_cell_is_dedented_as_ipython_does_and_fixed_with_its_indent(run_cli, tmp_path: Path):
    """IPython removes a cell's leading indentation (tensorflow/docs has such cells); the finding's column is the
    cell's own, and `fix` writes the line back with the indentation."""
    nb = tmp_path / "indented.ipynb"
    nb.write_text(_nb([("code", "import tensorflow as tf\n"),
                       ("code", "  def crossentropy(y_true, y_pred):\n"
                                "      return -tf.reduce_sum(y_true * tf.math.log(y_pred))\n")]))
    doc = json.loads(run_cli("check", "--format", "json", str(nb)).stdout)
    f = doc["files"][0]
    assert f["error"] is None, f["error"]
    [d] = f["diagnostics"]
    cell_line = "      return -tf.reduce_sum(y_true * tf.math.log(y_pred))"
    assert d["data"]["cell"] == 1 and d["range"]["start"] == {"line": 1, "character": cell_line.index("tf.math.log")}
    concise = run_cli("check", "--format", "concise", str(nb)).stdout
    assert f"cell 2:2:{cell_line.index('tf.math.log') + 1}: LL101" in concise
    assert run_cli("fix", "--no-confirm", "--unsafe-fixes", str(nb)).returncode == 0
    fixed = json.loads(nb.read_text())["cells"][1]["source"]
    assert fixed == ["  def crossentropy(y_true, y_pred):\n",
                     "      return -tf.reduce_sum(y_true * tf.math.log(tf.math.maximum(y_pred, 1e-7)))\n"]
