"""Renderers: pure functions from lint results to text. Positions are converted here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from losslint.model import FileResult

if TYPE_CHECKING:
    from losslint.rules.base import Rule


def renderer(fmt: str) -> Callable[[list[FileResult]], str]:
    if fmt == "json":
        from losslint.outputs.json_output import render
    elif fmt == "concise":
        from losslint.outputs.concise import render
    elif fmt == "json-lines":
        from losslint.outputs.json_lines import render
    elif fmt == "sarif":
        from losslint.outputs.sarif import render
    elif fmt == "github":
        from losslint.outputs.github import render
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return render


def render(fmt: str, results: list[FileResult], rules: Iterable[type[Rule]] | None = None) -> str:
    """Any non-text format; `rules` (the enabled rules) is used by SARIF's `tool.driver.rules`."""
    if fmt == "sarif":
        from losslint.outputs.sarif import render as render_sarif

        return render_sarif(results, rules=rules)
    return renderer(fmt)(results)


def render_statistics(results: list[FileResult], fmt: str) -> str:
    """`--statistics`: a JSON list with `--format json`, a text table otherwise."""
    from losslint.outputs.statistics import render_json, render_text

    return render_json(results) if fmt == "json" else render_text(results)


FORMATS = ("text", "concise", "json", "json-lines", "sarif", "github")
