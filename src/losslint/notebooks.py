"""Jupyter notebooks: the code cells are checked as one module (IPython magics and shell lines blanked out, so line
numbers still match), and findings are mapped back to the cell and the line inside it.

A cell whose first line is indented is dedented as IPython does (its `leading_indent` transformer); the removed
prefix is remembered per line, so columns reported in a cell (`column_offset`) and lines written back by `fix`
carry it again."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from losslint.model import FileError

_MAGIC_PREFIXES = ("%", "!", "?")


@dataclass(frozen=True)
class Cell:
    index: int  # position among all cells of the notebook (0-based), as Jupyter counts them
    first_line: int  # 0-based line of the module where this cell starts
    n_lines: int
    prefix: str = ""  # the leading indentation IPython removes from this cell's lines


@dataclass(frozen=True)
class NotebookSource:
    source: str
    cells: tuple[Cell, ...]
    dedented: frozenset[int] = frozenset()  # module lines that lost their cell's prefix

    def column_offset(self, line: int) -> int:
        """How many characters the cell line behind module line `line` has before what the module shows."""
        if line not in self.dedented:
            return 0
        for c in self.cells:
            if c.first_line <= line < c.first_line + c.n_lines:
                return len(c.prefix)
        return 0

    def cell_prefix(self, line: int) -> str:
        return next((c.prefix for c in self.cells if c.first_line <= line < c.first_line + c.n_lines), "") \
            if line in self.dedented else ""

    def locate(self, line: int) -> tuple[int, int]:
        """(cell index, 0-based line inside the cell) for a 0-based module line."""
        for c in self.cells:
            if c.first_line <= line < c.first_line + c.n_lines:
                return c.index, line - c.first_line
        last = self.cells[-1] if self.cells else Cell(0, 0, 0)
        return last.index, max(0, line - last.first_line)


_HELP = re.compile(r"[A-Za-z_][\w.]*\?\??")  # `tf.keras.Input?`, `model.fit??`: IPython help
_ASSIGNED_MAGIC = re.compile(r"((?:[A-Za-z_][\w.]*\s*,\s*)*[A-Za-z_][\w.]*\s*,?\s*=\s*)[!%]")


def _cell_lines(source: object) -> list[str]:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    lines = text.split("\n")
    first = next((ln.lstrip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        return [""] * len(lines)  # a cell magic (%%bash, %%time...) makes the whole cell something else
    out = []
    continued = False  # the previous magic line ended with a backslash: this line belongs to it
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if continued:
            out.append("")
            continued = stripped.endswith("\\")
            continue
        # A magic or shell escape is not Python: it becomes `pass` at its own indentation, which keeps the line
        # numbers and keeps a block whose only statement was a magic (`for f in files:\n    !rm $f`) valid.
        if stripped.startswith(_MAGIC_PREFIXES) or _HELP.fullmatch(stripped.rstrip()):
            out.append(indent + "pass")
            continued = stripped.endswith("\\")
        elif (m := _ASSIGNED_MAGIC.match(stripped)) is not None:
            out.append(indent + m.group(1) + "None")  # `files = !ls`: the name stays bound
            continued = stripped.endswith("\\")
        else:
            out.append(line)
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
    dedented: set[int] = set()
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        cl = _cell_lines(cell.get("source", ""))
        first = next((ln for ln in cl if ln.strip()), "")
        prefix = first[: len(first) - len(first.lstrip())]
        if prefix:  # IPython's leading_indent: the first line's indentation goes from every line that has it
            for k, ln in enumerate(cl):
                if ln.startswith(prefix):
                    cl[k] = ln[len(prefix):]
                    dedented.add(len(lines) + k)
        cells.append(Cell(i, len(lines), len(cl), prefix))
        lines.extend(cl)
    return NotebookSource("\n".join(lines) + "\n", tuple(cells), frozenset(dedented)), None


def write_back(data: bytes, nb: NotebookSource, old_module: str, new_module: str) -> tuple[str | None, str | None]:
    """The notebook JSON with the fixed lines put back into their cells, or (None, why not).

    Fixes replace text inside lines, so the module keeps its line count and every changed line maps to one cell line;
    magics (blanked to `pass`) are never edited and stay as they were. Untouched cells, outputs and metadata are
    written back unchanged, with the file's own JSON indentation."""
    old_lines, new_lines = old_module.split("\n"), new_module.split("\n")
    if len(old_lines) != len(new_lines):
        return None, "a fix changed the number of lines; notebooks are only fixed line by line"
    raw = data.decode("utf-8")
    doc = json.loads(raw)
    cells = doc["cells"]
    for n, (old, new) in enumerate(zip(old_lines, new_lines)):
        if old == new:
            continue
        index, line = nb.locate(n)
        prefix = nb.cell_prefix(n)
        old, new = prefix + old, prefix + new
        cell = cells[index]
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = text.split("\n")
        if line >= len(lines) or lines[line] != old:
            return None, f"cell {index + 1} does not hold the line that was fixed"
        lines[line] = new
        fixed = "\n".join(lines)
        cell["source"] = fixed.splitlines(keepends=True) if isinstance(source, list) else fixed
    return _dump_like(doc, raw), None


def _dump_like(doc: dict, raw: str) -> str:
    """json.dumps with the indentation the original file used (nbformat writes indent=1)."""
    indent = 1
    for line in raw.splitlines()[1:3]:
        stripped = line.lstrip(" ")
        if stripped and len(line) > len(stripped):
            indent = len(line) - len(stripped)
            break
    out = json.dumps(doc, indent=indent, ensure_ascii=False)
    return out + ("\n" if raw.endswith("\n") else "")
