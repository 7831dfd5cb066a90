"""The layering of ARCHITECTURE.md, checked on the import statements themselves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "losslint"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_analysis_imports_no_rule_output_or_cli():
    for path in (SRC / "analysis").glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith(("losslint.rules", "losslint.outputs", "losslint.cli",
                                                           "losslint.engine", "losslint.api"))}
        assert not bad, f"{path.name} imports {bad}"


def test_rules_import_no_other_rule_output_or_cli():
    for path in (SRC / "rules").glob("ll*.py"):
        bad = {m for m in _imports(path)
               if m.startswith(("losslint.outputs", "losslint.cli", "losslint.api"))
               or (m.startswith("losslint.rules.ll") and not m.endswith(path.stem))}
        assert not bad, f"{path.name} imports {bad}"


def test_model_imports_nothing_from_losslint():
    assert not {m for m in _imports(SRC / "model.py") if m.startswith("losslint")}


def test_check_never_imports_tensorflow_or_torch(tmp_path):
    (tmp_path / "user.py").write_text("import tensorflow as tf\nimport torch\n\ndef loss(y_true, y_pred):\n"
                                      "    return tf.math.log(y_pred)\n", encoding="utf-8")
    code = ("import sys; from losslint.cli import main; rc = main(['check', '--format', 'json', sys.argv[1]]); "
            "bad = [m for m in ('tensorflow', 'torch', 'jax', 'user') if m in sys.modules]; "
            "sys.exit(3 if bad else rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "user.py")], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
