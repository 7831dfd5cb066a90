"""The one core API every front end calls: lint source text or paths, get plain data back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from losslint import suppressions
from losslint.config import ConfigError, Overrides, Settings, resolve
from losslint.engine import lint_module_source
from losslint.files import Candidate, discover, read_limited, read_source
from losslint.notebooks import parse_notebook
from losslint.model import FileError, FileResult, Severity
from losslint.rules import all_rules
from losslint.rules.base import Rule

if TYPE_CHECKING:
    from losslint.fixes.apply import FixOutcome

# An unknown selector is a configuration error (exit 2), whichever way it arrived.
SelectionError = ConfigError

__all__ = ["ConfigError", "Overrides", "SelectionError", "Settings", "fix_paths", "lint_paths", "lint_source",
           "selected_rules"]


def _matches(rule: type[Rule], selector: str) -> bool:
    s = selector.strip()
    return rule.code.upper().startswith(s.upper()) or rule.name == s.lower()


def _check_selectors(selectors: Iterable[str]) -> None:
    rules = all_rules()
    for s in selectors:
        if not s.strip() or not any(_matches(r, s) for r in rules):
            raise ConfigError(f"unknown rule code, prefix or name: {s!r}")


def selected_rules(settings: Settings, path: str | None = None) -> list[type[Rule]]:
    _check_selectors((*settings.select, *settings.ignore, *settings.extend_select))
    ignore = (*settings.ignore, *(settings.ignored_for(path) if path else ()))
    chosen = [r for r in all_rules()
              if any(_matches(r, s) for s in (*settings.select, *settings.extend_select))]
    return [r for r in chosen if not any(_matches(r, s) for s in ignore)]


def lint_source(source: str, path: str = "<stdin>", settings: Settings | None = None) -> FileResult:
    settings = settings or Settings()
    codes = tuple(r.code for r in selected_rules(settings, path))
    return _lint_text(source, path, codes, settings.severity, settings.warn_unused_ignores)


def _lint_text(source: str, path: str, codes: tuple[str, ...], severity: dict[str, Severity],
               warn_unused: bool = False) -> FileResult:
    rules = [r for r in all_rules() if r.code in codes]
    try:
        result = lint_module_source(source, path, rules, severity)
    except Exception as err:  # noqa: BLE001 - a bug of ours must not stop the other files
        return FileResult(path, source, error=FileError("internal", f"internal error ({type(err).__name__}: {err}); "
                                                                    "please report it"))
    if result.error is None and not result.skipped and (result.diagnostics or warn_unused):
        kept, hidden = suppressions.apply(source, result.diagnostics, warn_unused)
        if kept != result.diagnostics:
            result = replace(result, diagnostics=kept, extra={**result.extra, "suppressed": hidden})
    return result


def _lint_one(args: tuple[str, tuple[str, ...], dict[str, Severity], bool]) -> FileResult:
    path, codes, severity, warn_unused = args
    if path.endswith(".ipynb"):
        return _lint_notebook(path, codes, severity, warn_unused)
    text, error = read_source(path)
    if error is not None:
        return FileResult(path, error=error)
    return _lint_text(text, path, codes, severity, warn_unused)  # type: ignore[arg-type]


def _lint_notebook(path: str, codes: tuple[str, ...], severity: dict[str, Severity],
                   warn_unused: bool = False) -> FileResult:
    data, error = read_limited(path)
    if error is not None:
        return FileResult(path, error=error)
    nb, error = parse_notebook(data)  # type: ignore[arg-type]
    if error is not None:
        return FileResult(path, error=error)
    result = _lint_text(nb.source, path, codes, severity, warn_unused)  # type: ignore[union-attr]
    return replace(result, extra={**result.extra, "notebook": nb})


def settings_for(path: str, overrides: Overrides) -> Settings:
    return resolve(path, overrides)


def lint_paths(paths: list[str], settings: Settings | Overrides | None = None, jobs: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[FileResult]:
    """Lint every file under `paths`. Results come back in discovery order.

    With `Overrides` (the command line), each file gets the settings of its nearest config file plus the overrides;
    with `Settings`, every file gets those settings.
    """
    if settings is None:
        settings = Overrides()
    candidates: list[Candidate] = []
    for raw in paths:
        root_settings = settings if isinstance(settings, Settings) else settings_for(raw, settings)
        force = isinstance(settings, Overrides) and settings.force_exclude
        candidates.extend(discover([raw], root_settings.exclude, force_exclude=force, root=root_settings.root))
    results: list[FileResult | None] = [None] * len(candidates)
    todo: list[int] = []
    work: list[tuple[str, tuple[str, ...], dict[str, Severity], bool]] = []
    for i, c in enumerate(candidates):
        if c.error is not None:
            results[i] = FileResult(c.path, error=c.error)
            continue
        s = settings if isinstance(settings, Settings) else settings_for(c.path, settings)
        todo.append(i)
        work.append((c.path, tuple(r.code for r in selected_rules(s, c.path)), s.severity, s.warn_unused_ignores))
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    done = 0
    if jobs > 1 and len(work) >= 8:
        try:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for i, res in zip(todo, pool.map(_lint_one, work, chunksize=4)):
                    results[i] = res
                    done += 1
                    if progress:
                        progress(done, len(work))
        except BrokenProcessPool:
            # A worker died (a crash in native code): report what it left unanalysed rather than drop it.
            crashed = FileError("internal", "not analysed: a worker process crashed on this file or one analysed "
                                            "alongside it (run with --jobs 1 to find which); please report it")
            for i in todo:
                if results[i] is None:
                    results[i] = FileResult(candidates[i].path, error=crashed)
    else:
        for i, w in zip(todo, work):
            results[i] = _lint_one(w)
            done += 1
            if progress:
                progress(done, len(work))
    return [r for r in results if r is not None]


def _confirmer(confirm: bool):  # type: ignore[no-untyped-def]
    """The TensorFlow confirmation entry points, or None (not requested, or the package part is missing)."""
    if not confirm:
        return None
    try:
        from losslint.fixes import confirm as confirm_mod
    except ImportError:
        return None
    return confirm_mod


def fix_paths(paths: list[str], settings: Overrides | Settings | None = None, *, unsafe: bool = False,
              confirm: bool = True, jobs: int | None = None) -> tuple[list["FixOutcome"], list[FileResult]]:
    """Lint `paths`, confirm the fixes offered (one TensorFlow subprocess for the whole run, then cached), and compute
    each file's fixed text. Nothing is written here: `write_fixes` does that."""
    from losslint.fixes.apply import FixOutcome, fix_text

    settings = settings if settings is not None else Overrides()
    results = lint_paths(paths, settings, jobs=jobs)
    confirmer = _confirmer(confirm)
    with_fixes = [r for r in results if r.error is None and any(d.fix for d in r.diagnostics)]
    if confirmer is not None and with_fixes:
        confirmed = confirmer.confirm_files([(r.path, r.source or "", r.diagnostics) for r in with_fixes])
        by_path = {r.path: replace(r, diagnostics=c) for r, c in zip(with_fixes, confirmed)}
        results = [by_path.get(r.path, r) for r in results]
    outcomes: list[FixOutcome] = []
    for r in results:
        if r.path not in {w.path for w in with_fixes}:
            continue
        s = settings if isinstance(settings, Settings) else settings_for(r.path, settings)
        codes = tuple(rule.code for rule in selected_rules(s, r.path))
        first = [r]

        def lint(source: str, path: str, codes=codes, s=s, first=first) -> FileResult:  # type: ignore[no-untyped-def]
            if first:
                return first.pop()
            res = _lint_text(source, path, codes, s.severity)
            if confirmer is not None and any(d.fix for d in res.diagnostics):
                res = replace(res, diagnostics=confirmer.confirm_file(path, source, res.diagnostics))
            return res

        outcome = fix_text(r.source or "", r.path, lint, unsafe=unsafe)
        nb = r.extra.get("notebook")
        if nb is not None and outcome.changed:
            outcome = _notebook_outcome(outcome, nb)
        outcomes.append(outcome)
    return outcomes, results


def _notebook_outcome(outcome: "FixOutcome", nb) -> "FixOutcome":  # type: ignore[no-untyped-def]
    """Turn a fixed module text back into notebook JSON; the outcome then holds the .ipynb texts themselves."""
    from losslint.notebooks import write_back

    data, error = read_limited(outcome.path)
    if error is not None:
        return replace(outcome, fixed=outcome.original, error=error.message)
    new_json, problem = write_back(data, nb, outcome.original, outcome.fixed)  # type: ignore[arg-type]
    if new_json is None:
        return replace(outcome, fixed=outcome.original, error=problem)
    original_json = data.decode("utf-8")  # type: ignore[union-attr]
    return replace(outcome, original=original_json, fixed=new_json)
