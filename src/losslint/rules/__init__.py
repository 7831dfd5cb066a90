"""Rule discovery: every module `llNNN_*.py` in this package holds exactly one `Rule` subclass."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import lru_cache

from losslint.rules.base import Rule

_MODULE_RE = re.compile(r"^ll\d{3}_[a-z0-9_]+$")


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    found: list[type[Rule]] = []
    for info in pkgutil.iter_modules(__path__):
        if not _MODULE_RE.match(info.name):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        classes = [v for v in vars(module).values()
                   if isinstance(v, type) and issubclass(v, Rule) and v is not Rule and v.__module__ == module.__name__]
        if len(classes) != 1:
            raise RuntimeError(f"{module.__name__} must define exactly one Rule subclass, found {len(classes)}")
        found.append(classes[0])
    return tuple(sorted(found, key=lambda r: r.code))


def rule_by_id(ident: str) -> type[Rule] | None:
    ident = ident.strip()
    for r in all_rules():
        if r.code.lower() == ident.lower() or r.name == ident.lower():
            return r
    return None
