from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli():
    """Run the real `losslint` console entry point in a subprocess; returns CompletedProcess."""

    def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
        return subprocess.run([sys.executable, "-m", "losslint", *args], cwd=cwd or ROOT, input=stdin,
                              capture_output=True, text=True, env=env, timeout=300)

    return run
