"""Suppression comments: `# losslint: ignore[LL101]`, `# noqa: LL101`, `# losslint: ignore-file[LL201]`.

A line comment applies to the statement it sits on (any physical line of it) or to the statement right below it;
a file comment applies to the whole file. Without a code list, `# losslint: ignore` / `ignore-file` cover every rule.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

from losslint.model import Diagnostic, Position, Range, Severity

UNUSED_CODE = "LL000"
UNUSED_NAME = "unused-suppression"

_IGNORE_RE = re.compile(r"#\s*losslint:\s*ignore(?P<file>-file)?(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_NOQA_RE = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+\d+(?:[\s,]+[A-Z]+\d+)*)", re.IGNORECASE)
ALL = frozenset({"*"})


@dataclass
class Suppressions:
    file_codes: frozenset[str] = frozenset()
    by_line: dict[int, frozenset[str]] = field(default_factory=dict)  # 1-based line -> codes (or ALL)
    statement_start: dict[int, int] = field(default_factory=dict)  # 1-based line -> first line of its statement
    statement_end: dict[int, int] = field(default_factory=dict)

    used: set[int] = field(default_factory=set)  # lines (0 for the file comment) whose comment suppressed something

    def covers(self, d: Diagnostic) -> bool:
        if _match(self.file_codes, d.code):
            self.used.add(0)
            return True
        first = d.range.start.line + 1
        start = self.statement_start.get(first, first)
        end = self.statement_end.get(first, first)
        for line in range(start - 1, max(end, d.range.end.line + 1) + 1):
            if _match(self.by_line.get(line, frozenset()), d.code):
                self.used.add(line)
                return True
        return False

    def unused(self) -> list[tuple[int, frozenset[str]]]:
        """(1-based line, codes) of suppression comments that suppressed nothing (line 0: the file comment)."""
        out = [(line, codes) for line, codes in sorted(self.by_line.items()) if line not in self.used]
        if self.file_codes and 0 not in self.used:
            out.insert(0, (0, self.file_codes))
        return out


def _match(codes: frozenset[str], code: str) -> bool:
    return "*" in codes or any(code.upper().startswith(c) for c in codes)


def _codes(text: str | None) -> frozenset[str]:
    if text is None:
        return ALL
    codes = frozenset(c.strip().upper() for c in re.split(r"[\s,]+", text) if c.strip())
    return codes or ALL


def parse(source: str) -> Suppressions:
    """Read suppression comments and statement extents with one tokenize pass."""
    s = Suppressions()
    if "losslint" not in source and "noqa" not in source:
        return s
    file_codes: set[str] = set()
    logical_start: int | None = None
    lines_in_stmt: list[int] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                m = _IGNORE_RE.search(tok.string)
                if m is not None:
                    codes = _codes(m.group("codes"))
                    if m.group("file"):
                        file_codes |= codes
                    else:
                        s.by_line[tok.start[0]] = s.by_line.get(tok.start[0], frozenset()) | codes
                m = _NOQA_RE.search(tok.string)
                if m is not None:
                    ll = frozenset(c for c in _codes(m.group("codes")) if c.startswith("LL"))
                    if ll:
                        s.by_line[tok.start[0]] = s.by_line.get(tok.start[0], frozenset()) | ll
                continue
            if tok.type in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if logical_start is None:
                logical_start = tok.start[0]
            lines_in_stmt.extend(range(tok.start[0], tok.end[0] + 1))
            if tok.type == tokenize.NEWLINE:
                for line in set(lines_in_stmt):
                    s.statement_start[line] = logical_start
                    s.statement_end[line] = tok.end[0]
                logical_start, lines_in_stmt = None, []
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass  # libcst accepted the file; a tokenize quirk only loses statement extents
    s.file_codes = frozenset(file_codes)
    return s


def apply(source: str, diagnostics: tuple[Diagnostic, ...], warn_unused: bool = False
          ) -> tuple[tuple[Diagnostic, ...], int]:
    """The diagnostics left after suppressions, and how many were suppressed. With `warn_unused`, a comment that
    suppressed nothing becomes a finding itself (`LL000 unused-suppression`), as Ruff's RUF100 does."""
    if not diagnostics and not warn_unused:
        return diagnostics, 0
    s = parse(source)
    kept = tuple(d for d in diagnostics if not s.covers(d))
    hidden = len(diagnostics) - len(kept)
    if warn_unused:
        lines = source.splitlines()
        extra = []
        for line, codes in s.unused():
            text = lines[line - 1] if 0 < line <= len(lines) else ""
            col = text.find("#") if "#" in text else 0
            shown = "all rules" if "*" in codes else ", ".join(sorted(codes))
            where = Range(Position(max(line - 1, 0), max(col, 0)), Position(max(line - 1, 0), len(text)))
            extra.append(Diagnostic(UNUSED_CODE, UNUSED_NAME, f"unused suppression ({shown}): nothing here is "
                                    "reported, so the comment can go", where, Severity.WARNING))
        kept = tuple(sorted(kept + tuple(extra), key=lambda d: (d.range.start, d.code)))
    return kept, hidden
