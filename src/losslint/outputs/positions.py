"""Position conversion at the output edge: code points (internal) to UTF-16 units (LSP/JSON) or 1-based text."""

from __future__ import annotations

from losslint.model import Position


def utf16_column(line_text: str, column: int) -> int:
    prefix = line_text[:column]
    return column + sum(1 for ch in prefix if ord(ch) > 0xFFFF)


class LineIndex:
    """The lines of one source, for converting positions."""

    def __init__(self, source: str | None) -> None:
        self.lines = source.splitlines() if source else []

    def line(self, n: int) -> str:
        return self.lines[n] if 0 <= n < len(self.lines) else ""

    def utf16(self, pos: Position) -> dict[str, int]:
        return {"line": pos.line, "character": utf16_column(self.line(pos.line), pos.column)}

    def slice(self, rng) -> str:  # type: ignore[no-untyped-def]
        """The source text a range covers (code-point columns)."""
        if rng.start.line == rng.end.line:
            return self.line(rng.start.line)[rng.start.column:rng.end.column]
        parts = [self.line(rng.start.line)[rng.start.column:]]
        parts += [self.line(n) for n in range(rng.start.line + 1, rng.end.line)]
        parts.append(self.line(rng.end.line)[:rng.end.column])
        return "\n".join(parts)

    @staticmethod
    def one_based(pos: Position) -> tuple[int, int]:
        return pos.line + 1, pos.column + 1


def display_location(result, pos: Position) -> str:  # type: ignore[no-untyped-def]
    """`path:line:col` (1-based), or `path:cell N:line:col` inside a notebook (N counts cells from 1, as Jupyter)."""
    nb = result.extra.get("notebook") if result.extra else None
    if nb is not None:
        cell, line = nb.locate(pos.line)
        return f"{result.path}:cell {cell + 1}:{line + 1}:{pos.column + nb.column_offset(pos.line) + 1}"
    return f"{result.path}:{pos.line + 1}:{pos.column + 1}"
