"""Parse once, index once, run every enabled rule in one batched traversal.

Positions are computed only for files with findings, and only then (libcst's PositionProvider costs a full codegen
pass; most files have nothing to report). The user's code is never imported or run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst

from losslint.analysis.facts import Facts, Value
from losslint.analysis.index import ModuleIndex, StmtInfo
from losslint.analysis.ops import FRAMEWORK_ROOTS
from losslint.analysis.scopes import Scope, ScopeMap
from losslint.analysis.walk import Dispatch, walk
from losslint.positions import node_ranges
from losslint.files import nesting_error
from losslint.model import Diagnostic, Edit, Fix, FileError, FileResult, Position, Range, Severity
from losslint.rules import all_rules
from losslint.rules.base import FixSpec, Rule

_FRAMEWORK_IMPORT_RE = re.compile(
    r"^[ \t]*(?:from|import)[ \t]+(?:" + "|".join(FRAMEWORK_ROOTS) + r")\b", re.MULTILINE
)
# Nesting deeper than this is refused with a per-file error rather than risking the interpreter's stack.
MAX_NESTING_RECURSION = 20000


def imports_framework(source: str) -> bool:
    """The cheap pre-filter: does the file import a deep-learning framework at all?"""
    return _FRAMEWORK_IMPORT_RE.search(source) is not None


@dataclass
class _Report:
    rule: Rule
    node: cst.CSTNode
    message: str
    scope: Scope | None
    fix: FixSpec | None = None


class RuleContext:
    """What a rule sees: the module, its index, loss scopes and value facts, and where the traversal is."""

    def __init__(self, path: str, module: cst.Module, index: ModuleIndex, scopes: ScopeMap, facts: Facts) -> None:
        self.path = path
        self.module = module
        self.index = index
        self.scopes = scopes
        self.facts = facts
        self.scope_stack: list[Scope] = []
        self.stmt_stack: list[StmtInfo] = []
        self.reports: list[_Report] = []

    @property
    def scope(self) -> Scope | None:
        return self.scope_stack[-1] if self.scope_stack else None

    @property
    def stmt(self) -> StmtInfo | None:
        return self.stmt_stack[-1] if self.stmt_stack else None

    def value(self, node: cst.BaseExpression) -> Value:
        return self.facts.value(node, self.stmt)

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def report(self, rule: Rule, node: cst.CSTNode, message: str, fix: FixSpec | None = None,
               fallback_scope: Scope | None = None) -> None:
        # Rules that look beyond loss scopes (training loops, pipelines) name the scope they found the code in.
        self.reports.append(_Report(rule, node, message, self.scope or fallback_scope, fix))


class _Dispatcher:
    """Fans each node out to every rule's `visit_<Node>` / `leave_<Node>`, tracking statement and loss scope."""

    def __init__(self, context: RuleContext, rules: list[Rule]) -> None:
        self.ctx = context
        self.visits: dict[str, list[tuple[bool, object]]] = {}
        self.leaves: dict[str, list[tuple[bool, object]]] = {}
        for rule in rules:
            for kind, fn in Dispatch.handlers(rule, "visit_").items():
                self.visits.setdefault(kind, []).append((rule.scoped, fn))
            for kind, fn in Dispatch.handlers(rule, "leave_").items():
                self.leaves.setdefault(kind, []).append((rule.scoped, fn))
        self._pushed: dict[int, tuple[bool, bool]] = {}

    def run(self, module: cst.Module) -> None:
        walk(module, self.on_visit, self.on_leave)

    def on_visit(self, node: cst.CSTNode) -> None:
        ctx = self.ctx
        key = id(node)
        stmt = ctx.index.stmt_info.get(key)
        if stmt is not None:
            ctx.stmt_stack.append(stmt)
        scopes = ctx.scopes
        scope = scopes.by_func.get(key) or scopes.by_stmt.get(key) or scopes.by_with.get(key)
        if scope is not None:
            ctx.scope_stack.append(scope)
        if stmt is not None or scope is not None:
            self._pushed[key] = (stmt is not None, scope is not None)
        handlers = self.visits.get(type(node).__name__)
        if handlers:
            in_scope = bool(ctx.scope_stack)
            for scoped, fn in handlers:
                if in_scope or not scoped:
                    fn(node)  # type: ignore[operator]

    def on_leave(self, node: cst.CSTNode) -> None:
        handlers = self.leaves.get(type(node).__name__)
        if handlers:
            in_scope = bool(self.ctx.scope_stack)
            for scoped, fn in handlers:
                if in_scope or not scoped:
                    fn(node)  # type: ignore[operator]
        pushed = self._pushed.pop(id(node), None)
        if pushed is not None:
            if pushed[1]:
                self.ctx.scope_stack.pop()
            if pushed[0]:
                self.ctx.stmt_stack.pop()


def _syntax_error_message(err: cst.ParserSyntaxError) -> str:
    first = str(err.message).strip().splitlines()[0] if str(err.message).strip() else "invalid syntax"
    return f"syntax error at line {err.raw_line}, column {err.raw_column + 1}: {first}"


def lint_module_source(source: str, path: str = "<stdin>", rules: Iterable[type[Rule]] | None = None,
                       severity_overrides: dict[str, Severity] | None = None, prefilter: bool = True) -> FileResult:
    """Lint decoded source text. Never raises for bad input: problems become a per-file error."""
    if prefilter and not imports_framework(source):
        return FileResult(path=path, source=source, skipped=True)
    too_deep = nesting_error(source)  # libcst's native parser would overflow the C stack (a segfault) on it
    if too_deep is not None:
        return FileResult(path, source, error=too_deep)
    rule_classes = list(rules) if rules is not None else list(all_rules())
    old_limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(old_limit, MAX_NESTING_RECURSION))
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as err:
            return FileResult(path, source, error=FileError("syntax-error", _syntax_error_message(err)))
        index = ModuleIndex.build(module, path)
        scopes = ScopeMap(index)
        facts = Facts(index, scopes)
        ctx = RuleContext(path, module, index, scopes, facts)
        instances = [cls(ctx) for cls in rule_classes]
        _Dispatcher(ctx, instances).run(module)
        diagnostics = _diagnostics(module, ctx.reports, severity_overrides or {})
    except RecursionError:
        return FileResult(path, source, error=FileError(
            "too-large", "nesting is too deep to analyse (the expression or block depth exceeds the parser's limit)"))
    except MemoryError:
        return FileResult(path, source, error=FileError("too-large", "the file is too large to analyse in memory"))
    finally:
        sys.setrecursionlimit(old_limit)
    return FileResult(path, source, diagnostics=tuple(diagnostics))


def _diagnostics(module: cst.Module, reports: list[_Report], overrides: dict[str, Severity]) -> list[Diagnostic]:
    if not reports:
        return []
    nodes = [r.node for r in reports] + [rep.node for r in reports if r.fix for rep in r.fix.replacements]
    positions = node_ranges(module, nodes)

    def to_range(node: cst.CSTNode) -> Range:
        (sl, sc), (el, ec) = positions[id(node)]
        return Range(Position(sl - 1, sc), Position(el - 1, ec))

    out: dict[tuple, Diagnostic] = {}
    for r in reports:
        rng = to_range(r.node)
        code = r.rule.code
        fix = None
        if r.fix is not None:
            fix = Fix(r.fix.title, r.fix.applicability,
                      tuple(Edit(to_range(rep.node), rep.text) for rep in r.fix.replacements),
                      expect=r.fix.expect, batch=r.fix.batch)
        diag = Diagnostic(
            code=code,
            name=r.rule.name,
            message=r.message,
            range=rng,
            severity=overrides.get(code, r.rule.severity),
            scope=r.scope.description if r.scope is not None else None,
            fix=fix,
        )
        out.setdefault((code, rng), diag)  # one finding per rule per node
    return sorted(out.values(), key=lambda d: (d.range.start, d.code))
