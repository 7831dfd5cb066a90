"""Resolve names through the file's own imports: `tf.math.log` -> `tensorflow.math.log`.

Nothing is imported; star imports and names that no import binds resolve to None, so they never produce a finding.
"""

from __future__ import annotations

import libcst as cst

from losslint.analysis.walk import walk


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def names_in(expr: cst.CSTNode) -> list[str]:
    """The variable names an expression mentions, in source order: `a` of `a.b`, never a keyword's name."""
    out: list[str] = []

    def enter(n: cst.CSTNode) -> bool:
        if isinstance(n, cst.Name):
            out.append(n.value)
        if isinstance(n, cst.Attribute):
            out.extend(names_in(n.value))
            return False
        if isinstance(n, cst.Arg):
            out.extend(names_in(n.value))
            return False
        return True

    walk(expr, enter)
    return out


def _module_path(node: cst.BaseExpression | None) -> str:
    return dotted_name(node) if node is not None else ""  # type: ignore[return-value]


class ImportTable:
    """Local name -> fully qualified dotted path, from every import statement in the module."""

    def __init__(self) -> None:
        self.bindings: dict[str, str] = {}
        self.has_star = False

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _module_path(alias.name)
            if not full:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.bindings[alias.asname.name.value] = full
            else:
                # `import a.b.c` binds `a`
                head = full.split(".", 1)[0]
                self.bindings.setdefault(head, head)

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative:
            return  # a sibling module of the user's: not a framework
        module = _module_path(node.module)
        if not module:
            return
        if isinstance(node.names, cst.ImportStar):
            self.has_star = True
            return
        for alias in node.names:
            name = _module_path(alias.name)
            if not name:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.bindings[local] = f"{module}.{name}"

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """Qualified name of a Name/Attribute chain whose head an import binds."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        target = self.bindings.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def is_module_alias(self, name: str) -> bool:
        return name in self.bindings

    def roots(self) -> set[str]:
        return {v.split(".", 1)[0] for v in self.bindings.values()}
