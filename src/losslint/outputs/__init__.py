"""Renderers: pure functions from lint results to text. Positions are converted here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable

from losslint.model import FileResult


def renderer(fmt: str) -> Callable[[list[FileResult]], str]:
    if fmt == "json":
        from losslint.outputs.json_output import render
    elif fmt == "concise":
        from losslint.outputs.concise import render
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return render


FORMATS = ("text", "concise", "json")
