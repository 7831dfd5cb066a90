"""`--format concise`: one line per finding, `path:line:col: CODE message` (1-based)."""

from __future__ import annotations

from losslint.model import FileResult
from losslint.outputs.positions import display_location


def render(results: list[FileResult]) -> str:
    out: list[str] = []
    for r in results:
        if r.error is not None:
            out.append(f"{r.path}:1:1: error[{r.error.kind}] {r.error.message}")
        for d in r.diagnostics:
            out.append(f"{display_location(r, d.range.start)}: {d.code} {d.message}")
    return "\n".join(out) + ("\n" if out else "")
