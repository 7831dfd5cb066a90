"""Every code block of the seed blog posts, linted with every rule, must report exactly its `# expect:` lines.

tests/fixtures/seeds/ holds one file per code block, verbatim. A trailing `# expect: LL101` (or
`# expect: LL101, LL103`) marks a line a rule must report; every other line must stay silent. `# later: LLxxx
(reason)` comments mark real bugs that a rule not written yet will catch: they are documentation for whoever
writes that rule, and this test ignores them until the rule exists (then the fixture's `later` becomes `expect`).

Verdicts this test pins down (see the research notes, "Verdicts on the seed-document claims"):
- s001_ex3: `tf.reduce_mean(tf.math.log(1 + tf.abs(y_true - y_pred)))` is NOT unstable: log(1 + |d|) >= 0.
- s002_ex1: `tf.square(y_true - y_pred)` and `tf.math.squared_difference` give bitwise-identical gradients.
- s000_ex2: `tf.abs(y_true - y_pred) / (tf.abs(y_true) + epsilon)` with epsilon = 1e-8 is a guarded division.
- s002_ex2: the (B,) vs (B, 10) "broadcasting error" is stated only in a comment (and raises loudly at run time).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from losslint.engine import lint_module_source
from losslint.rules import all_rules

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
FIXTURES = sorted(SEEDS.glob("s*.py"))
_EXPECT_RE = re.compile(r"#\s*expect:\s*(LL\d{3}(?:\s*,\s*LL\d{3})*)")
_LATER_RE = re.compile(r"#\s*later:\s*(LL\d{3})\b")


def _comments(source: str) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]


def expected_findings(source: str) -> set[tuple[int, str]]:
    found = set()
    for line, text in _comments(source):
        for m in _EXPECT_RE.finditer(text):
            found.update((line, code.strip()) for code in m.group(1).split(","))
    return found


def test_every_seed_code_block_has_a_fixture():
    # 3 blocks in seed 000, 4 in seed 001 (example 1 and its "corrected" version, 2, 3), 3 in seed 002.
    assert len(FIXTURES) == 10, [f.name for f in FIXTURES]


@pytest.mark.parametrize("path", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_seed_findings_match_expectations(path: Path):
    source = path.read_text(encoding="utf-8")
    result = lint_module_source(source, str(path), all_rules())
    assert result.error is None, result.error
    assert not result.skipped, "every seed imports tensorflow: the pre-filter must not skip it"
    got = {(d.range.start.line + 1, d.code) for d in result.diagnostics}
    expected = expected_findings(source)
    assert got == expected, (
        f"{path.name}: unexpected {sorted(got - expected)}, missing {sorted(expected - got)}; "
        + "; ".join(f"{d.range.start.line + 1}: {d.code} {d.message}" for d in result.diagnostics)
    )


@pytest.mark.parametrize("path", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_later_notes_name_rules_not_written_yet(path: Path):
    """A `# later: LLxxx` whose rule now exists must be turned into `# expect:` (or dropped) by its author."""
    existing = {r.code for r in all_rules()}
    source = path.read_text(encoding="utf-8")
    stale = [(line, m.group(1)) for line, text in _comments(source) for m in _LATER_RE.finditer(text)
             if m.group(1) in existing]
    assert not stale, f"{path.name}: rule(s) now exist, replace `later` by `expect` where they fire: {stale}"
