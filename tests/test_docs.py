"""docs/rules/ is generated from the rules' metadata; this fails when someone forgets to regenerate it."""

from __future__ import annotations

from pathlib import Path

from losslint.docs import expected_files

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules"


def test_rule_pages_are_up_to_date():
    wanted = expected_files()
    present = {p.name for p in DOCS.glob("*.md")}
    assert present == set(wanted), "run `python -m losslint.docs` to regenerate docs/rules/"
    stale = [name for name, text in wanted.items() if (DOCS / name).read_text(encoding="utf-8") != text]
    assert stale == [], f"stale pages {stale}: run `python -m losslint.docs`"
