"""Plain data shared by every layer. Imports nothing from losslint.

Positions here are 0-based lines and 0-based columns counted in code points of the decoded source; outputs convert
them (to UTF-16 units, or to 1-based text positions) at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Severity(IntEnum):
    """LSP DiagnosticSeverity values, so JSON and the language server use them as they are."""

    ERROR = 1
    WARNING = 2
    INFORMATION = 3
    HINT = 4

    @property
    def label(self) -> str:
        return {1: "error", 2: "warning", 3: "info", 4: "hint"}[int(self)]


@dataclass(frozen=True, order=True)
class Position:
    line: int
    column: int


@dataclass(frozen=True, order=True)
class Range:
    start: Position
    end: Position


@dataclass(frozen=True)
class Edit:
    range: Range
    new_text: str


@dataclass(frozen=True)
class Fix:
    title: str
    applicability: str  # "safe" | "unsafe" | "display-only"
    edits: tuple[Edit, ...] = ()
    confirmed: bool | None = None
    evidence: str | dict | None = None  # the confirmation figures (JSON-serialisable), or why there are none
    # What confirmation must show: "same" (equal values and gradients), "per-sample" (the original is the sum of
    # the fixed per-sample values), "changed" (a deliberate change of value: the fixed loss must run and stay finite).
    expect: str = "same"
    batch: int | None = None  # the batch size confirmation must use (where the original is right), else its default


@dataclass(frozen=True)
class Diagnostic:
    code: str
    name: str
    message: str
    range: Range
    severity: Severity
    scope: str | None = None
    fix: Fix | None = None


@dataclass(frozen=True)
class FileError:
    kind: str  # "syntax-error" | "decode-error" | "too-large" | "unreadable" | "internal"
    message: str


@dataclass(frozen=True)
class FileResult:
    path: str
    source: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    error: FileError | None = None
    skipped: bool = False  # pre-filter: imports no deep-learning framework
    extra: dict = field(default_factory=dict, compare=False)
