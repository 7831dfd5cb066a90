"""The module index: one pre-pass over a parsed file that records what the analyses need.

It records imports, functions and classes, every assignment with the order and block of its statement (so value
facts can find the definition that reaches a use), call sites, returns and `with` blocks. Loss scopes and value facts
are computed from it on demand; rules never walk the tree to find them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from losslint.analysis.names import ImportTable, dotted_name
from losslint.analysis.ops import Op, op_for_method, op_for_qualified
from losslint.analysis.walk import Dispatch, walk


@dataclass(eq=False)
class StmtInfo:
    """Where a statement stands: its order in the file, its enclosing blocks and function."""

    index: int
    path: tuple[int, ...]
    func: "FuncInfo | None"
    node: cst.CSTNode


@dataclass(eq=False)
class Def:
    """One binding of a name: `x = value`, `x += value`, a `for` target, a parameter."""

    name: str
    kind: str  # "assign" | "aug" | "store" (`x[i] = v`) | "param" | "unknown"
    value: cst.BaseExpression | None
    stmt: StmtInfo | None
    operator: cst.BaseBinaryOp | None = None  # for "aug"

    @property
    def index(self) -> int:
        return self.stmt.index if self.stmt is not None else -1

    @property
    def path(self) -> tuple[int, ...]:
        return self.stmt.path if self.stmt is not None else ()


@dataclass(eq=False)
class ParamInfo:
    name: str
    position: int  # among positional parameters, `self`/`cls` excluded; -1 for keyword-only and star params
    default: cst.BaseExpression | None


@dataclass(eq=False)
class ClassInfo:
    node: cst.ClassDef
    name: str
    bases: list[str]  # qualified where an import resolves them, else as written
    methods: dict[str, "FuncInfo"] = field(default_factory=dict)
    self_attrs: dict[str, list[Def]] = field(default_factory=dict)  # self.x = ... in any method


@dataclass(eq=False)
class FuncInfo:
    node: cst.FunctionDef | cst.Lambda
    name: str
    cls: ClassInfo | None
    parent: "FuncInfo | None"
    params: list[ParamInfo]
    stmt: StmtInfo | None  # the `def` statement itself
    defs: dict[str, list[Def]] = field(default_factory=dict)
    returns: list[tuple[cst.BaseExpression, StmtInfo]] = field(default_factory=list)
    calls: list[tuple[cst.Call, StmtInfo]] = field(default_factory=list)
    nested: dict[str, "FuncInfo"] = field(default_factory=dict)
    decorators: list[str] = field(default_factory=list)

    @property
    def is_method(self) -> bool:
        return self.cls is not None and self.parent is None

    @property
    def qualname(self) -> str:
        if self.cls is not None and self.parent is None:
            return f"{self.cls.name}.{self.name}"
        if self.parent is not None:
            return f"{self.parent.qualname}.{self.name}"
        return self.name


@dataclass(eq=False)
class WithInfo:
    node: cst.With
    stmt: StmtInfo
    context_ops: list[str]  # qualified names of the context managers called


class ModuleIndex:
    """Built once per file by `ModuleIndex.build(module)`."""

    def __init__(self, module: cst.Module, path: str = "") -> None:
        self.module = module
        self.path = path
        self.imports = ImportTable()
        self.functions: list[FuncInfo] = []
        self.module_functions: dict[str, FuncInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.module_defs: dict[str, list[Def]] = {}
        self.module_calls: list[tuple[cst.Call, StmtInfo]] = []
        self.all_calls: list[tuple[cst.Call, StmtInfo]] = []
        self.withs: list[WithInfo] = []
        self.stmt_info: dict[int, StmtInfo] = {}
        self.func_of_node: dict[int, FuncInfo] = {}
        # id(block) -> id of the `if` statement whose chain (if / elif / else) it is a branch of: definitions in one
        # branch never reach a use in another.
        self.branch_chain: dict[int, int] = {}
        self._counter = 0
        self._blocks: list[int] = []
        self._funcs: list[FuncInfo] = []
        self._containers: list[ClassInfo | FuncInfo] = []
        self._stmts: list[StmtInfo] = []

    @classmethod
    def build(cls, module: cst.Module, path: str = "") -> "ModuleIndex":
        index = cls(module, path)
        visits = Dispatch.handlers(index, "visit_")
        leaves = Dispatch.handlers(index, "leave_")

        def enter(node: cst.CSTNode) -> None:
            fn = visits.get(type(node).__name__)
            if fn is not None:
                fn(node)

        def leave(node: cst.CSTNode) -> None:
            fn = leaves.get(type(node).__name__)
            if fn is not None:
                fn(node)

        walk(module, enter, leave)
        return index

    # ---- resolution helpers used by every analysis -------------------------------------------------------------
    def op_of(self, call: cst.Call) -> Op | None:
        """The canonical op a call resolves to, through imports or as a tensor method."""
        func = call.func
        qualified = self.imports.qualify(func)
        if qualified is not None:
            return op_for_qualified(qualified)
        if isinstance(func, cst.Attribute):
            receiver = func.value
            head = dotted_name(receiver)
            if head is not None:
                root = head.split(".", 1)[0]
                if root in ("self", "cls") and "." not in head:
                    return None
                if self.imports.is_module_alias(root):
                    return None  # a module attribute that is not in the table
            n_pos = sum(1 for a in call.args if a.keyword is None and not a.star)
            return op_for_method(func.attr.value, n_pos)
        return None

    def qualify(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify(node)

    # ---- statements and blocks --------------------------------------------------------------------------------
    def _enter_stmt(self, node: cst.CSTNode) -> None:
        self._counter += 1
        info = StmtInfo(self._counter, tuple(self._blocks), self._funcs[-1] if self._funcs else None, node)
        self.stmt_info[id(node)] = info
        self._stmts.append(info)

    def _leave_stmt(self) -> None:
        self._stmts.pop()

    @property
    def _stmt(self) -> StmtInfo | None:
        return self._stmts[-1] if self._stmts else None

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._enter_stmt(node)

    def leave_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._leave_stmt()

    def _compound(self, node: cst.CSTNode) -> None:
        self._enter_stmt(node)

    visit_While = visit_Try = visit_Match = _compound  # type: ignore[assignment]

    def visit_If(self, node: cst.If) -> None:
        self._compound(node)
        chain = self.branch_chain.get(id(node), id(node))  # an `elif` was registered by the `if` it hangs from
        self.branch_chain[id(node.body)] = chain
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            self.branch_chain[id(orelse)] = chain
        elif isinstance(orelse, cst.Else):
            self.branch_chain[id(orelse.body)] = chain

    def leave_If(self, node: cst.If) -> None:
        self._leave_stmt()

    leave_For = leave_While = leave_Try = leave_Match = leave_If  # type: ignore[assignment]

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._blocks.append(id(node))

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._blocks.pop()

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._blocks.append(id(node))
        self._enter_stmt(node)

    def leave_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._leave_stmt()
        self._blocks.pop()

    # ---- imports ----------------------------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        self.imports.add_import(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.imports.add_import_from(node)

    # ---- classes and functions --------------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._enter_stmt(node)
        bases = [self.imports.qualify(a.value) or dotted_name(a.value) or "" for a in node.bases]
        info = ClassInfo(node, node.name.value, bases)
        if not self._containers:
            self.classes[info.name] = info
        self._containers.append(info)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._containers.pop()
        self._leave_stmt()

    def _params(self, params: cst.Parameters, is_method: bool) -> list[ParamInfo]:
        out: list[ParamInfo] = []
        pos = 0
        positional = list(params.posonly_params) + list(params.params)
        for i, p in enumerate(positional):
            if i == 0 and is_method and p.name.value in ("self", "cls"):
                continue
            out.append(ParamInfo(p.name.value, pos, p.default))
            pos += 1
        for p in params.kwonly_params:
            out.append(ParamInfo(p.name.value, -1, p.default))
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                out.append(ParamInfo(star.name.value, -1, None))
        return out

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        container = self._containers[-1] if self._containers else None
        cls_info = container if isinstance(container, ClassInfo) else None
        parent = container if isinstance(container, FuncInfo) else None
        if parent is not None:
            self._bind(node.name.value, "unknown", None)  # binds in the enclosing function
        self._enter_stmt(node)
        info = FuncInfo(
            node=node,
            name=node.name.value,
            cls=cls_info,
            parent=parent,
            params=self._params(node.params, cls_info is not None),
            stmt=self._stmt,
        )
        info.decorators = [
            self.imports.qualify(_decorator_target(d.decorator)) or dotted_name(_decorator_target(d.decorator)) or ""
            for d in node.decorators
        ]
        for p in info.params:
            info.defs.setdefault(p.name, []).append(Def(p.name, "param", p.default, None))
        self.functions.append(info)
        self.func_of_node[id(node)] = info
        if cls_info is not None:
            cls_info.methods[info.name] = info
        elif parent is not None:
            parent.nested[info.name] = info
        else:
            self.module_functions[info.name] = info
        self._funcs.append(info)
        self._containers.append(info)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._containers.pop()
        self._funcs.pop()
        self._leave_stmt()

    # ---- bindings ---------------------------------------------------------------------------------------------
    def _bind(self, name: str, kind: str, value: cst.BaseExpression | None,
              operator: cst.BaseBinaryOp | None = None) -> None:
        d = Def(name, kind, value, self._stmt, operator)
        table = self._funcs[-1].defs if self._funcs else self.module_defs
        table.setdefault(name, []).append(d)

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            self._bind(target.value, "assign" if value is not None else "unknown", value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                inner = el.value
                if isinstance(inner, cst.StarredElement):
                    inner = inner.value
                self._bind_target(inner, None)
        elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and value is not None:
            # `m[i, j] = 1` changes some elements of `m`: a "store" widens the value `m` had before
            self._bind(target.value.value, "store", value)
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) \
                and target.value.value == "self" and self._funcs and self._funcs[-1].cls is not None:
            cls = self._funcs[-1].cls
            cls.self_attrs.setdefault(target.attr.value, []).append(
                Def(target.attr.value, "assign" if value is not None else "unknown", value, self._stmt))

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._bind_target(t.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind_target(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value, "aug", node.value, node.operator)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, node.value)

    def visit_For(self, node: cst.For) -> None:  # type: ignore[override]
        self._compound(node)
        self._bind_target(node.target, None)

    def visit_With(self, node: cst.With) -> None:
        self._compound(node)
        ops = []
        for item in node.items:
            if isinstance(item.item, cst.Call):
                ops.append(self.imports.qualify(item.item.func) or dotted_name(item.item.func) or "")
            if item.asname is not None:
                self._bind_target(item.asname.name, None)
        self.withs.append(WithInfo(node, self._stmt, ops))  # type: ignore[arg-type]

    def leave_With(self, node: cst.With) -> None:
        self._leave_stmt()

    # ---- calls and returns ------------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        stmt = self._stmt
        if stmt is None:
            return
        entry = (node, stmt)
        self.all_calls.append(entry)
        if self._funcs:
            self._funcs[-1].calls.append(entry)
        else:
            self.module_calls.append(entry)

    def visit_Return(self, node: cst.Return) -> None:
        if self._funcs and node.value is not None and self._stmt is not None:
            self._funcs[-1].returns.append((node.value, self._stmt))

    def visit_Lambda(self, node: cst.Lambda) -> None:
        # Lambdas are small loss bodies too (`loss=lambda y, p: ...`); record them as functions without statements.
        info = FuncInfo(node=node, name="<lambda>", cls=None, parent=self._funcs[-1] if self._funcs else None,
                        params=self._params(node.params, False), stmt=self._stmt)
        for p in info.params:
            info.defs.setdefault(p.name, []).append(Def(p.name, "param", p.default, None))
        if self._stmt is not None:
            info.returns.append((node.body, self._stmt))
        self.func_of_node[id(node)] = info
        self.functions.append(info)


def operand(call: cst.Call, op: Op) -> cst.BaseExpression | None:
    """The tensor an op applies to: the receiver of `x.log()`, the first positional argument of `tf.math.log(x)`."""
    if op.is_method and isinstance(call.func, cst.Attribute):
        return call.func.value
    for a in call.args:
        if a.keyword is None and not a.star:
            return a.value
    return None


def function_named(index: ModuleIndex, expr: cst.BaseExpression, stmt: StmtInfo) -> FuncInfo | None:
    """The same-module function an expression names (a def, a nested def, a method via self, a lambda)."""
    if isinstance(expr, cst.Name):
        f = stmt.func
        while f is not None:
            if expr.value in f.nested:
                return f.nested[expr.value]
            f = f.parent
        return index.module_functions.get(expr.value)
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
        f = stmt.func
        while f is not None and f.cls is None:
            f = f.parent
        if f is not None and f.cls is not None:
            return f.cls.methods.get(expr.attr.value)
    if isinstance(expr, cst.Lambda):
        return index.func_of_node.get(id(expr))
    return None


def _decorator_target(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.func if isinstance(expr, cst.Call) else expr
