"""`--format sarif`: SARIF 2.1.0 (one run), valid against the official OASIS schema.

Shape after Ruff's `sarif.rs`: every enabled rule once in `tool.driver.rules`, each result pointing at it with
`ruleId`/`ruleIndex`, fixes as `fixes[].artifactChanges[].replacements[]`, and files that could not be analysed as
`invocations[0].toolExecutionNotifications`. Regions are 1-based and their columns count UTF-16 code units (SARIF's
default `columnKind`, set explicitly); the model's code-point columns are converted here. Artifact URIs are relative
to the working directory (`%SRCROOT%`) when the file is under it, absolute `file://` URIs otherwise.

In a notebook, lines count inside the cell (as in `--format json`) and `properties.cell` is the index into the
notebook's `cells` array; notebook findings carry no `fixes` (`fix` does not rewrite notebooks).

Each result has `partialFingerprints["losslint/v1"]`: a hash of the rule, the file, the enclosing loss scope and the
flagged code (whitespace-insensitive) with its occurrence number, not of line numbers, so code scanning keeps
tracking an alert when lines above it move and closes it when the code is fixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from losslint import __version__
from losslint.model import Diagnostic, FileResult, Position, Range, Severity
from losslint.outputs.positions import LineIndex, utf16_column

if TYPE_CHECKING:
    from losslint.rules.base import Rule

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/losslint/losslint"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFORMATION: "note", Severity.HINT: "note"}


def artifact_location(path: str, cwd: str | None = None) -> dict[str, str]:
    """`{uri, uriBaseId}` relative to the working directory, or an absolute file URI outside it."""
    if path.startswith("<"):  # stdin without --stdin-filename
        return {"uri": quote(path, safe="")}
    base = Path(cwd or os.getcwd()).resolve()
    try:
        absolute = Path(path).resolve()
    except (OSError, ValueError):
        return {"uri": quote(Path(path).as_posix(), safe="/")}
    try:
        rel = absolute.relative_to(base)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(rel.as_posix(), safe="/"), "uriBaseId": "%SRCROOT%"}


def _region(lines: LineIndex, rng: Range, line_offset: int = 0, nb=None) -> dict[str, int]:  # noqa: ANN001
    def col(pos: Position) -> int:
        return utf16_column(lines.line(pos.line), pos.column) + 1 + (nb.column_offset(pos.line) if nb else 0)

    return {"startLine": rng.start.line - line_offset + 1, "startColumn": col(rng.start),
            "endLine": rng.end.line - line_offset + 1, "endColumn": col(rng.end)}


def _text(doc: str) -> str:
    return " ".join(textwrap.dedent(doc).split())


def _rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    from losslint.docs import rule_page

    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _text(rule.what_it_does)},
        "help": {"text": f"{_text(rule.what_it_does)} {_text(rule.why_bad)}", "markdown": rule_page(rule)},
        "helpUri": rule.docs_url(),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"frameworks": list(rule.frameworks)},
    }


def _fingerprints(r: FileResult, lines: LineIndex, loc: dict[str, str]) -> list[str]:
    """One fingerprint per diagnostic of `r`, in order (see the module docstring)."""
    seen: dict[str, int] = {}
    out = []
    for d in r.diagnostics:
        text = " ".join(lines.slice(d.range).split())
        key = "\0".join((d.code, loc.get("uri", ""), d.scope or "", text))
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(hashlib.sha256(f"{key}\0{n}".encode()).hexdigest()[:32])
    return out


def _result(r: FileResult, lines: LineIndex, d: Diagnostic, index: dict[str, int], loc: dict[str, str],
            fingerprint: str) -> dict:
    nb = r.extra.get("notebook") if r.extra else None
    offset, cell = 0, None
    if nb is not None:
        cell, _ = nb.locate(d.range.start.line)
        offset = next(c.first_line for c in nb.cells if c.index == cell)
    out: dict[str, Any] = {
        "ruleId": d.code,
        "level": LEVELS[d.severity],
        "message": {"text": d.message},
        "locations": [{"physicalLocation": {"artifactLocation": loc, "region": _region(lines, d.range, offset, nb)}}],
    }
    if d.code in index:
        out["ruleIndex"] = index[d.code]
    out["partialFingerprints"] = {"losslint/v1": fingerprint}
    if d.fix is not None and d.fix.edits and nb is None:
        out["fixes"] = [{
            "description": {"text": d.fix.title},
            "artifactChanges": [{
                "artifactLocation": loc,
                "replacements": [{"deletedRegion": _region(lines, e.range), "insertedContent": {"text": e.new_text}}
                                 for e in d.fix.edits],
            }],
            "properties": {"applicability": d.fix.applicability, "confirmed": d.fix.confirmed},
        }]
    props: dict[str, Any] = {"name": d.name}
    if d.scope:
        props["scope"] = d.scope
    if cell is not None:
        props["cell"] = cell
    out["properties"] = props
    return out


def render(results: list[FileResult], rules: Iterable[type[Rule]] | None = None, cwd: str | None = None) -> str:
    """The SARIF log. `rules`: the enabled rules (default: every rule); rules with findings are always listed."""
    from losslint.rules import all_rules, rule_by_id

    chosen = {r.code: r for r in (all_rules() if rules is None else rules)}
    for res in results:
        for d in res.diagnostics:
            if d.code not in chosen and (rule := rule_by_id(d.code)) is not None:
                chosen[d.code] = rule
    ordered = [chosen[c] for c in sorted(chosen)]
    index = {r.code: i for i, r in enumerate(ordered)}

    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for res in results:
        loc = artifact_location(res.path, cwd)
        if res.error is not None:
            notifications.append({
                "level": "error",
                "message": {"text": f"{res.path}: {res.error.message}"},
                "descriptor": {"id": res.error.kind},
                "locations": [{"physicalLocation": {"artifactLocation": loc}}],
            })
            continue
        lines = LineIndex(res.source)
        sarif_results.extend(_result(res, lines, d, index, loc, fp)
                             for d, fp in zip(res.diagnostics, _fingerprints(res, lines, loc)))

    base = Path(cwd or os.getcwd()).resolve().as_uri().rstrip("/") + "/"
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "losslint", "version": __version__, "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI, "rules": [_rule_descriptor(r) for r in ordered]}},
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "originalUriBaseIds": {"%SRCROOT%": {"uri": base}},
        "columnKind": "utf16CodeUnits",
        "results": sarif_results,
    }
    doc = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
