"""The framework child processes: one per framework (TensorFlow, PyTorch, JAX) and interpreter, started when the
first job for it comes and reused for every job of the run.

The child is `python runner.py --framework F` (F: tensorflow | torch | jax; it imports only that framework) with an
address-space limit (RLIMIT_AS, 4 GiB by default, LOSSLINT_CONFIRM_MEMORY_MB to change it), the CPU only
(TF_CPP_MIN_LOG_LEVEL=3, JAX_PLATFORMS=cpu, one thread for PyTorch) and a wall-clock deadline enforced here (the child
is killed when it passes; each job also has its own alarm inside the child). The interpreter is LOSSLINT_CONFIRM_PYTHON
if set, else this one. Versions are read from the installed distributions' metadata, without importing a framework.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
DEFAULT_MEMORY_MB = 4096
STATS = {"started": 0, "jobs": 0, "cache_hits": 0}  # counters, for tests and the benchmark

_TF_DISTS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly", "tf-nightly-cpu")
_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json\n"
    "def v(names):\n"
    "    for n in names:\n"
    "        try:\n"
    "            return m.version(n)\n"
    "        except Exception:\n"
    "            pass\n"
    "    return None\n"
    f"tf = v({_TF_DISTS!r}) if u.find_spec('tensorflow') is not None else None\n"
    "k = v(('keras',)) if u.find_spec('keras') is not None else None\n"
    "t = v(('torch',)) if u.find_spec('torch') is not None else None\n"
    "j = v(('jax',)) if u.find_spec('jax') is not None else None\n"
    "jl = v(('jaxlib',)) if u.find_spec('jaxlib') is not None else None\n"
    "print(json.dumps({'tensorflow': tf, 'keras': k, 'torch': t, 'jax': j, 'jaxlib': jl}))\n"
)
# the distributions whose versions identify a framework's results (the cache key and the evidence hold them)
FRAMEWORK_DISTS = {"tensorflow": ("tensorflow", "keras"), "torch": ("torch",), "jax": ("jax", "jaxlib")}
FRAMEWORK_NAMES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}
_FRAMEWORK_ENV = {
    "tensorflow": {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"},
    "torch": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
    "jax": {"JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "0", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
}
_versions: dict[str, dict] = {}


class WorkerError(Exception):
    pass


def python() -> str:
    return os.environ.get("LOSSLINT_CONFIRM_PYTHON") or sys.executable


def versions(py: str | None = None) -> dict:
    """{"tensorflow": version or None, "keras": ..., "torch": ..., "jax": ..., "jaxlib": ...} for the interpreter,
    without importing any framework."""
    py = py or python()
    found = _versions.get(py)
    if found is not None:
        return found
    if os.path.realpath(py) == os.path.realpath(sys.executable):
        printed: list[str] = []
        # the probe's `print` is captured through its own namespace, not by redirecting sys.stdout (other threads)
        exec(_PROBE, {"print": printed.append})  # noqa: S102 - our own constant probe
        found = json.loads(printed[-1])
    else:
        try:
            out = subprocess.run([py, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False)
            found = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() \
                else {"tensorflow": None, "keras": None, "error": (out.stderr or "").strip()[-300:]}
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            found = {"tensorflow": None, "keras": None, "error": f"{type(exc).__name__}: {exc}"}
    _versions[py] = found
    return found


def _limits(memory_mb: int):  # noqa: ANN202
    def apply() -> None:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
        os.setpgrp() if hasattr(os, "setpgrp") else None

    return apply


class Worker:
    def __init__(self, py: str, deadline: float, framework: str = "tensorflow") -> None:
        self.py = py
        self.framework = framework
        memory_mb = int(os.environ.get("LOSSLINT_CONFIRM_MEMORY_MB", DEFAULT_MEMORY_MB))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **_FRAMEWORK_ENV.get(framework, {}))
        self.stderr = tempfile.TemporaryFile()
        STATS["started"] += 1
        self.proc = subprocess.Popen([py, str(RUNNER), "--framework", framework], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env, cwd=tempfile.gettempdir(),
                                     preexec_fn=_limits(memory_mb) if os.name == "posix" else None)
        self._buf = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        hello = self._readline(deadline)
        if not hello.get("ready"):
            self.close()
            raise WorkerError(hello.get("error") or "the harness did not start")
        self.tensorflow = hello.get("tensorflow")
        self.keras = hello.get("keras")
        self.versions = {k: hello.get(k) for k in FRAMEWORK_DISTS.get(framework, ())}  # as the child imported them

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 600))
            return self.stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _readline(self, deadline: float) -> dict:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise WorkerError("timed out")
            if not self.sel.select(timeout=min(left, 1.0)):
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)  # type: ignore[union-attr]
            if not chunk:
                break
            self._buf += chunk
        if b"\n" not in self._buf:
            code = self.proc.poll()
            tail = self.stderr_tail()
            self.close()
            raise WorkerError(f"the harness process ended (exit code {code})" + (f": {tail[-300:]}" if tail else ""))
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line.decode("utf-8", "replace"))
        except ValueError as exc:
            raise WorkerError(f"unreadable harness output: {exc}") from exc

    def run(self, job: dict, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WorkerError("timed out")
        # the child's own alarm fires first, so a slow job is reported and the process kept
        job = dict(job, timeout=max(0.5, min(left - 0.5, float(job.get("timeout", 60.0)))))
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            self.close()
            raise WorkerError(f"the harness process is gone: {exc}") from exc
        STATS["jobs"] += 1
        return self._readline(deadline)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.sel.close()
        except (OSError, ValueError, KeyError):
            pass
        try:
            self.stderr.close()
        except OSError:
            pass


_WORKERS: dict[tuple[str, str], Worker] = {}


def get_worker(deadline: float, framework: str = "tensorflow") -> Worker:
    py = python()
    w = _WORKERS.get((py, framework))
    if w is not None and w.alive():
        return w
    if w is not None:
        w.close()  # a dead process: release its pipes and its stderr file before starting another
    w = Worker(py, deadline, framework)
    _WORKERS[(py, framework)] = w
    return w


def drop_worker(w: Worker) -> None:
    w.close()
    for k, v in list(_WORKERS.items()):
        if v is w:
            del _WORKERS[k]


def shutdown() -> None:
    for w in list(_WORKERS.values()):
        w.close()
    _WORKERS.clear()


atexit.register(shutdown)
