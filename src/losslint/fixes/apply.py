"""Applying fixes: non-overlapping text edits, in passes until nothing changes, re-parsed after each pass.

A pass whose result does not parse is reverted and reported; a fix is never applied twice (idempotence comes from
re-linting after each pass: a fixed line no longer produces the finding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst

from losslint.model import Diagnostic, Edit, FileResult, Fix

MAX_PASSES = 10


def _offsets(source: str) -> list[int]:
    """Offset of the start of each line (lines split on \\n; \\r\\n keeps its \\r at the end of the line)."""
    starts = [0]
    for i, ch in enumerate(source):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def apply_edits(source: str, edits: list[Edit]) -> tuple[str, list[Edit]]:
    """Apply the edits that do not overlap an earlier one; return the new text and the edits left for a later pass."""
    starts = _offsets(source)

    def off(line: int, col: int) -> int:
        return starts[line] + col if line < len(starts) else len(source)

    spans = sorted(((off(e.range.start.line, e.range.start.column), off(e.range.end.line, e.range.end.column), e)
                    for e in edits), key=lambda t: (t[0], t[1]))
    chosen: list[tuple[int, int, Edit]] = []
    left: list[Edit] = []
    last_end = -1
    for start, end, e in spans:
        if start < last_end or (start == last_end and chosen and chosen[-1][0] == start):
            left.append(e)
            continue
        chosen.append((start, end, e))
        last_end = end
    out = source
    for start, end, e in reversed(chosen):
        out = out[:start] + e.new_text + out[end:]
    return out, left


def eligible(fix: Fix | None, unsafe: bool) -> bool:
    """Confirmed safe fixes always; with --unsafe-fixes also unsafe and unconfirmed ones; never rejected ones."""
    if fix is None or fix.applicability == "display-only" or fix.confirmed is False:
        return False
    if unsafe:
        return True
    return fix.applicability == "safe" and fix.confirmed is True


@dataclass
class FixOutcome:
    path: str
    original: str
    fixed: str
    applied: list[Diagnostic] = field(default_factory=list)
    remaining: tuple[Diagnostic, ...] = ()
    passes: int = 0
    error: str | None = None  # a pass that broke parsing (reverted)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


def fix_text(source: str, path: str, lint: Callable[[str, str], FileResult], unsafe: bool = False) -> FixOutcome:
    """Lint, apply eligible fixes, re-lint, until nothing changes (at most MAX_PASSES passes).

    `lint(source, path)` must return diagnostics whose fixes already carry their confirmation verdict.
    """
    outcome = FixOutcome(path, source, source)
    current = source
    result = lint(current, path)
    for n in range(1, MAX_PASSES + 1):
        todo = [d for d in result.diagnostics if eligible(d.fix, unsafe)]
        if not todo:
            break
        edits = [e for d in todo for e in d.fix.edits]  # type: ignore[union-attr]
        new, _left = apply_edits(current, edits)
        if new == current:
            break
        try:
            cst.parse_module(new)
        except cst.ParserSyntaxError as err:
            outcome.error = f"pass {n} produced code that does not parse ({err.message}); it was reverted"
            break
        applied_ranges = {(e.range, e.new_text) for e in edits} - {(e.range, e.new_text) for e in _left}
        outcome.applied.extend(d for d in todo if all((e.range, e.new_text) in applied_ranges
                                                      for e in d.fix.edits))  # type: ignore[union-attr]
        current = new
        outcome.passes = n
        result = lint(current, path)
    outcome.fixed = current
    outcome.remaining = result.diagnostics
    return outcome
