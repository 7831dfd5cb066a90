"""Every rule's VALID/INVALID examples, run through the real engine (Fixit style)."""

from __future__ import annotations

import pytest

from losslint.engine import lint_module_source
from losslint.rules import all_rules

RULES = all_rules()


def _cases(kind: str):
    for rule in RULES:
        for i, ex in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, ex, id=f"{rule.code}-{kind.lower()}-{i}")


@pytest.mark.parametrize(("rule", "example"), list(_cases("VALID")))
def test_valid_examples_are_silent(rule, example):
    result = lint_module_source(example.text, "example.py", [rule])
    assert result.error is None, result.error
    assert not result.skipped, "example must import a framework, or the pre-filter skips it"
    found = [(d.range.start.line + 1, d.message) for d in result.diagnostics]
    assert found == [], f"{rule.code} should be silent ({example.note}), got {found}"


@pytest.mark.parametrize(("rule", "example"), list(_cases("INVALID")))
def test_invalid_examples_report_their_line(rule, example):
    assert example.code == rule.code
    result = lint_module_source(example.text, "example.py", [rule])
    assert result.error is None, result.error
    lines = sorted({d.range.start.line + 1 for d in result.diagnostics if d.code == rule.code})
    assert lines == [example.line], f"{rule.code} ({example.note}): expected line {example.line}, got {lines}"
    for d in result.diagnostics:
        assert d.scope, "every finding names its loss scope"


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_rule_metadata_is_complete(rule):
    import re

    assert re.fullmatch(r"LL\d{3}", rule.code)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
    assert rule.__module__.rsplit(".", 1)[-1].startswith(rule.code.lower() + "_")
    for section in ("summary", "what_it_does", "why_bad", "example", "use_instead", "fix_safety"):
        assert getattr(rule, section).strip(), f"{rule.code} lacks {section}"
    assert len(rule.VALID) >= 6 and len(rule.INVALID) >= 6, "at least 6 examples of each kind"


def test_codes_and_names_are_unique():
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)


@pytest.mark.parametrize(("rule", "example"), list(_cases("INVALID")))
def test_invalid_examples_carry_their_expected_fix(rule, example):
    from losslint.fixes.apply import apply_edits

    result = lint_module_source(example.text, "example.py", [rule])
    fixes = [d.fix for d in result.diagnostics if d.code == rule.code and d.fix is not None]
    if example.fixed_text is None:
        assert fixes == [], f"{rule.code} ({example.note}) offers a fix the example does not expect"
        return
    assert fixes, f"{rule.code} ({example.note}) expected a fix"
    fixed, left = apply_edits(example.text, [e for f in fixes for e in f.edits])
    assert left == []
    assert fixed == example.fixed_text
    again = lint_module_source(fixed, "example.py", [rule])
    assert again.error is None
    assert [d for d in again.diagnostics if d.fix is not None] == [], "fixing must be idempotent"
    for f in fixes:
        assert f.applicability in ("safe", "unsafe", "display-only") and f.title
