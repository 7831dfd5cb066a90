"""Confirmation speed: how many fixes are confirmed, and the seconds per confirmed fix after the framework's import.

Two workloads, each with a fresh temporary cache:
- `examples/`: the bundled example files, as `losslint fix --diff examples/` sees them (every framework);
- the rules' own INVALID examples that offer a fix, per framework (TensorFlow/Keras, PyTorch, JAX), repeated under
  renamed functions until there are --fixes of them, so that no two share a cache entry.
Each framework's start-up (its child process importing it) is timed apart from the confirmations.
Target (issue 6): under 1 s per fix after TensorFlow's import; 20 fixes in under 20 s on 2 cores.

    python bench/confirm_speed.py [--fixes 20] [--frameworks tensorflow,torch,jax]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from losslint.api import lint_paths
from losslint.engine import lint_module_source
from losslint.fixes.confirm import STATS, confirm_files
from losslint.fixes.confirm import worker
from losslint.rules import all_rules

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {"tensorflow": None, "torch": "import torch", "jax": "import jax"}
NAMES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}


def framework_of(text: str) -> str:
    for fw, marker in MARKERS.items():
        if marker and marker in text:
            return fw
    return "tensorflow"


def rule_examples(framework: str) -> list[str]:
    return [ex.text for rule in all_rules() for ex in rule.INVALID
            if ex.fixed is not None and framework_of(ex.text) == framework]


def workload(framework: str, wanted: int) -> list[tuple[str, str, tuple]]:
    base = rule_examples(framework)
    items, n, k = [], 0, 0
    while base and n < wanted and k < 50 * wanted:
        text = base[k % len(base)]
        rnd = k // len(base)
        if rnd:  # rename every def so the harness (and its cache key) differs
            text = re.sub(r"\b(def|class) (\w+)", lambda m: f"{m.group(1)} {m.group(2)}_v{rnd}", text)
        res = lint_module_source(text, f"bench_{framework}_{k}.py")
        k += 1
        fixes = [d for d in res.diagnostics if d.fix is not None]
        if fixes:
            items.append((res.path, text, res.diagnostics))
            n += len(fixes)
    return items


def verdicts(out: list[tuple]) -> list[bool | None]:
    return [d.fix.confirmed for ds in out for d in ds if d.fix is not None]


def summary(vs: list[bool | None]) -> str:
    return (f"fixes {len(vs)}, confirmed {sum(v is True for v in vs)}, rejected {sum(v is False for v in vs)}, "
            f"unconfirmed {sum(v is None for v in vs)}")


def run_framework(framework: str, wanted: int) -> None:
    items = workload(framework, wanted)
    name = NAMES[framework]
    version = worker.versions().get(framework)
    if not items or not version:
        print(f"{name}: {'not installed' if not version else 'no example fixes'}")
        return
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        worker.get_worker(time.monotonic() + 300, framework)
        t_import = time.perf_counter() - t0
        jobs = STATS["jobs"]
        t1 = time.perf_counter()
        out = confirm_files(items, cache_dir=cache, timeout=600)
        t_confirm = time.perf_counter() - t1
        sent = STATS["jobs"] - jobs
        t2 = time.perf_counter()
        confirm_files(items, cache_dir=cache, timeout=600)
        t_cached = time.perf_counter() - t2
    vs = verdicts(out)
    confirmed = sum(v is True for v in vs)
    print(f"{name} {version}: {summary(vs)}")
    print(f"  start-up (child import) {t_import:.2f} s; confirmation after it {t_confirm:.2f} s = "
          f"{t_confirm / max(1, confirmed):.3f} s per confirmed fix ({sent} jobs run); with the import "
          f"{t_import + t_confirm:.2f} s; second run, all cached: {t_cached:.3f} s")


def run_examples() -> None:
    paths = [str(p) for p in sorted((ROOT / "examples").glob("*.py"))]
    results = lint_paths(paths)
    items = [(r.path, r.source, r.diagnostics) for r in results if r.source is not None and r.diagnostics]
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        out = confirm_files(items, cache_dir=cache, timeout=600)
        elapsed = time.perf_counter() - t0
    vs = verdicts(out)
    confirmed = sum(v is True for v in vs)
    print(f"examples/ ({len(paths)} files): {summary(vs)}; {elapsed:.2f} s in all (framework processes already "
          f"started), {elapsed / max(1, confirmed):.3f} s per confirmed fix")
    for (path, _, _), ds in zip(items, out):
        for d in ds:
            if d.fix is not None and d.fix.confirmed is not True:
                reason = (d.fix.evidence or {}).get("reason", "") if isinstance(d.fix.evidence, dict) else ""
                print(f"  {Path(path).name}:{d.range.start.line + 1} {d.code} {d.fix.applicability} "
                      f"{d.fix.confirmed}: {reason[:110]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixes", type=int, default=20)
    ap.add_argument("--frameworks", default="tensorflow,torch,jax")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {cores}; Keras {worker.versions().get('keras')}")
    for fw in args.frameworks.split(","):
        run_framework(fw.strip(), args.fixes)
    run_examples()


if __name__ == "__main__":
    main()
