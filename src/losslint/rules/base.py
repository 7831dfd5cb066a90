"""The rule plugin API: a rule is one small class in one module of `losslint.rules`.

Like a Fixit rule, it visits libcst nodes and reports; its documentation sections and VALID/INVALID examples live on
the class, `docs/rules/` is generated from them, and the test suite runs every example.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from losslint.model import Severity

if TYPE_CHECKING:
    from losslint.analysis.facts import Value
    from losslint.analysis.index import StmtInfo
    from losslint.analysis.ops import Op
    from losslint.analysis.scopes import Scope
    from losslint.engine import RuleContext


@dataclass(frozen=True)
class Valid:
    """Code on which the rule must stay silent."""

    source: str
    note: str = ""

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).lstrip("\n")


@dataclass(frozen=True)
class Invalid:
    """Code on which the rule must report `code` on `line` (1-based, in the dedented text)."""

    source: str
    code: str
    line: int
    note: str = ""
    # The whole example after applying this rule's fixes, or None when the rule offers no fix here.
    fixed: str | None = None

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).lstrip("\n")

    @property
    def fixed_text(self) -> str | None:
        return textwrap.dedent(self.fixed).lstrip("\n") if self.fixed is not None else None


@dataclass(frozen=True)
class Replacement:
    """Replace `node` (its syntactic range) with `new`, a libcst node or source text."""

    node: cst.CSTNode
    new: cst.CSTNode | str

    @property
    def text(self) -> str:
        return self.new if isinstance(self.new, str) else cst.Module(body=[]).code_for_node(self.new)


@dataclass(frozen=True)
class FixSpec:
    """What a rule proposes; the engine turns the replacements into text edits (`model.Fix`).

    applicability: "safe" (same values wherever the original was finite: applied once confirmed under TensorFlow),
    "unsafe" (changes the loss: applied only with --unsafe-fixes) or "display-only" (shown, never applied).
    """

    title: str
    applicability: str
    replacements: tuple[Replacement, ...]
    # What the confirmer checks (model.Fix): "same" values and gradients; "per-sample" values that sum to the
    # original scalar; a "changed" value by design (runs, finite, no new NaN/Inf). `batch`: the batch size to test at.
    expect: str = "same"
    batch: int | None = None


class Rule:
    """Base class. Subclasses set the class attributes and define `visit_<Node>` methods."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    summary: ClassVar[str]  # one line, for `losslint rules`
    # Ruff-style documentation sections.
    what_it_does: ClassVar[str]
    why_bad: ClassVar[str]
    example: ClassVar[str]
    use_instead: ClassVar[str]
    fix_safety: ClassVar[str] = "This rule offers no automatic fix yet."
    frameworks: ClassVar[tuple[str, ...]] = ("tensorflow", "keras", "torch", "jax", "numpy")
    # Numeric rules look only inside loss scopes; pipeline rules look at the whole module.
    scoped: ClassVar[bool] = True
    # For unscoped rules: what a finding outside every loss scope is "in" (e.g. "model compile()").
    outside_scope: ClassVar[str | None] = None
    # Options users may set under [tool.losslint.rules.LLxxx], with their defaults (the type is enforced).
    options: ClassVar[dict[str, object]] = {}
    VALID: ClassVar[list[Valid]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def __init__(self, context: "RuleContext") -> None:
        self.context = context

    # ---- helpers for subclasses ------------------------------------------------------------------------------
    def report(self, node: cst.CSTNode, message: str, fix: FixSpec | None = None,
               fallback_scope: "Scope | None" = None) -> None:
        """Report `node`; outside every loss scope the finding names `fallback_scope` (or `outside_scope`)."""
        if fallback_scope is None and self.outside_scope is not None:
            from losslint.analysis.scopes import Scope

            fallback_scope = Scope("pipeline", self.outside_scope)
        self.context.report(self, node, message, fix, fallback_scope)

    def op_of(self, call: cst.Call) -> "Op | None":
        return self.context.index.op_of(call)

    def value(self, node: cst.BaseExpression) -> "Value":
        return self.context.value(node)

    @property
    def stmt(self) -> "StmtInfo | None":
        return self.context.stmt

    def source_of(self, node: cst.CSTNode, limit: int = 40) -> str:
        text = self.context.code_for(node)
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    @classmethod
    def docs_url(cls) -> str:
        return f"https://github.com/losslint/losslint/blob/main/docs/rules/{cls.code}-{cls.name}.md"


class ModuleFindingsRule(Rule):
    """A rule that decides over the whole module at once (captures, tracing, rebindings) and reports each finding
    when the walk reaches its node: subclasses define `_compute` and call `_check` from their `visit_<Node>`s."""

    def __init__(self, context: "RuleContext") -> None:
        super().__init__(context)
        self._findings: dict[int, str] | None = None

    def _compute(self) -> dict[int, str]:
        """Messages keyed by the `id` of the node to report on."""
        raise NotImplementedError

    def _check(self, node: cst.CSTNode) -> None:
        if self._findings is None:
            self._findings = self._compute()  # lazily: a module with no candidate node never pays for the analysis
        msg = self._findings.get(id(node))
        if msg is not None:
            self.report(node, msg)
