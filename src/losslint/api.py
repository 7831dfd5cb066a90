"""The one core API every front end calls: lint source text or paths, get plain data back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from losslint.engine import lint_module_source
from losslint.files import Candidate, discover, read_source
from losslint.model import FileError, FileResult, Severity
from losslint.rules import all_rules
from losslint.rules.base import Rule


class SelectionError(ValueError):
    """An unknown rule code, prefix or name in select/ignore."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("LL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)


def _matches(rule: type[Rule], selector: str) -> bool:
    s = selector.strip()
    return rule.code.upper().startswith(s.upper()) or rule.name == s.lower()


def _check_selectors(selectors: Iterable[str]) -> None:
    rules = all_rules()
    for s in selectors:
        if not s.strip() or not any(_matches(r, s) for r in rules):
            raise SelectionError(f"unknown rule code, prefix or name: {s!r}")


def selected_rules(settings: Settings) -> list[type[Rule]]:
    _check_selectors((*settings.select, *settings.ignore, *settings.extend_select))
    chosen = [r for r in all_rules()
              if any(_matches(r, s) for s in (*settings.select, *settings.extend_select))]
    return [r for r in chosen if not any(_matches(r, s) for s in settings.ignore)]


def lint_source(source: str, path: str = "<stdin>", settings: Settings | None = None) -> FileResult:
    settings = settings or Settings()
    return _lint_text(source, path, tuple(r.code for r in selected_rules(settings)), settings.severity)


def _lint_text(source: str, path: str, codes: tuple[str, ...], severity: dict[str, Severity]) -> FileResult:
    rules = [r for r in all_rules() if r.code in codes]
    try:
        return lint_module_source(source, path, rules, severity)
    except Exception as err:  # noqa: BLE001 - a bug of ours must not stop the other files
        return FileResult(path, source, error=FileError("internal", f"internal error ({type(err).__name__}: {err}); "
                                                                    "please report it"))


def _lint_one(args: tuple[str, tuple[str, ...], dict[str, Severity]]) -> FileResult:
    path, codes, severity = args
    text, error = read_source(path)
    if error is not None:
        return FileResult(path, error=error)
    return _lint_text(text, path, codes, severity)  # type: ignore[arg-type]


def lint_paths(paths: list[str], settings: Settings | None = None, jobs: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[FileResult]:
    """Lint every file under `paths`. Results come back in discovery order."""
    settings = settings or Settings()
    codes = tuple(r.code for r in selected_rules(settings))
    candidates: list[Candidate] = list(discover(paths, settings.exclude))
    results: list[FileResult | None] = [None] * len(candidates)
    todo = []
    for i, c in enumerate(candidates):
        if c.error is not None:
            results[i] = FileResult(c.path, error=c.error)
        else:
            todo.append(i)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    work = [(candidates[i].path, codes, settings.severity) for i in todo]
    done = 0
    if jobs > 1 and len(work) >= 8:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, res in zip(todo, pool.map(_lint_one, work, chunksize=4)):
                results[i] = res
                done += 1
                if progress:
                    progress(done, len(work))
    else:
        for i, w in zip(todo, work):
            results[i] = _lint_one(w)
            done += 1
            if progress:
                progress(done, len(work))
    return [r for r in results if r is not None]
