"""`--format text` (default): each finding with its source line, a caret under the span, the scope, and a summary.

Rendered with rich; colours only when the console is a terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from losslint.model import FileResult, Fix, Severity
from losslint.outputs.positions import LineIndex, display_location
from losslint.outputs.summary import summarize

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFORMATION: "bold blue",
          Severity.HINT: "dim"}


def fix_line(fix: Fix) -> str:
    """`fix (safe, confirmed: ...): title`, with the confirmation verdict and its figures."""
    ev = fix.evidence if isinstance(fix.evidence, dict) else {}
    figures = ", ".join(f"{k.replace('_', ' ')} {ev[k]:.3g}" for k in ("max_value_diff", "max_grad_diff")
                        if isinstance(ev.get(k), (int, float)))
    if fix.confirmed is True:
        status = "confirmed under TensorFlow" + (f": {figures}" if figures else "")
    elif fix.confirmed is False:
        reason = ev.get("reason") if ev else (fix.evidence if isinstance(fix.evidence, str) else None)
        status = "REJECTED by TensorFlow" + (f": {reason}" if reason else "") + (f" ({figures})" if figures else "")
    else:
        status = "unconfirmed"
    return f"fix ({fix.applicability}, {status}): {fix.title}"


def print_text(results: list[FileResult], console: Console, quiet: bool = False, show_fixes: bool = False) -> None:
    for r in results:
        if r.error is not None:
            line = Text()
            line.append(r.path, style="bold")
            line.append(": ")
            line.append(f"error[{r.error.kind}]", style="bold red")
            line.append(f" {r.error.message}")
            console.print(line, highlight=False)
            continue
        if quiet:
            continue
        lines = LineIndex(r.source)
        for d in r.diagnostics:
            ln, _col = LineIndex.one_based(d.range.start)
            head = Text()
            head.append(f"{display_location(r, d.range.start)}: ", style="bold")
            head.append(d.code, style=_STYLE[d.severity])
            head.append(f" [{d.name}] ", style="dim")
            head.append(d.message)
            console.print(head, highlight=False)
            src = lines.line(d.range.start.line)
            gutter = f"{ln:>5} | "
            # one space per tab keeps the caret under the right code point
            console.print(Text(gutter, style="blue") + Text(src.replace("\t", " ")), highlight=False)
            start = d.range.start.column
            end = d.range.end.column if d.range.end.line == d.range.start.line else len(src)
            caret = " " * len(gutter) + " " * start + "^" * max(1, end - start)
            console.print(Text(caret, style=_STYLE[d.severity]), highlight=False)
            if d.scope:
                console.print(Text(" " * (len(gutter) - 2) + "= in " + d.scope, style="dim"), highlight=False)
            if d.fix is not None:
                console.print(Text(" " * (len(gutter) - 2) + "= " + fix_line(d.fix),
                                   style="red" if d.fix.confirmed is False else "green"), highlight=False)
                if show_fixes:
                    for e in d.fix.edits:
                        old = lines.slice(e.range)
                        console.print(Text(" " * len(gutter) + f"- {old}\n" + " " * len(gutter) + f"+ {e.new_text}",
                                           style="green"), highlight=False)
            console.print()
    s = summarize(results)
    checked = s.files - s.skipped - s.errors
    parts = [f"{s.findings} finding{'s' if s.findings != 1 else ''}",
             f"{checked} file{'s' if checked != 1 else ''} checked"]
    if s.skipped:
        parts.append(f"{s.skipped} without a deep-learning import skipped")
    if s.errors:
        parts.append(f"{s.errors} could not be analysed")
    style = "bold red" if s.findings or s.errors else "bold green"
    console.print(Text("Found " + ", ".join(parts) + ".", style=style), highlight=False)
