"""Engine speed, side by side with the reference points of the engine issue.

Prints, for every .py file under the given folders: lines, then seconds for `ast.parse`, `libcst.parse_module`, and
losslint's whole per-file pipeline (pre-filter off, so every file is parsed, indexed and checked by every rule).
Optionally (--metadata) also libcst parse + QualifiedNameProvider + PositionProvider, the cost Fixit pays.

    python bench/engine_speed.py PATH [PATH ...] [--metadata]
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import libcst as cst

from losslint.engine import lint_module_source
from losslint.files import read_source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--metadata", action="store_true", help="also time whole-file libcst metadata (slow)")
    args = ap.parse_args()
    sources = []
    for p in args.paths:
        for f in sorted(Path(p).rglob("*.py")):
            text, err = read_source(str(f))
            if text is not None:
                sources.append((str(f), text))
    lines = sum(t.count("\n") + 1 for _, t in sources)

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        ok = 0
        for path, text in sources:
            try:
                fn(path, text)
                ok += 1
            except Exception:  # noqa: BLE001 - a file the parser rejects is just not timed
                pass
        return time.perf_counter() - t0

    rows = [("ast.parse", timed(lambda p, t: ast.parse(t))),
            ("libcst.parse_module", timed(lambda p, t: cst.parse_module(t))),
            ("losslint (parse + index + rules)", timed(lambda p, t: lint_module_source(t, p, prefilter=False)))]
    if args.metadata:
        from libcst.metadata import FullRepoManager  # noqa: F401 - imported for parity with Fixit
        from libcst.metadata import MetadataWrapper, PositionProvider, QualifiedNameProvider

        def meta(p: str, t: str) -> None:
            w = MetadataWrapper(cst.parse_module(t))
            w.resolve(QualifiedNameProvider)
            w.resolve(PositionProvider)

        rows.append(("libcst parse + QualifiedName + Position", timed(meta)))
    print(f"{len(sources)} files, {lines} lines")
    for name, secs in rows:
        print(f"{name:<42} {secs:8.2f} s   {lines / secs / 1000:8.1f} k lines/s")


if __name__ == "__main__":
    main()
