"""`--format github`: GitHub Actions workflow commands, one annotation per finding.

`::warning file=PATH,line=L,col=C,endLine=L,endColumn=C,title=CODE::message` (1-based; columns in UTF-16 code units,
as in SARIF). Escaping follows the workflow-command rules (actions/toolkit `command.ts`): in the message % -> %25,
CR -> %0D, LF -> %0A; in property values also : -> %3A and , -> %2C. Paths are relative to the working directory
(the repository root in a workflow). A notebook finding is annotated on the file, with `cell N:line:col` leading the
message, since its lines count inside a cell and not in the .ipynb JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

from losslint.model import FileResult, Severity
from losslint.outputs.positions import LineIndex, utf16_column

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFORMATION: "notice",
            Severity.HINT: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def display_path(path: str, cwd: str | None = None) -> str:
    if path.startswith("<"):
        return path
    try:
        return Path(path).resolve().relative_to(Path(cwd or os.getcwd()).resolve()).as_posix()
    except (OSError, ValueError):
        return Path(path).as_posix()


def _command(kind: str, props: dict[str, object], message: str) -> str:
    head = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items())
    return f"::{kind} {head}::{escape_data(message)}"


def render(results: list[FileResult], cwd: str | None = None) -> str:
    out: list[str] = []
    for r in results:
        path = display_path(r.path, cwd)
        if r.error is not None:
            out.append(_command("error", {"file": path, "title": f"losslint {r.error.kind}"}, r.error.message))
            continue
        lines = LineIndex(r.source)
        nb = r.extra.get("notebook") if r.extra else None
        for d in r.diagnostics:
            kind = COMMANDS[d.severity]
            if nb is not None:
                cell, line = nb.locate(d.range.start.line)
                col = d.range.start.column + nb.column_offset(d.range.start.line)
                message = f"cell {cell + 1}:{line + 1}:{col + 1}: {d.message}"
                out.append(_command(kind, {"file": path, "title": d.code}, message))
                continue
            start, end = d.range.start, d.range.end
            props = {
                "file": path,
                "line": start.line + 1,
                "col": utf16_column(lines.line(start.line), start.column) + 1,
                "endLine": end.line + 1,
                "endColumn": utf16_column(lines.line(end.line), end.column) + 1,
                "title": d.code,
            }
            out.append(_command(kind, props, d.message))
    return "\n".join(out) + ("\n" if out else "")
