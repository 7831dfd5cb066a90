"""`check --statistics`: findings counted per rule code, most frequent first (after Ruff's `--statistics`).

Text: `COUNT<TAB>CODE<TAB>[*] name` per line, counts right-aligned, `[*]` marking codes with a fix on offer (the
marker column appears only when some finding has a fix); with `--format json`, a list of {code, name, count}.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from losslint.model import FileResult


@dataclass(frozen=True)
class Stat:
    code: str
    name: str
    count: int
    fixable: bool


def statistics(results: list[FileResult]) -> list[Stat]:
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    fixable: set[str] = set()
    for r in results:
        for d in r.diagnostics:
            counts[d.code] += 1
            names.setdefault(d.code, d.name)
            if d.fix is not None:
                fixable.add(d.code)
    return [Stat(code, names[code], n, code in fixable)
            for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def render_text(results: list[FileResult]) -> str:
    stats = statistics(results)
    if not stats:
        return ""
    count_w = max(len(str(s.count)) for s in stats)
    code_w = max(len(s.code) for s in stats)
    any_fix = any(s.fixable for s in stats)
    lines = []
    for s in stats:
        marker = ("[*] " if s.fixable else "[ ] ") if any_fix else ""
        lines.append(f"{s.count:>{count_w}}\t{s.code:<{code_w}}\t{marker}{s.name}")
    return "\n".join(lines) + "\n"


def render_json(results: list[FileResult]) -> str:
    return json.dumps([{"code": s.code, "name": s.name, "count": s.count} for s in statistics(results)],
                      indent=2) + "\n"
