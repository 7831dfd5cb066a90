"""Jupyter notebooks: the code cells are checked as one module (IPython magics and shell lines blanked out, so line
numbers still match), and findings are mapped back to the cell and the line inside it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from losslint.model import FileError

_MAGIC_PREFIXES = ("%", "!", "?")


@dataclass(frozen=True)
class Cell:
    index: int  # position among all cells of the notebook (0-based), as Jupyter counts them
    first_line: int  # 0-based line of the module where this cell starts
    n_lines: int


@dataclass(frozen=True)
class NotebookSource:
    source: str
    cells: tuple[Cell, ...]

    def locate(self, line: int) -> tuple[int, int]:
        """(cell index, 0-based line inside the cell) for a 0-based module line."""
        for c in self.cells:
            if c.first_line <= line < c.first_line + c.n_lines:
                return c.index, line - c.first_line
        last = self.cells[-1] if self.cells else Cell(0, 0, 0)
        return last.index, max(0, line - last.first_line)


def _cell_lines(source: object) -> list[str]:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    lines = text.split("\n")
    out = []
    for line in lines:
        stripped = line.lstrip()
        # A magic or shell escape is not Python: it becomes `pass` at its own indentation, which keeps the line
        # numbers and keeps a block whose only statement was a magic (`for f in files:\n    !rm $f`) valid.
        if stripped.startswith(_MAGIC_PREFIXES) or stripped.endswith("?") and stripped[:-1].isidentifier():
            out.append(line[: len(line) - len(stripped)] + "pass")
        else:
            out.append(line)
    if out and out[0].lstrip().startswith("%%"):
        out = [""] * len(out)  # a cell magic (%%bash, %%time...) makes the whole cell something else
    return out


def parse_notebook(data: bytes) -> tuple[NotebookSource | None, FileError | None]:
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, FileError("decode-error", f"not a valid notebook: {err}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, FileError("decode-error", "not a valid notebook: no list of cells")
    language = (nb.get("metadata", {}) or {}).get("language_info", {}) or {}
    if isinstance(language, dict) and language.get("name") not in (None, "python"):
        return NotebookSource("", ()), None
    lines: list[str] = []
    cells: list[Cell] = []
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        cl = _cell_lines(cell.get("source", ""))
        cells.append(Cell(i, len(lines), len(cl)))
        lines.extend(cl)
    return NotebookSource("\n".join(lines) + "\n", tuple(cells)), None
