"""Confirmation speed: how many fixes TensorFlow confirms, and the seconds per confirmed fix after TensorFlow's import.

The fixes are the rules' own INVALID examples that offer one (TensorFlow/Keras ones), repeated under renamed
functions until there are --fixes of them, so that no two share a cache entry; the cache is a fresh temporary folder.
TensorFlow's start-up (the child process importing it) is timed apart from the confirmations.
Target: under 1 s per fix after the import; 20 fixes in under 20 s on 2 cores.

    python bench/confirm_speed.py [--fixes 20]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

from losslint.engine import lint_module_source
from losslint.fixes.confirm import STATS, confirm_files
from losslint.fixes.confirm import worker
from losslint.rules import all_rules


def examples() -> list[str]:
    out = []
    for rule in all_rules():
        for ex in rule.INVALID:
            if ex.fixed is not None and "import torch" not in ex.text and "import jax" not in ex.text:
                out.append(ex.text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixes", type=int, default=20)
    args = ap.parse_args()
    base = examples()
    items = []
    n = 0
    while n < args.fixes:
        text = base[n % len(base)]
        rnd = n // len(base)
        if rnd:  # rename every def so the harness (and its cache key) differs
            text = re.sub(r"\b(def|class) (\w+)", lambda m: f"{m.group(1)} {m.group(2)}_v{rnd}", text)
        res = lint_module_source(text, f"bench_{n}.py")
        fixes = [d for d in res.diagnostics if d.fix is not None]
        if not fixes:
            n += 1
            continue
        items.append((res.path, text, res.diagnostics))
        n += len(fixes)
    total_fixes = sum(1 for _, _, ds in items for d in ds if d.fix is not None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        worker.get_worker(time.monotonic() + 300)
        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        out = confirm_files(items, cache_dir=cache, timeout=600)
        t_confirm = time.perf_counter() - t1
        t2 = time.perf_counter()
        confirm_files(items, cache_dir=cache, timeout=600)
        t_cached = time.perf_counter() - t2
    verdicts = [d.fix.confirmed for ds in out for d in ds if d.fix is not None]
    confirmed = sum(v is True for v in verdicts)
    print(f"cores: {cores}; TensorFlow {worker.versions().get('tensorflow')}")
    print(f"fixes: {total_fixes}; confirmed: {confirmed}; rejected: {sum(v is False for v in verdicts)}; "
          f"unconfirmed: {sum(v is None for v in verdicts)}")
    print(f"TensorFlow start-up (child import): {t_import:.2f} s")
    print(f"confirmation after the import: {t_confirm:.2f} s, {t_confirm / max(1, confirmed):.3f} s per confirmed fix "
          f"({t_confirm / max(1, total_fixes):.3f} s per fix)")
    print(f"total with the import: {t_import + t_confirm:.2f} s")
    print(f"second run (all cached): {t_cached:.3f} s; jobs sent to TensorFlow: {STATS['jobs']}, "
          f"cache hits: {STATS['cache_hits']}")


if __name__ == "__main__":
    main()
