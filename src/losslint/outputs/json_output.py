"""`--format json`: the CI and editor shape of CONTRACT.md, with LSP positions (0-based, UTF-16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from losslint import __version__
from losslint.model import Diagnostic, FileResult, Fix
from losslint.outputs.positions import LineIndex
from losslint.outputs.summary import summarize

SCHEMA_VERSION = 1
# Findings that are not a rule's (LL000 unused-suppression) link to the suppression section of the contract.
CONTRACT_URL = "https://github.com/losslint/losslint/blob/main/docs/contract.md#suppressions-and-configuration"


def _uri(path: str) -> str | None:
    if path.startswith("<"):
        return None
    try:
        return Path(path).resolve().as_uri()
    except (OSError, ValueError):
        return None


def _range(lines: LineIndex, rng) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"start": lines.utf16(rng.start), "end": lines.utf16(rng.end)}


def _fix(lines: LineIndex, fix: Fix) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": fix.title,
        "applicability": fix.applicability,
        "confirmed": fix.confirmed,
        "edits": [{"range": _range(lines, e.range), "newText": e.new_text} for e in fix.edits],
    }
    if fix.evidence is not None:
        out["evidence"] = fix.evidence
    return out


def diagnostic_dict(lines: LineIndex, d: Diagnostic) -> dict[str, Any]:
    from losslint.rules import rule_by_id

    rule = rule_by_id(d.code)
    data: dict[str, Any] = {"name": d.name, "scope": d.scope}
    if d.fix is not None:
        data["fix"] = _fix(lines, d.fix)
    return {
        "range": _range(lines, d.range),
        "severity": int(d.severity),
        "code": d.code,
        "codeDescription": {"href": rule.docs_url() if rule else CONTRACT_URL},
        "source": "losslint",
        "message": d.message,
        "data": data,
    }


def file_dict(r: FileResult) -> dict[str, Any]:
    lines = LineIndex(r.source)
    diagnostics = [diagnostic_dict(lines, d) for d in r.diagnostics]
    nb = r.extra.get("notebook") if r.extra else None
    if nb is not None:
        # In a notebook, lines count inside the cell; data.cell is the index into the notebook's `cells` array.
        for d, out in zip(r.diagnostics, diagnostics):
            cell, _ = nb.locate(d.range.start.line)
            first = next(c.first_line for c in nb.cells if c.index == cell)
            for pos, at in ((out["range"]["start"], d.range.start), (out["range"]["end"], d.range.end)):
                pos["line"] -= first
                pos["character"] += nb.column_offset(at.line)  # a dedented cell (IPython's leading indent)
            out["data"]["cell"] = cell
    return {
        "path": r.path,
        "uri": _uri(r.path),
        "error": {"kind": r.error.kind, "message": r.error.message} if r.error else None,
        "diagnostics": diagnostics,
    }


def render(results: list[FileResult]) -> str:
    s = summarize(results)
    doc = {
        "version": SCHEMA_VERSION,
        "tool": {"name": "losslint", "version": __version__},
        "files": [file_dict(r) for r in results],
        "summary": {"files": s.files, "findings": s.findings, "errors": s.errors, "fixable": s.fixable},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    """The JSON Schema this output follows, shipped in the package."""
    from importlib.resources import files

    return json.loads(files("losslint.schemas").joinpath("check-output.schema.json").read_text(encoding="utf-8"))
