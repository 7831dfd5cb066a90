"""Fixes to the loss given to `model.compile(...)`: confirmed on a synthetic function that calls that loss.

`model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")` holds no loss function to cut out: the fix
(LL601: `loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)`) is an argument. A fix whose edits all
fall inside compile's loss (the `loss=` keyword or the second positional argument), or inside the value of the
assignment that name is bound from (`loss_fn = tf.keras.losses.CategoricalCrossentropy()` ... `loss=loss_fn`, in the
module or in the function that compiles; followed as `ModelFlow` follows it), is confirmed on a function appended to
the original and to the fixed module:

    def losslint_compiled_loss(y_true, y_pred):
        return tf.reduce_mean(<the loss>(y_true, y_pred))

`<the loss>` is the compile loss resolved to a callable, as Keras resolves it: a string through `keras.losses.get`
(spelled with the module's own Keras import), a loss object, a function or a name bound to one as written, inlined at
its definition when it is bound inside the function. The mean is compile's default reduction ("sum over batch size"),
so a string loss (a per-sample function) and the loss class that replaces it report comparable scalars. The module's
TensorFlow import names `tf.reduce_mean`; without one the synthetic module imports TensorFlow itself.

The loss is given what the model outputs (`ModelFlow.model_output`, as LL601 decides): synthetic logits when its last
layer is linear; when it ends in a softmax/sigmoid (log_softmax), the function takes logits `y_logits` and applies that
activation itself (`tf.nn.softmax(y_logits, axis=-1)`), so every input, edge cases included (all-zero, +-100
logits), is one the model can produce and gradients are taken through the activation, as in training. The last axis
is as wide as the last layer when a literal says so; the label kind (sparse/one-hot/binary) follows from the loss's
name (else `infer_inputs` reads it from the harness). The usual harness, runner and verdict then apply, with the fix's
own `expect`. A loss the harness cannot copy (the user's own, imported from another module; a name bound to a
function's parameter) leaves the fix unconfirmed (None) with the reason.

For a fix that flips `from_logits` of one loss (the LL601 fixes), a second run checks what the fix means: on logits z,
the `from_logits=True` version of the pair on z must equal the probability version on softmax(z) (sigmoid(z) for the
binary losses) in values and gradients, i.e. the fixed loss on the model's outputs computes what the original was
written to compute. Its figures go to the evidence (`intent`); they do not change the verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import libcst as cst

from losslint.analysis.calls import arg
from losslint.fixes.confirm import Verdict, _describe, _Job, _make_job
from losslint.fixes.confirm.extract import Isolation, module_bindings

FUNCTION = "losslint_compiled_loss"
_DEPTH = 4  # names followed from compile's loss to where the loss is built


@dataclass
class Site:
    """One `compile(...)` call with a loss argument, and where that loss is built."""

    model: str
    compile_call: cst.Call
    nodes: list[cst.BaseExpression]  # the loss argument, then the values of the names it is bound through
    region: object
    event: object

    @property
    def built(self) -> cst.BaseExpression:
        return self.nodes[-1]


def _loss_arg(call: cst.Call) -> cst.BaseExpression | None:
    return arg(call, "loss", 1)


def sites(index) -> list[Site]:  # noqa: ANN001
    """Every `<model>.compile(...)` with a loss, in statement order."""
    from losslint.analysis.model_flow import model_flow

    flow = model_flow(index)
    events = sorted(((r, e) for r in flow.regions.values() for e in r.events if e.kind == "compile"),
                    key=lambda t: (t[1].stmt.index, id(t[1].call)))
    out = []
    for region, ev in events:
        expr = _loss_arg(ev.call)
        if expr is None:
            continue
        nodes = [e for e, _ in flow.assignment_chain(region, expr, ev.stmt, _DEPTH)]
        out.append(Site(ev.model, ev.call, nodes, region, ev))
    return out


def _site_of(module: cst.Module, index, edits) -> tuple[int, Site] | None:  # noqa: ANN001
    """(its ordinal, the site) when every edit lies inside one site's loss nodes; None when none does. Raises
    Isolation when the fix edits a compile loss and something else too."""
    from losslint.positions import node_ranges

    found = sites(index)
    if not found:
        return None
    ranges = node_ranges(module, [n for s in found for n in s.nodes])

    def inside(e, node) -> bool:  # noqa: ANN001
        r = ranges.get(id(node))
        if r is None:
            return False
        start = (e.range.start.line + 1, e.range.start.column)
        end = (e.range.end.line + 1, e.range.end.column)
        return r[0] <= start and end <= r[1]

    hits = [[any(inside(e, n) for n in s.nodes) for e in edits] for s in found]
    for k, s in enumerate(found):
        if all(hits[k]):
            return k, s
    if any(any(h) for h in hits):
        raise Isolation("the fix edits the loss given to `compile(...)` and code outside it")
    return None


def _index(module: cst.Module, path: str):  # noqa: ANN202
    from losslint.analysis.index import ModuleIndex

    return ModuleIndex.build(module, path)


def _module_import(table: dict, name: str) -> str | None:
    bs = table.get(name)
    return bs[-1].module if bs and bs[-1].kind == "import" else None


def _tf_alias(table: dict) -> str | None:
    for name in table:
        if _module_import(table, name) in ("tensorflow", "tensorflow.compat.v2"):
            return name
    return None


def _getter(index, table: dict, out, tf: str) -> str:  # noqa: ANN001
    """`keras.losses.get`, spelled with the module's own Keras import (that of the model's last layer), else
    through TensorFlow's."""
    from losslint.analysis.spelling import keras_loss_class

    like = index.qualify(out.node.func) if out is not None and isinstance(getattr(out, "node", None), cst.Call) \
        else None
    try:
        spelled = keras_loss_class(index, "get", like)
    except Exception:  # noqa: BLE001 - a spelling hint only
        spelled = None
    if spelled and "." in spelled and _module_import(table, spelled.split(".", 1)[0]):
        return spelled
    return f"{tf}.keras.losses.get"


def _callable(module: cst.Module, expr: cst.BaseExpression, getter: str) -> tuple[str, str]:
    """(code calling-ready, how it was resolved) for a compile loss."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        value = expr.evaluated_value
        if not isinstance(value, str):
            raise Isolation("compile's loss is a bytes literal")
        return f"{getter}({json.dumps(value)})", f"the string, through `{getter}`"
    if isinstance(expr, (cst.List, cst.Tuple, cst.Dict)):
        raise Isolation("compile is given a loss per model output (a list or dict): only a single loss is confirmed")
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        return module.code_for_node(expr), "as written"
    return f"({module.code_for_node(expr)})", "as written"


def _func(params: tuple[str, str], body: str) -> cst.FunctionDef:
    code = f"def {FUNCTION}({params[0]}, {params[1]}):\n    return {body}\n"
    return cst.parse_module(code).body[0]  # type: ignore[return-value]


def _with(module: cst.Module, extra: list[cst.CSTNode], func: cst.FunctionDef) -> cst.Module:
    return module.with_changes(body=list(module.body) + extra + [func])


_SQUASH = {"softmax": "{tf}.nn.softmax({x}, axis=-1)", "sigmoid": "{tf}.math.sigmoid({x})",
           "log_softmax": "{tf}.nn.log_softmax({x}, axis=-1)"}


def _model_output(out, loss) -> tuple[str | None, str, str]:  # noqa: ANN001
    """(the model's final activation, applied in the synthetic function to logits, or None when the model outputs its
    logits or its output is not known; the role of the synthetic input; what the loss is given)."""
    code = " ".join(cst.Module(body=[]).code_for_node(out.node).split()) if out is not None else ""
    code = code if len(code) <= 60 else code[:57] + "..."
    if out is not None and out.activation in _SQUASH:
        what = "log-probabilities" if out.activation == "log_softmax" else "probabilities"
        squash = _SQUASH[out.activation].format(tf="tf", x="z")
        return out.activation, "y_logits", (f"{what}: the model ends in a {out.activation} (`{code}`), applied to "
                                            f"synthetic logits z by `{squash}` (no Keras cached-logits rescue)")
    if out is not None and out.activation == "linear":
        return None, "y_logits", f"logits: the model's last layer is linear (`{code}`)"
    if loss is not None and loss.from_logits:
        return None, "y_logits", "logits (the model's output is not known: as the original loss reads them)"
    return None, "y_pred", "probabilities (the model's output is not known: as the original loss reads them)"


_LABELS = (("sparse_", "sparse"), ("binary_", "binary"), ("categorical_", "onehot"))


def compiled_jobs(module: cst.Module, source: str, index, path: str, edits: list,  # noqa: ANN001
                  fixed_source: str, dtype: str, base: dict, batch: int | None = None) -> list[_Job] | None:
    """The jobs confirming a fix to compile's loss (the main job last; before it, the `intent` check when there is
    one), or None when the fix is not in a compile loss."""
    if not edits or "compile" not in source:
        return None
    try:
        if index is None:
            index = _index(module, path)
        at = _site_of(module, index, edits)
    except Isolation as exc:
        return [_Job(base=base, verdict=Verdict(None, dict(base, reason=f"the loss cannot be isolated: {exc}")))]
    if at is None:
        return None
    k, site = at
    try:
        return _jobs(module, index, path, k, site, fixed_source, dtype, base, batch)
    except Isolation as exc:
        return [_Job(base=base, verdict=Verdict(None, dict(base, reason=f"the compile loss cannot be confirmed: "
                                                                        f"{exc}")))]


def _jobs(module: cst.Module, index, path: str, k: int, site: Site, fixed_source: str,  # noqa: ANN001
          dtype: str, base: dict, batch: int | None) -> list[_Job]:
    from losslint.analysis.model_flow import model_flow

    flow = model_flow(index)
    try:
        fixed_module = cst.parse_module(fixed_source)
    except cst.ParserSyntaxError as exc:
        return [_Job(base=base, verdict=Verdict(False, dict(base, reason=f"the fixed code does not parse: "
                                                                          f"{str(exc).splitlines()[0]}")))]
    fixed_index = _index(fixed_module, path)
    fixed_sites = sites(fixed_index)
    if len(fixed_sites) != len(sites(index)):
        raise Isolation("the fix adds or removes a `compile(...)` loss")
    fsite = fixed_sites[k]
    out = flow.model_output(site.region, site.model, site.event.stmt)
    loss0 = flow.compile_loss(site.event, site.region)
    loss1 = model_flow(fixed_index).compile_loss(fsite.event, fsite.region)
    table = module_bindings(module)
    tf = _tf_alias(table)
    extra: list[cst.CSTNode] = []
    if tf is None:
        tf = "tf" if "tf" not in table else "losslint_tf"
        extra = list(cst.parse_module(f"import tensorflow as {tf}\n").body)
    getter = _getter(index, table, out, tf)
    c0, how0 = _callable(module, site.built, getter)
    c1, how1 = _callable(fixed_module, fsite.built, getter)
    act, role, output = _model_output(out, loss0)
    params = ("y_true", "y_logits" if act is not None else "y_pred")
    pred = _SQUASH[act].format(tf=tf, x="y_logits") if act is not None else "y_pred"  # what the model outputs
    orig = _with(module, extra, _func(params, f"{tf}.reduce_mean({c0}(y_true, {pred}))"))
    fixed = _with(fixed_module, extra, _func(params, f"{tf}.reduce_mean({c1}(y_true, {pred}))"))
    shown = {
        "model": site.model,
        "original": " ".join(module.code_for_node(site.built).split()),
        "fixed": " ".join(fixed_module.code_for_node(fsite.built).split()),
        "resolved": how0 if how0 == how1 else f"{how0}; fixed: {how1}",
        "run_as": f"{tf}.reduce_mean(<the loss>(y_true, {pred})): compile's default reduction",
        "model_output": output,
    }
    if len(site.nodes) > 1:
        shown["bound_through"] = [" ".join(module.code_for_node(n).split()) for n in site.nodes[:-1]]
    mbase = dict(base, compiled_loss=shown)
    job = _make_job([orig.body[-1]], orig, fixed.code, {"y_true": "y_true", params[1]: role}, dtype, mbase, batch)
    if job.verdict is not None:
        r = job.verdict.evidence.get("reason", "")
        if job.verdict.confirmed is None and r.startswith("the loss cannot be isolated: "):
            r = f"the compile loss `{shown['original'][:60]}` cannot be isolated: " + r.split(": ", 1)[1]
            job.verdict = Verdict(None, dict(job.verdict.evidence, reason=r))
        return [job]
    assert job.inputs is not None
    kind = next((k for prefix, k in _LABELS if loss0 is not None and loss0.name.startswith(prefix)), None)
    if kind is not None:  # the label kind the loss's name says (the harness text also names the activation)
        job.inputs = dict(job.inputs, label_kind=kind)
    units = getattr(out, "units", None)
    if isinstance(units, int) and job.inputs["shape"] and \
            (2 <= units <= 64 or units == 1 and job.inputs["label_kind"] in ("binary", "regression")):
        job.inputs = dict(job.inputs, shape=list(job.inputs["shape"][:-1]) + [units])
    job.base["shape"], job.base["label_kind"] = job.inputs["shape"], job.inputs["label_kind"]
    job.base["inputs"] = {p["name"]: _describe(p, job.inputs) for p in job.inputs["params"]}
    companion = _intent_job(module, fixed_module, extra, tf, c0, c1, out, loss0, loss1, job, dtype, base)
    return [companion, job] if companion is not None else [job]


# ---- what the fix means: the from_logits pair agrees through the activation -----------------------------------
class _IntentJob(_Job):
    """The intent check: its verdict, when it comes, is summarised into the main job's evidence (`sink`). It runs
    before the main job (it comes first in the file's job list), so the main job's verdict carries the figures."""

    sink: dict | None = None

    @property  # type: ignore[override]
    def verdict(self) -> Verdict | None:
        return self.__dict__.get("_verdict")

    @verdict.setter
    def verdict(self, v: Verdict | None) -> None:
        self.__dict__["_verdict"] = v
        if v is not None and self.sink is not None:
            ev = v.evidence
            self.sink.update({
                "agrees": v.confirmed,
                "max_value_diff": ev.get("max_value_diff"), "max_grad_diff": ev.get("max_grad_diff"),
                "tolerance": ev.get("tolerance"), "grad_tolerance": ev.get("grad_tolerance"),
                "reason": ev.get("reason")})


def _intent_job(module: cst.Module, fixed_module: cst.Module, extra: list, tf: str, c0: str, c1: str,  # noqa: PLR0913
                out, loss0, loss1, job: _Job, dtype: str, base: dict) -> _Job | None:  # noqa: ANN001
    if loss0 is None or loss1 is None or loss0.name != loss1.name or loss0.from_logits == loss1.from_logits:
        return None
    if out is None or out.activation not in ("linear", "softmax", "sigmoid") or job.inputs is None:
        return None
    act = out.activation if out.activation != "linear" else loss0.family
    if act not in ("softmax", "sigmoid"):
        return None
    squash = f"{tf}.nn.softmax(y_logits, axis=-1)" if act == "softmax" else f"{tf}.math.sigmoid(y_logits)"
    params = ("y_true", "y_logits")

    def body(c: str, from_logits: bool) -> str:
        return f"{tf}.reduce_mean({c}(y_true, {'y_logits' if from_logits else squash}))"

    orig = _with(module, extra, _func(params, body(c0, loss0.from_logits)))
    fixed = _with(fixed_module, extra, _func(params, body(c1, loss1.from_logits)))
    ibase = {k: v for k, v in base.items() if k != "expect"}
    ibase["intent_check"] = True
    comp = _make_job([orig.body[-1]], orig, fixed.code, {"y_true": "y_true", "y_logits": "y_logits"}, dtype, ibase)
    if comp.verdict is not None:
        return None
    comp.inputs = dict(job.inputs, params=[
        dict(p, kind="logits", grad=True) if p["kind"] in ("probs", "logits") else p for p in job.inputs["params"]])
    sink = {"check": f"on logits z: the from_logits=True loss on z against the from_logits=False loss on {act}(z) "
                     f"(the fixed loss on the model's outputs computes what the original was written to compute)"}
    job.base["intent"] = sink
    intent = _IntentJob(comp.original, comp.fixed, comp.inputs, comp.dtype, comp.base)
    intent.sink = sink
    return intent
