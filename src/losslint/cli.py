"""Command line: argument parsing and exit codes. Calls `losslint.api`, picks a renderer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from rich.console import Console

from losslint import __version__
from losslint.api import ConfigError, Overrides, lint_paths, lint_source, settings_for
from losslint.model import FileResult
from losslint.outputs import FORMATS

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="losslint", description="Lint custom loss functions in deep-learning code.")
    p.add_argument("--version", action="version", version=f"losslint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="lint files and folders")
    check.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .); - reads stdin")
    check.add_argument("--format", choices=FORMATS, default="text")
    check.add_argument("--output-file", help="write the report here instead of stdout")
    check.add_argument("--select", type=_csv, action="extend", default=None, help="codes, prefixes or names to enable")
    check.add_argument("--extend-select", type=_csv, action="extend", default=[], help="add to the selection")
    check.add_argument("--ignore", type=_csv, action="extend", default=[], help="codes, prefixes or names to disable")
    check.add_argument("--exclude", type=_csv, action="extend", default=[], help="gitignore-style globs to skip when walking")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    check.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    check.add_argument("--quiet", action="store_true", help="print only the summary and file errors")
    check.add_argument("--stdin-filename", default="<stdin>", help="the name to report for - (stdin)")
    check.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    check.add_argument("--config", help="use this pyproject.toml / losslint.toml instead of the nearest one")
    check.add_argument("--show-fixes", action="store_true", help="show each fix's edits under its finding")
    check.add_argument("--force-exclude", action="store_true",
                       help="apply `exclude` to files named on the command line too (for pre-commit)")
    check.add_argument("--warn-unused-ignores", action="store_true",
                       help="report suppression comments that suppress nothing (as LL000 unused-suppression)")
    check.add_argument("--statistics", action="store_true",
                       help="print per-rule counts instead of the findings (a JSON list with --format json)")
    check.add_argument("--show-settings", action="store_true",
                       help="print the resolved settings for the first path and exit")

    fix = sub.add_parser("fix", help="apply confirmed safe fixes")
    fix.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .)")
    fix.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe and unconfirmed fixes")
    fix.add_argument("--diff", action="store_true", help="print a unified diff and write nothing")
    fix.add_argument("--no-confirm", action="store_true",
                     help="skip the TensorFlow confirmation (fixes then count as unconfirmed)")
    fix.add_argument("--select", type=_csv, action="extend", default=None)
    fix.add_argument("--extend-select", type=_csv, action="extend", default=[])
    fix.add_argument("--ignore", type=_csv, action="extend", default=[])
    fix.add_argument("--exclude", type=_csv, action="extend", default=[])
    fix.add_argument("--config", help="use this pyproject.toml / losslint.toml instead of the nearest one")
    fix.add_argument("--jobs", type=int, default=None)
    fix.add_argument("--force-exclude", action="store_true",
                     help="apply `exclude` to files named on the command line too (for pre-commit)")
    fix.add_argument("--quiet", action="store_true", help="print only the summary")

    rule = sub.add_parser("rule", help="print a rule's page")
    rule.add_argument("rule", help="code or name, e.g. LL101 or unguarded-log")

    rules = sub.add_parser("rules", help="list every rule")
    rules.add_argument("--format", choices=("text", "json"), default="text")

    server = sub.add_parser("server", help="start the language server on stdio (needs the `lsp` extra)")
    server.add_argument("--no-confirm", action="store_true",
                        help="do not confirm fixes in the background after open/save (no TensorFlow process)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "fix":
            return _fix(args)
        if args.command == "rules":
            return _rules(args)
        if args.command == "rule":
            return _rule(args)
        if args.command == "server":
            return _server(confirm=not args.no_confirm)
        parser.print_help()
        return EXIT_ERROR
    except ConfigError as err:
        print(f"losslint: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `losslint check | head`: the reader left; no traceback (stdout is pointed at devnull so the interpreter's
        # final flush cannot raise again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _check(args: argparse.Namespace) -> int:
    overrides = Overrides(
        select=tuple(args.select) if args.select else None,
        extend_select=tuple(args.extend_select),
        ignore=tuple(args.ignore),
        exclude=tuple(args.exclude),
        config=args.config,
        warn_unused_ignores=args.warn_unused_ignores,
        force_exclude=args.force_exclude,
    )
    if args.show_settings:
        return _show_settings(args.paths[0] if args.paths != ["-"] else args.stdin_filename, overrides)
    if args.paths == ["-"]:
        results = [lint_source(sys.stdin.read(), args.stdin_filename, settings_for(args.stdin_filename, overrides))]
    else:
        results = _lint_with_progress(args, overrides)
    out = open(args.output_file, "w", encoding="utf-8") if args.output_file else sys.stdout  # noqa: SIM115
    try:
        if args.statistics:
            from losslint.outputs import render_statistics

            for r in results:
                if r.error is not None:
                    print(f"{r.path}: error[{r.error.kind}] {r.error.message}", file=sys.stderr)
            out.write(render_statistics(results, args.format))
        elif args.format == "text":
            from losslint.outputs.text import print_text

            console = Console(file=out, highlight=False, soft_wrap=True) if args.output_file is None else \
                Console(file=out, highlight=False, soft_wrap=True, no_color=True, force_terminal=False)
            print_text(results, console, quiet=args.quiet, show_fixes=args.show_fixes)
        else:
            from losslint.outputs import render

            out.write(render(args.format, results, rules=_enabled_rules(args, overrides)
                             if args.format == "sarif" else None))
    finally:
        if args.output_file:
            out.close()
    return _exit_code(results, args.exit_zero)


def _enabled_rules(args: argparse.Namespace, overrides: Overrides) -> list:
    """Every rule enabled for some path argument (SARIF lists them in `tool.driver.rules`)."""
    from losslint.api import selected_rules

    paths = [args.stdin_filename] if args.paths == ["-"] else args.paths
    return list({r.code: r for p in paths for r in selected_rules(settings_for(p, overrides))}.values())


def _fix(args: argparse.Namespace) -> int:
    import difflib

    from losslint.api import fix_paths
    from losslint.files import FileChangedError, read_bytes, write_atomic
    from losslint.outputs.text import print_text

    overrides = Overrides(select=tuple(args.select) if args.select else None, extend_select=tuple(args.extend_select),
                          ignore=tuple(args.ignore), exclude=tuple(args.exclude), config=args.config,
                          force_exclude=args.force_exclude)
    outcomes, results = fix_paths(args.paths, overrides, unsafe=args.unsafe_fixes, confirm=not args.no_confirm,
                                  jobs=args.jobs)
    console = Console(highlight=False, soft_wrap=True)
    fixed_count = 0
    failed = False
    remaining: dict[str, tuple] = {}
    for o in outcomes:
        remaining[o.path] = o.remaining
        if o.error:
            print(f"{o.path}: error: {o.error}", file=sys.stderr)
            failed = True
        if not o.changed:
            continue
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(o.original.splitlines(keepends=True),
                                                       o.fixed.splitlines(keepends=True),
                                                       fromfile=f"a/{o.path}", tofile=f"b/{o.path}"))
            fixed_count += len(o.applied)
            continue
        try:
            on_disk = read_bytes(o.path)
            if not _same_text(on_disk, o.original):  # edited while we were linting and confirming
                raise FileChangedError(f"{o.path} changed since it was read; not writing the fix")
            write_atomic(o.path, on_disk, o.fixed)
        except (FileChangedError, OSError) as err:
            print(f"{o.path}: error: {err}", file=sys.stderr)
            failed = True
            continue
        fixed_count += len(o.applied)
    after = [replace(r, diagnostics=remaining.get(r.path, r.diagnostics)) if not args.diff else r for r in results]
    if not args.quiet and not args.diff:
        print_text([r for r in after if r.diagnostics or r.error], console)
    verb = "Would fix" if args.diff else "Fixed"
    left = sum(len(r.diagnostics) for r in after) - (fixed_count if args.diff else 0)
    print(f"{verb} {fixed_count} finding{'s' if fixed_count != 1 else ''}; {left} remaining.", file=sys.stderr)
    if failed or any(r.error for r in after):
        return EXIT_FINDINGS
    return EXIT_FINDINGS if left else EXIT_CLEAN


def _same_text(data: bytes, text: str) -> bool:
    from losslint.files import decode

    decoded, _ = decode(data)
    return decoded == text


def _show_settings(path: str, overrides: Overrides) -> int:
    from losslint.api import selected_rules

    s = settings_for(path, overrides)
    doc = {
        "path": path,
        "config": s.source,
        "select": list(s.select),
        "extend-select": list(s.extend_select),
        "ignore": list(s.ignore),
        "exclude": list(s.exclude),
        "per-file-ignores": {glob: list(codes) for glob, codes in s.per_file_ignores},
        "severity": {code: sev.label for code, sev in s.severity.items()},
        "rules": s.rule_options,
        "enabled": [r.code for r in selected_rules(s, path)],
    }
    print(json.dumps(doc, indent=2))
    return EXIT_CLEAN


def _lint_with_progress(args: argparse.Namespace, settings: Overrides) -> list[FileResult]:
    # A progress bar only for people: stderr is a terminal and the output is text.
    if args.no_progress or args.format != "text" or not sys.stderr.isatty():
        return lint_paths(args.paths, settings, jobs=args.jobs)
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("linting", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return lint_paths(args.paths, settings, jobs=args.jobs, progress=tick)


def _exit_code(results: list[FileResult], exit_zero: bool) -> int:
    if exit_zero:
        return EXIT_CLEAN
    if any(r.diagnostics or r.error for r in results):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _rules(args: argparse.Namespace) -> int:
    from losslint.rules import all_rules

    rules = all_rules()
    if args.format == "json":
        print(json.dumps([{"code": r.code, "name": r.name, "severity": r.severity.label, "summary": r.summary,
                           "url": r.docs_url()} for r in rules], indent=2))
        return EXIT_CLEAN
    console = Console(highlight=False, soft_wrap=True)
    for r in rules:
        console.print(f"[bold]{r.code}[/bold]  {r.name:<28} {r.severity.label:<8} {r.summary}")
    return EXIT_CLEAN


def _server(confirm: bool = True) -> int:
    try:
        from losslint.server import serve
    except ImportError as err:
        if err.name not in ("pygls", "lsprotocol") and not (err.name or "").startswith(("pygls.", "lsprotocol.")):
            raise
        print("losslint: error: the language server needs pygls: pip install 'losslint[lsp]'", file=sys.stderr)
        return EXIT_ERROR
    serve(confirm)
    return EXIT_CLEAN


def _rule(args: argparse.Namespace) -> int:
    from losslint.docs import rule_page
    from losslint.rules import rule_by_id

    r = rule_by_id(args.rule)
    if r is None:
        print(f"losslint: error: unknown rule {args.rule!r} (see `losslint rules`)", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(rule_page(r))
    return EXIT_CLEAN


if __name__ == "__main__":
    raise SystemExit(main())
