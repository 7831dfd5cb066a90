"""Module-level loss expressions (TF1 graph code): a fix outside any function is confirmed on a synthetic function.

`cnn_xent = -tf.reduce_sum(y_ * tf.log(y_hat))` at module level cannot be called. Its free names that are neither
imports nor constants (`y_`, `y_hat`: placeholders, model outputs) become the parameters of a function appended to
the module, `def losslint_expression(y_, y_hat): return <expression>`, built the same way from the fixed module; the
usual harness and verdict then apply. A parameter's role comes from the value it was assigned (`softmax(...)` or
`sigmoid(...)`: probabilities; a `placeholder` named like `y_`: labels) before falling back to its name.
"""

from __future__ import annotations

import builtins
import textwrap
from dataclasses import dataclass

import libcst as cst

from losslint.fixes.confirm.extract import Isolation, _check_constant, free_names, module_bindings, only_called

FUNCTION = "losslint_expression"

_PROBS = ("softmax", "sigmoid")
_MASK_OPS = ("not_equal", "equal", "greater", "less", "cast")


@dataclass(frozen=True)
class Synthetic:
    module: cst.Module  # the original module with the synthetic function appended
    chain: list[cst.CSTNode]
    fixed_source: str  # the fixed module with its synthetic function appended
    roles: dict[str, str]


def _expression(stmt: cst.CSTNode) -> cst.BaseExpression:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)) and small.value is not None:
            return small.value
        if isinstance(small, cst.Expr):
            return small.value
    raise Isolation("the fix is not in a function or a module-level assignment")


def _callee(value: cst.BaseExpression) -> str:
    node = value
    while isinstance(node, cst.UnaryOperation):
        node = node.expression
    if isinstance(node, cst.Call):
        f = node.func
        if isinstance(f, cst.Attribute):
            return f.attr.value
        if isinstance(f, cst.Name):
            return f.value
    return ""


def _role(name: str, value: cst.BaseExpression | None, table: dict | None = None) -> str | None:
    low = name.lower()
    callee = _callee(value).lower() if value is not None else ""
    if any(callee.endswith(p) for p in _PROBS) or _returns_activation(_callee(value) if value is not None else "",
                                                                      table or {}):
        return "y_pred"
    if "logit" in low:
        return "y_logits"
    if "mask" in low or (callee in _MASK_OPS and "mask" in low):
        return "mask"
    if callee == "placeholder" and (low.endswith("_") or low in ("labels", "label", "target", "targets", "y")):
        return "y_true"
    return None


def _returns_activation(callee: str, table: dict) -> bool:
    """`callee` is a module-level function every `return` of which is a sigmoid/softmax call (a GAN's
    `discriminator(x)`): its result is a probability."""
    bs = table.get(callee) if callee else None
    if not bs or bs[-1].kind != "def" or not isinstance(bs[-1].node, cst.FunctionDef):
        return False
    returns: list[cst.Return] = []
    last: dict[str, cst.BaseExpression] = {}  # each name's last assignment in the function, in source order

    class _R(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is bs[-1].node  # not the returns of nested functions

        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                if isinstance(t.target, cst.Name):
                    last[t.target.value] = node.value

        def visit_Return(self, node: cst.Return) -> None:
            returns.append(node)

    bs[-1].node.visit(_R())

    def activation(v: cst.BaseExpression | None) -> bool:
        if isinstance(v, cst.Name):  # `out = tf.nn.sigmoid(out); return out`
            v = last.get(v.value)
        return v is not None and any(_callee(v).lower().endswith(p) for p in _PROBS)

    return bool(returns) and all(activation(r.value) for r in returns)


_TENSOR_MAKERS = frozenset({"placeholder", "placeholder_with_default", "Variable", "get_variable", "Input",
                            "sparse_placeholder"})


def _makes_tensor(value: cst.BaseExpression) -> bool:
    found = False

    class _V(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            nonlocal found
            f = node.func
            name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else ""
            found = found or name in _TENSOR_MAKERS

    value.visit(_V())
    return found


def _params(module: cst.Module, body: list[cst.CSTNode], codes: list[cst.CSTNode]) -> tuple[list[str], dict]:
    """The synthetic function's parameters: the names `codes` read that the statements `body` do not assign first
    and that are tensors (placeholders, variables, model outputs, values computed from them), with their roles."""
    table = module_bindings(module)
    own = {id(n) for st in body for n in (st, *getattr(st, "body", ()))}

    def import_or_constant(name: str) -> bool:
        bs = table.get(name)
        return bool(bs) and bs[-1].kind in ("import", "assign")

    names: list[str] = []
    local: set[str] = set()
    for c in codes:
        for n in free_names(c):
            if n not in names and n not in local:
                names.append(n)
        local |= _assigned(c)
    memo: dict[str, bool] = {}

    def is_tensor(name: str) -> bool:
        """A placeholder, a variable, a model output or anything computed from one: fed, not copied."""
        if name in memo:
            return memo[name]
        memo[name] = False  # cycles: not a tensor
        bs = [b for b in table.get(name, []) if id(b.node) not in own]
        if not bs or bs[-1].kind in ("import", "def", "class"):
            return False
        value = getattr(bs[-1].node, "value", None)
        found = value is None or _makes_tensor(value) or any(is_tensor(n) for n in free_names(value))
        if not found:
            try:
                _check_constant(value, name, import_or_constant)
            except Isolation:
                found = True
        memo[name] = found
        return found

    params, roles = [], {}
    for n in names:
        bs = [b for b in table.get(n, []) if id(b.node) not in own]
        if not bs:
            if hasattr(builtins, n) or any(only_called(c, n) for c in codes):
                continue  # a builtin, or an undefined model the harness stands in for (or refuses)
            if "*" in table:
                raise Isolation(f"`{n}` may come from `{table['*'][0].code.strip()}`")
            params.append(n)  # data from elsewhere (another cell, a loader): fed, its role from its name
            continue
        if not is_tensor(n):
            continue  # an import, a function or a constant: the harness copies it
        value = getattr(bs[-1].node, "value", None)
        params.append(n)
        role = _role(n, value, table)
        if role is not None:
            roles[n] = role
    if not params:
        raise Isolation("the fix is not inside a function, and its module-level statement reads no placeholder, "
                        "variable or model output to feed")
    return params, roles


def _assigned(node: cst.CSTNode) -> set[str]:
    out: set[str] = set()
    if isinstance(node, cst.SimpleStatementLine):
        for small in node.body:
            if isinstance(small, cst.Assign):
                for t in small.targets:
                    if isinstance(t.target, cst.Name):
                        out.add(t.target.value)
            elif isinstance(small, (cst.AnnAssign, cst.AugAssign)) and isinstance(small.target, cst.Name):
                out.add(small.target.value)
    return out


def _with_function(module: cst.Module, params: list[str], lead: list[cst.CSTNode],
                   expr: cst.BaseExpression) -> cst.Module:
    body = "".join(textwrap.indent(module.code_for_node(st).strip("\n") + "\n", "    ") for st in lead)
    code = f"def {FUNCTION}({', '.join(params)}):\n{body}    return {module.code_for_node(expr)}\n"
    func = cst.parse_module(code).body[0]
    return module.with_changes(body=list(module.body) + [func])


_SCOPES = ("name_scope", "variable_scope", "device", "variable_creator_scope")


def flatten_scopes(module: cst.Module) -> cst.Module:
    """The module with its module-level `with tf.name_scope(...):` / `variable_scope` / `device` blocks replaced by
    their statements (the same nodes): TF1 graph code builds its loss inside them, and they do not change values."""
    body: list = []
    changed = False
    for st in module.body:
        if isinstance(st, cst.With) and isinstance(st.body, cst.IndentedBlock) and all(
                isinstance(item.item, cst.Call) and isinstance(item.item.func, (cst.Attribute, cst.Name))
                and (item.item.func.attr if isinstance(item.item.func, cst.Attribute) else item.item.func).value
                in _SCOPES and item.asname is None for item in st.items):
            body.extend(st.body.body)
            changed = True
        else:
            body.append(st)
    return module.with_changes(body=body) if changed else module


def synthesize(module: cst.Module, stmt: cst.CSTNode, fixed_source: str) -> Synthetic:
    """The synthetic function for the module-level statement `stmt` that computes the loss, in both versions. When
    the fix edits earlier module-level assignments (`probs = softmax(model(x))` before `loss = criterion(probs, y)`),
    those statements, from the first edited one on, become the function's body."""
    try:
        index = list(module.body).index(stmt)  # type: ignore[arg-type]
    except ValueError:
        raise Isolation("the fix is inside a block (if/with/for) at module level") from None
    expr = _expression(stmt)
    try:
        fixed_module = flatten_scopes(cst.parse_module(fixed_source))
    except cst.ParserSyntaxError as exc:
        raise Isolation(f"the fixed code does not parse: {str(exc).splitlines()[0]}") from None
    if len(fixed_module.body) != len(module.body):
        raise Isolation("the fix adds or removes module-level statements")
    fixed_expr = _expression(fixed_module.body[index])
    changed = [i for i, (a, b) in enumerate(zip(module.body, fixed_module.body)) if not a.deep_equals(b)]
    later = [i for i in changed if i > index]
    if later:
        raise Isolation(f"the fix also changes `{module.code_for_node(module.body[later[0]]).strip()[:40]}`, after "
                        f"the statement that computes the loss")
    first = min(changed + [index])
    lead, fixed_lead = list(module.body[first:index]), list(fixed_module.body[first:index])
    for st in lead + fixed_lead:
        if not (isinstance(st, cst.SimpleStatementLine) and _assigned(st)):
            raise Isolation(f"the fix also changes `{module.code_for_node(module.body[first]).strip()[:40]}`, and "
                            f"the statements up to the loss are not all plain assignments")
    params, roles = _params(module, lead + [stmt], [*lead, expr, *fixed_lead, fixed_expr])
    original = _with_function(module, params, lead, expr)
    fixed = _with_function(fixed_module, params, fixed_lead, fixed_expr)
    func = original.body[-1]
    return Synthetic(original, [func], fixed.code, roles)
