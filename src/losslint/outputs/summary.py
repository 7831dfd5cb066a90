"""Counts shared by every renderer."""

from __future__ import annotations

from dataclasses import dataclass

from losslint.model import FileResult


@dataclass(frozen=True)
class Summary:
    files: int
    findings: int
    errors: int
    fixable: int
    skipped: int


def summarize(results: list[FileResult]) -> Summary:
    return Summary(
        files=len(results),
        findings=sum(len(r.diagnostics) for r in results),
        errors=sum(1 for r in results if r.error is not None),
        fixable=sum(1 for r in results for d in r.diagnostics if d.fix is not None),
        skipped=sum(1 for r in results if r.skipped),
    )
