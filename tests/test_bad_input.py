"""Bad input never stops a run: each bad file gets its own `error`, every other file is still analysed.

One directory holds a syntax error, undeclared latin-1, a valid latin-1 coding cookie, a binary `x.py`, an empty
file, a 50 MB file, 1,000-deep brackets, 1,000-deep blocks, an unreadable subdirectory, a broken symlink and one
ordinary buggy loss. The real CLI (`python -m losslint check DIR --format json`) runs on it, serially and with
worker processes.

Permissions: as root (CAP_DAC_OVERRIDE), `chmod 000` does not stop reading. Then the run is started under
`setpriv` with the DAC capabilities dropped, which makes the permission effective again; if that is impossible,
only the unreadable-directory test is skipped (and says so).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds, for the whole run (it takes a few)

BUGGY = ("import tensorflow as tf\n\n\ndef crossentropy(y_true, y_pred):\n"
         "    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)\n")
COOKIE = (
    "# -*- coding: latin-1 -*-\n"
    "\"\"\"Pertes personnalisées : écart à la cible, en µm.\"\"\"\n"
    "import tensorflow as tf\n"
    "\n"
    "poids_été = 2.0\n"
    "\n"
    "\n"
    "def perte_entropie(y_true, y_pred):\n"
    "    return -poids_été * tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)  # « à corriger »\n"
)
COOKIE_LOG_LINE = 9

# expected error kind, and words its message must contain (lower case)
BAD = {
    "syntax_error.py": ("syntax-error", ["syntax error", "line"]),
    "latin1_no_cookie.py": ("decode-error", ["utf-8", "line 2", "coding"]),
    "x.py": ("decode-error", ["binary", "nul"]),
    "huge.py": ("too-large", ["mb", "limit"]),
    "deep_brackets.py": ("too-large", ["nest", "line 5", "brackets"]),
    "deep_blocks.py": ("too-large", ["nest", "indentation"]),
    "broken_link.py": ("unreadable", ["broken", "link"]),
    "pipe.py": ("unreadable", ["not a regular file"]),  # a FIFO: reading it would block the run forever
    "locked": ("unreadable", ["permission denied"]),
}


def _build(d: Path) -> None:
    (d / "syntax_error.py").write_text("import tensorflow as tf\n\ndef loss(y_true, y_pred:\n    return y_pred\n")
    (d / "latin1_no_cookie.py").write_bytes(
        "import tensorflow as tf\n# écart relatif, déjà normalisé\n\ndef loss(y_true, y_pred):\n    return y_pred\n"
        .encode("latin-1"))
    (d / "latin1_cookie.py").write_bytes(COOKIE.encode("latin-1"))
    (d / "x.py").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64 + b"import tensorflow\n")
    (d / "empty.py").write_bytes(b"")
    with open(d / "huge.py", "w", encoding="utf-8") as f:
        f.write("import tensorflow as tf\n\nTABLE = [\n")
        row = "    [" + ", ".join(["0.125"] * 16) + "],\n"
        f.write(row * (50 * 1024 * 1024 // len(row) + 1))
        f.write("]\n")
    opens = "([" * 500
    closes = "])" * 500
    (d / "deep_brackets.py").write_text(
        "import tensorflow as tf\n\n\ndef loss(y_true, y_pred):\n"
        f"    return tf.reduce_mean(tf.square({opens}y_true - y_pred{closes}))\n")
    blocks = ["import tensorflow as tf\n", "\n", "def loss(y_true, y_pred):\n"]
    for level in range(1, 1001):
        head = "if y_true is not None:" if level % 2 else "for _ in range(1):"
        blocks.append("    " * level + head + "\n")
    blocks.append("    " * 1001 + "return tf.reduce_mean(tf.square(y_true - y_pred))\n")
    (d / "deep_blocks.py").write_text("".join(blocks))
    locked = d / "locked"
    locked.mkdir()
    (locked / "hidden_loss.py").write_text(BUGGY)
    locked.chmod(0)
    (d / "broken_link.py").symlink_to(d / "no_such_target.py")
    os.mkfifo(d / "pipe.py")
    (d / "buggy.py").write_text(BUGGY)


def _permission_is_effective(path: Path, prefix: list[str]) -> bool:
    probe = (f"import os\ntry:\n    os.listdir({str(path)!r})\n"
             "except PermissionError:\n    raise SystemExit(0)\nraise SystemExit(1)")
    try:
        return subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _runner_prefix(locked: Path) -> tuple[list[str], bool]:
    """The command prefix under which `chmod 000` is effective, and whether it is."""
    if _permission_is_effective(locked, []):
        return [], True
    setpriv = shutil.which("setpriv")
    if setpriv:
        prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search"]
        if _permission_is_effective(locked, prefix):
            return prefix, True
    return [], False


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    _build(d)
    yield d
    (d / "locked").chmod(stat.S_IRWXU)  # let pytest clean up


@pytest.fixture(scope="module", params=["1", "2"], ids=["serial", "workers"])
def run(request, bad_dir):
    prefix, effective = _runner_prefix(bad_dir / "locked")
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    started = time.monotonic()
    proc = subprocess.run([*prefix, sys.executable, "-m", "losslint", "check", str(bad_dir), "--format", "json",
                           "--jobs", request.param, "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    files = {Path(f["path"]).name: f for f in report["files"]} if report else {}
    return {"proc": proc, "report": report, "files": files, "elapsed": elapsed, "permission_effective": effective}


def test_run_completes_without_traceback(run):
    proc = run["proc"]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert run["report"] is not None, f"no JSON on stdout; stderr: {proc.stderr[-2000:]}"
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert run["elapsed"] < TIMEOUT


@pytest.mark.parametrize("name", [n for n in BAD if n != "locked"])
def test_bad_file_has_its_error(run, name):
    kind, words = BAD[name]
    entry = run["files"].get(name)
    assert entry is not None, f"{name} missing from the report: {sorted(run['files'])}"
    assert entry["error"] is not None, f"{name}: expected a {kind} error, got none"
    assert entry["error"]["kind"] == kind, (name, entry["error"])
    message = entry["error"]["message"]
    assert message and message.strip() == message and "Traceback" not in message
    for w in words:
        assert w in message.lower(), f"{name}: message {message!r} should mention {w!r}"
    assert entry["diagnostics"] == []


def test_unreadable_directory_has_its_error(run):
    if not run["permission_effective"]:
        pytest.skip("running as root with CAP_DAC_OVERRIDE and no way to drop it: chmod 000 does not stop reading")
    kind, words = BAD["locked"]
    entry = run["files"].get("locked")
    assert entry is not None, sorted(run["files"])
    assert entry["error"]["kind"] == kind, entry["error"]
    for w in words:
        assert w in entry["error"]["message"].lower()
    assert "hidden_loss.py" not in run["files"]


def test_buggy_file_still_reported(run):
    entry = run["files"]["buggy.py"]
    assert entry["error"] is None
    assert [(d["code"], d["range"]["start"]["line"] + 1) for d in entry["diagnostics"]] == [("LL101", 5)]


def test_empty_file_is_fine(run):
    entry = run["files"]["empty.py"]
    assert entry["error"] is None and entry["diagnostics"] == []


def test_coding_cookie_file_is_linted_normally(run):
    entry = run["files"]["latin1_cookie.py"]
    assert entry["error"] is None
    assert [(d["code"], d["range"]["start"]["line"] + 1) for d in entry["diagnostics"]] == [("LL101", COOKIE_LOG_LINE)]
    line = COOKIE.splitlines()[COOKIE_LOG_LINE - 1]
    # `poids_été` precedes the log on the line: the column counts decoded characters (UTF-16 units), not bytes
    assert entry["diagnostics"][0]["range"]["start"]["character"] == line.index("tf.math.log")


def test_summary_counts_every_error(run):
    report = run["report"]
    errors = [f for f in report["files"] if f["error"] is not None]
    assert report["summary"]["errors"] == len(errors)
    expected = len(BAD) - (0 if run["permission_effective"] else 1)
    assert len(errors) == expected, [(f["path"], f["error"]) for f in errors]
    # buggy.py and the cookie file; the locked directory's loss too when root could read it anyway
    assert report["summary"]["findings"] == (2 if run["permission_effective"] else 3)


# ---- the nesting pre-check, and crashes that must not take the run down -----------------------------------------

_LOSS = "import tensorflow as tf\n\n\ndef loss(y_true, y_pred):\n    return {}\n"


@pytest.mark.parametrize(("source", "too_deep"), [
    (_LOSS.format("tf.math.log(" + "(" * 3000 + "y_pred" + ")" * 3000 + ")"), True),  # segfaulted libcst
    (_LOSS.format(" + ".join(["y_pred"] * 1500)), True),  # quadratic in libcst: minutes at 10,000
    (_LOSS.format("lambda: " * 1200 + "y_pred"), True),
    (_LOSS.format("y_pred" + "[0]" * 1200), True),
    ("import tensorflow as tf\nif a:\n    pass\n" + "elif a:\n    pass\n" * 1100, True),
    (_LOSS.format("tf.math.log(" + "(" * 150 + "y_pred" + ")" * 150 + ")"), False),
    (_LOSS.format(" + ".join(["y_pred"] * 500)), False),
    (_LOSS.format(repr("(" * 5000)) + "# " + "[" * 5000 + "\n", False),  # brackets in strings and comments
    (_LOSS.format("[" + ", ".join(["y_pred + 1.0"] * 20000) + "]"), False),  # long but flat
    ('import tensorflow as tf\nX = """\n' + "    (\n" * 3000 + '"""\n', False),
])
def test_nesting_precheck(source, too_deep):
    from losslint.files import nesting_error

    err = nesting_error(source)
    assert (err is not None) == too_deep, err
    if err is not None:
        assert err.kind == "too-large" and "line" in err.message


def test_parser_crashers_become_errors_through_the_cli(tmp_path):
    (tmp_path / "parens.py").write_text(_LOSS.format("(" * 5000 + "y_pred" + ")" * 5000))
    (tmp_path / "chain.py").write_text(_LOSS.format(" + ".join(["y_pred"] * 20000)))
    (tmp_path / "elifs.py").write_text("import tensorflow as tf\nif a:\n    pass\n" + "elif a:\n    pass\n" * 20000)
    proc = subprocess.run([sys.executable, "-m", "losslint", "check", str(tmp_path), "--format", "json", "--jobs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    report = json.loads(proc.stdout)
    assert {Path(f["path"]).name: f["error"]["kind"] for f in report["files"]} == {
        "parens.py": "too-large", "chain.py": "too-large", "elifs.py": "too-large"}


def test_a_crashed_worker_is_reported_not_dropped(tmp_path, monkeypatch):
    import multiprocessing

    import losslint.api as api

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("needs forked workers to inherit the simulated crash")
    for i in range(12):
        (tmp_path / f"f{i:02}.py").write_text(BUGGY)
    real = api._lint_one

    def crashing(args):
        if args[0].endswith("f05.py"):
            os._exit(3)  # what a segfault in native code looks like to the pool
        return real(args)

    crashing.__module__, crashing.__qualname__ = api.__name__, "_lint_one"
    monkeypatch.setattr(api, "_lint_one", crashing)
    results = api.lint_paths([str(tmp_path)], jobs=2)
    assert len(results) == 12, "no file may vanish from the report"
    crashed = [r for r in results if r.error is not None]
    assert any(r.path.endswith("f05.py") for r in crashed)
    assert all(r.error.kind == "internal" and "crashed" in r.error.message for r in crashed)
    assert all(r.diagnostics for r in results if r.error is None)
