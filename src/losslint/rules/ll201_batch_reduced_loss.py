"""LL201 batch-reduced-loss: a loss Keras calls (compile / Loss.call / LossFunctionWrapper) that reduces over the
batch axis itself."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from losslint.analysis.calls import int_literals, kwarg, positional
from losslint.analysis.facts import assigned_value
from losslint.analysis.index import FuncInfo, StmtInfo, function_named
from losslint.analysis.model_flow import call_text
from losslint.analysis.reductions import (BatchReduction, SampleWeights, batch_reductions, fit_batch_size,
                                          keras_called_losses)
from losslint.analysis.spelling import family, non_batch_axes
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

_HOW = {"compile": "passed to compile()", "loss-class": "the `call` of a Keras Loss",
        "wrapper": "wrapped by LossFunctionWrapper"}

# Ops whose result has the broadcast shape of their tensor arguments.
_ELEMENTWISE = frozenset({
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "rsqrt", "square", "abs", "negative", "reciprocal",
    "sigmoid", "log_sigmoid", "relu", "softplus", "softmax", "log_softmax", "clip", "nan_to_num", "pow", "add",
    "subtract", "multiply", "divide", "divide_no_nan", "maximum", "minimum", "xlogy",
})
_SCALAR_OPS = frozenset({"epsilon"})
_REDUCTIONS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "logsumexp"})
_NOT_TENSORS = frozenset({"name", "dtype"})
# Keras per-sample losses (`keras.losses.mse(y_true, y_pred)`): they reduce the last axis of the prediction.
_KERAS_LOSS_NS = ("keras.losses", "tensorflow.keras.losses", "tf_keras.losses", "keras.src.losses",
                  "keras.metrics", "tensorflow.keras.metrics", "tf_keras.metrics")
_PER_SAMPLE_LOSSES = frozenset({
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error", "mape",
    "mean_squared_logarithmic_error", "msle", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy", "categorical_focal_crossentropy",
    "kl_divergence", "kld", "kullback_leibler_divergence", "poisson", "huber", "log_cosh", "logcosh", "hinge",
    "squared_hinge", "categorical_hinge", "cosine_similarity",
})
_BACKENDS = ("keras.backend", "tensorflow.keras.backend", "tf_keras.backend", "tensorflow.python.keras.backend",
             "keras.ops", "keras.src.ops")
_LAST_AXIS_LOSSES = frozenset({"categorical_crossentropy", "sparse_categorical_crossentropy"})  # K.* / ops.*
_ELEMENTWISE_LOSSES = frozenset({"binary_crossentropy", "sigmoid_cross_entropy_with_logits"})
_TF_NN = ("tensorflow.nn", "tensorflow.compat.v1.nn", "tensorflow.compat.v2.nn")
_LOGITS_LOSSES = frozenset({"softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2",
                            "sparse_softmax_cross_entropy_with_logits"})


@dataclass(frozen=True)
class _Rel:
    """A tensor whose leading axis is the batch and whose rank is that of the input `proxy` plus `k` (k <= 0), or
    a scalar (`proxy` None)."""

    k: int
    proxy: str | None = None
    position: int = -1


_SCALAR = _Rel(0)


def _combine(parts: list[_Rel | None]) -> _Rel | None:
    """The broadcast of tensors with a batch axis and scalars: ranks must agree (or the shape is unknown)."""
    if any(p is None for p in parts):
        return None
    tensors = [p for p in parts if p is not None and p.proxy is not None]
    if not tensors:
        return _SCALAR
    if len({t.k for t in tensors}) != 1:
        return None
    return next((t for t in tensors if t.position == 1), tensors[0])  # the prediction (Keras calls fn(y_true, y_pred))


class BatchReducedLoss(Rule):
    code = "LL201"
    name = "batch-reduced-loss"
    summary = "a loss given to compile()/Loss.call that reduces over the batch axis (sum: scales with batch size)"
    what_it_does = (
        "Finds a loss that Keras itself calls - a function passed to `compile(loss=...)`, the `call` of a "
        "`keras.losses.Loss` subclass, a function wrapped by `LossFunctionWrapper` - whose returned value is a "
        "reduction over the batch axis: `reduce_sum` / `K.sum` / `ops.sum` with no axis (or an axis that includes 0) "
        "always; `reduce_mean` / `K.mean` / `ops.mean` over all axes only when sample weights reach that loss: a "
        "`fit` / `evaluate` / `train_on_batch` passing `sample_weight=` or `class_weight=` to a model compiled with "
        "it (each model is followed from its `compile` to its later calls, so the weighted fit of another model in "
        "the same notebook does not count; a weighted call on a model whose compile is not in view, e.g. one built "
        "in a helper, does), or, for a Loss subclass or a wrapped function, any call passing weights. It follows "
        "the returned value through assignments, scalar arithmetic and same-module helpers. Losses of custom "
        "training loops, `GradientTape` blocks and PyTorch code are never reported: there a scalar is what is "
        "wanted; that includes a Keras Loss subclass the module only calls by hand from a custom `train_step`, "
        "`tf.function` or `GradientTape` code and never passes to `compile`."
    )
    why_bad = (
        "Keras expects one loss value per sample: it applies `sample_weight`/`class_weight` to that "
        "vector and then averages it over the batch. A `reduce_sum` over the batch makes the reported loss and the "
        "gradients grow with the batch size - with batch_size=32 the loss is 32x the per-sample mean, so changing "
        "the batch size silently changes the effective learning rate, and the smaller last batch counts less. A "
        "`reduce_mean` over everything gives the same number as long as no sample is weighted, but with weights "
        "Keras can only scale the batch mean by mean(sample_weight): with weights [1, 0, 0, 0] the loss is a "
        "quarter of the mean of all four samples instead of the first sample's loss divided by four. "
        "This is a convention warning: a sum can be deliberate (keras-cv defended it for learning-rate "
        "invariance), but the number Keras reports is then not the per-sample mean."
    )
    example = """\
        def custom_loss(y_true, y_pred):
            return tf.reduce_sum(tf.square(y_true - y_pred))

        model.compile(optimizer="adam", loss=custom_loss)
    """
    use_instead = """\
        def custom_loss(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)   # one value per sample

        model.compile(optimizer="adam", loss=custom_loss)
    """
    fix_safety = (
        "Unsafe (applied only with `--unsafe-fixes`): it changes the reported loss and its gradients by the batch "
        "size (that is its point), so the learning rate may need retuning. The fix sums over the non-batch axes "
        "only, read from the static shape so that it is right for any rank: `tf.reduce_sum(x, "
        "axis=list(range(1, len(y_pred.shape))))` (`K.sum` alike, `ops.sum(x, axis=tuple(range(...)))` for Keras 3; "
        "`len(x.shape)` when the summed value is a name), one axis fewer when it sums a per-sample Keras loss such "
        "as `mse(y_true, y_pred)` or a reduction over another axis. The per-sample values add up to the original "
        "scalar, so the mean Keras reports is the old loss divided by the batch size; `losslint fix` checks that "
        "under TensorFlow (values summing to the original, equal gradients, no new NaN/Inf). It is offered only "
        "when the loss returns that sum times constants (in `1 - sum` or `sum + penalty` the other term would be "
        "counted once per sample) and the summed value provably keeps the batch as its leading axis (elementwise "
        "ops of the inputs, Keras per-sample losses, reductions over other axes; not after a reshape). A "
        "`reduce_mean` over everything gets no fix yet: its per-sample form keeps the reported value and restores "
        "sample weighting, which is a different check."
    )
    frameworks = ("tensorflow", "keras")
    scoped = True

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._findings: dict[int, str] | None = None
        self._fixes: dict[int, FixSpec | None] = {}

    def _compute(self) -> dict[int, str]:
        index = self.context.index
        out: dict[int, str] = {}
        losses = keras_called_losses(index, self.context.scopes)
        if not losses:
            return out
        weights: SampleWeights | None = None
        batch = fit_batch_size(index)
        for func, how in losses.values():
            for red in batch_reductions(index, func):
                spelled = self.source_of(red.call.func, 30)
                where = f"`{func.qualname}` ({_HOW[how]})"
                if red.kind == "sum":
                    fix = self._fix(func, red)
                    self._fixes[id(red.call)] = fix if self._fixes.get(id(red.call), fix) is not None else None
                    b = batch or 32
                    shown = f"batch_size={b}" if batch else "the default batch_size=32"
                    out[id(red.call)] = (
                        f"`{spelled}` sums the loss of {where} over the batch: the reported loss and its gradients "
                        f"grow with the batch size (with {shown} they are {b}x the per-sample mean) and the last, "
                        f"smaller batch counts less; reduce over the non-batch axes only (e.g. axis=-1) and let "
                        f"Keras average over the batch")
                else:
                    if weights is None:
                        weights = SampleWeights(index, self.context.scopes)
                    w = weights.weighting(func)
                    if w is None:
                        continue
                    shown_call = f"`{call_text(w.call, 60)}`"
                    if w.how == "model":
                        why = f"and {shown_call} weights the samples of a model compiled with it"
                    elif w.how == "model-unknown":
                        why = f"and {shown_call} weights samples (the model's compile is not in view)"
                    else:
                        why = f"and {shown_call} hands it sample weights"
                    out[id(red.call)] = (
                        f"`{spelled}` averages the loss of {where} over the whole batch, {why}: Keras applies "
                        f"sample_weight/class_weight to the per-sample values a loss returns, so on one scalar it can "
                        f"only scale the batch mean by mean(sample_weight) and the weights no longer pick out "
                        f"samples; reduce over the non-batch axes only (e.g. axis=-1)")
        return out

    def visit_Call(self, node: cst.Call) -> None:
        if self._findings is None:
            self._findings = self._compute()
        msg = self._findings.get(id(node))
        if msg is not None:
            self.report(node, msg, self._fixes.get(id(node)))

    # ---- the fix: sum over the non-batch axes only ----------------------------------------------------------------
    def _fix(self, func: FuncInfo, red: BatchReduction) -> FixSpec | None:
        """Per-sample sums whose total is the original scalar: only when the loss returns that sum times constants
        (no other term, which would be counted once per sample) and its operand provably keeps the batch as its
        leading axis (elementwise ops of the inputs, Keras per-sample losses, reductions over other axes)."""
        call, op = red.call, red.op
        fam = family(op)
        if op.is_method or fam not in ("tf", "keras-backend", "keras-ops") or any(a.star for a in call.args):
            return None
        if kwarg(call, "keepdims", "keep_dims") is not None or not call.args or call.args[0].keyword is not None:
            return None
        if len(func.returns) != 1 or not self._linear(func.returns[0][0], func.returns[0][1], call, 0):
            return None
        x = call.args[0].value
        rel = self._rel(x, red.stmt, 0)
        if rel is None or rel.proxy is None:
            return None
        if isinstance(x, cst.Name):
            tensor, fewer = x.value, 0
        else:
            tensor, fewer = rel.proxy, -rel.k
        axes = non_batch_axes(fam, tensor, fewer)
        if axes is None:
            return None
        new_axis = cst.parse_expression(axes)
        args = list(call.args)
        pos = [i for i, a in enumerate(args) if a.keyword is None]
        kw = [i for i, a in enumerate(args)
              if a.keyword is not None and a.keyword.value in ("axis", "reduction_indices")]
        if kw:
            args[kw[0]] = args[kw[0]].with_changes(value=new_axis)
        elif len(pos) > 1:
            args[pos[1]] = args[pos[1]].with_changes(value=new_axis)
        else:
            last = args[-1]
            if isinstance(last.comma, cst.MaybeSentinel):
                args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(cst.Arg(value=new_axis, keyword=cst.Name("axis"),
                                equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                      whitespace_after=cst.SimpleWhitespace(""))))
        return FixSpec("sum over the non-batch axes only (one value per sample; Keras averages them)", "unsafe",
                       (Replacement(call, call.with_changes(args=args)),), expect="per-sample")

    def _const(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, (cst.Integer, cst.Float)):
            return True
        if isinstance(expr, cst.UnaryOperation):
            return self._const(expr.expression)
        if isinstance(expr, cst.BinaryOperation):
            return self._const(expr.left) and self._const(expr.right)
        if isinstance(expr, cst.Name):
            defs = self.context.index.module_defs.get(expr.value, [])
            return len(defs) == 1 and isinstance(defs[0].value, (cst.Integer, cst.Float))
        return False

    def _linear(self, expr: cst.BaseExpression, stmt: StmtInfo, target: cst.Call, depth: int) -> bool:
        """Is `expr` the reduction `target` times constants (negated, cast, through names and helpers)?"""
        if depth > 12:
            return False
        if expr is target:
            return True
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
            return self._linear(expr.expression, stmt, target, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.Multiply):
                if self._const(expr.left):
                    return self._linear(expr.right, stmt, target, depth + 1)
                return self._const(expr.right) and self._linear(expr.left, stmt, target, depth + 1)
            if isinstance(expr.operator, cst.Divide):
                return self._const(expr.right) and self._linear(expr.left, stmt, target, depth + 1)
            return False
        if isinstance(expr, cst.Call):
            op = self.op_of(expr)
            if op is not None:
                args = positional(expr)
                if op.name in ("negative", "cast") and not op.is_method and args:
                    return self._linear(args[0], stmt, target, depth + 1)
                return False
            callee = function_named(self.context.index, expr.func, stmt)
            if callee is not None and len(callee.returns) == 1:
                ret, rstmt = callee.returns[0]
                return self._linear(ret, rstmt, target, depth + 1)
            return False
        if isinstance(expr, cst.Name):
            got = assigned_value(self.context.facts, expr.value, stmt)
            return got is not None and self._linear(got[0], got[1], target, depth + 1)
        return False

    def _rel(self, expr: cst.BaseExpression, stmt: StmtInfo, depth: int) -> _Rel | None:
        """The rank of `expr` relative to the loss's inputs, when its leading axis is provably the batch."""
        if depth > 16:
            return None
        if self._const(expr):
            return _SCALAR
        if isinstance(expr, cst.UnaryOperation):
            return self._rel(expr.expression, stmt, depth + 1)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.MatrixMultiply):
                return None
            return _combine([self._rel(expr.left, stmt, depth + 1), self._rel(expr.right, stmt, depth + 1)])
        if isinstance(expr, cst.Name):
            got = assigned_value(self.context.facts, expr.value, stmt)
            if got is not None:
                return self._rel(got[0], got[1], depth + 1)
            func = stmt.func
            if func is None:
                return None
            defs = [d for d in func.defs.get(expr.value, []) if d.index < stmt.index]
            if not defs or any(d.kind != "param" for d in defs):
                return None
            param = next((p for p in func.params if p.name == expr.value), None)
            if param is None or param.position < 0:
                return None
            if param.default is not None:
                return _SCALAR if self._const(param.default) else None
            return _Rel(0, param.name, param.position)
        if isinstance(expr, cst.Call):
            return self._rel_call(expr, stmt, depth)
        return None

    def _rel_call(self, call: cst.Call, stmt: StmtInfo, depth: int) -> _Rel | None:
        op = self.op_of(call)
        if (op is not None and op.is_method) or any(a.star for a in call.args):
            return None
        qualified = op.qualified if op is not None else self.context.index.qualify(call.func) or ""
        name = op.name if op is not None else ""
        args = positional(call)

        def rel(e: cst.BaseExpression | None) -> _Rel | None:
            return self._rel(e, stmt, depth + 1) if e is not None else None

        if name in _SCALAR_OPS:
            return _SCALAR
        if name == "cast":
            return rel(args[0]) if args else None
        if name in _ELEMENTWISE:
            return _combine([rel(a.value) for a in call.args
                             if a.keyword is None or a.keyword.value not in _NOT_TENSORS])
        if name in _REDUCTIONS:
            inner = rel(args[0]) if args else None
            if inner is None or inner.proxy is None:
                return None
            axis = kwarg(call, "axis", "reduction_indices") or (args[1] if len(args) > 1 else None)
            literals = int_literals(axis)
            if not literals or 0 in literals:
                return None  # over everything or over the batch: not a per-sample value
            keep = kwarg(call, "keepdims", "keep_dims") or (args[2] if len(args) > 2 else None)
            if isinstance(keep, cst.Name) and keep.value == "True":
                return inner
            if keep is not None and not (isinstance(keep, cst.Name) and keep.value == "False"):
                return None
            return _Rel(inner.k - len(set(literals)), inner.proxy, inner.position)
        ns, _, last = qualified.rpartition(".")
        if ns in _KERAS_LOSS_NS and last in _PER_SAMPLE_LOSSES:
            pred = rel(kwarg(call, "y_pred") or (args[1] if len(args) > 1 else None))
        elif ns in _BACKENDS and last in _LAST_AXIS_LOSSES:
            pred = rel(kwarg(call, "output", "y_pred") or (args[1] if len(args) > 1 else None))
        elif ns in _TF_NN and last in _LOGITS_LOSSES:
            pred = rel(kwarg(call, "logits"))
        elif (ns in _BACKENDS or ns in _TF_NN) and last in _ELEMENTWISE_LOSSES:
            return _combine([rel(a.value) for a in call.args if a.keyword is None
                             or a.keyword.value in ("target", "output", "labels", "logits", "y_true", "y_pred")])
        else:
            return None
        if pred is None or pred.proxy is None:
            return None
        return _Rel(pred.k - 1, pred.proxy, pred.position)

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss=custom_loss)
        """, "per-sample reduction over the last axis: the correct form"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.keras.losses.mean_squared_error(y_true, y_pred))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
            model.fit(x_train, y_train, batch_size=32, epochs=10)
        """, "a batch mean with no sample weights anywhere: Keras reports the same number as for the per-sample "
             "form (seed s001 'corrected' version)"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            optimizer = tf.keras.optimizers.Adam()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(y - model(x))) / tf.cast(tf.shape(x)[0], tf.float32)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "a custom training loop must reduce to a scalar"),
        Valid("""
            import torch

            class DiceLoss(torch.nn.Module):
                def forward(self, pred, target):
                    inter = (pred * target).sum()
                    return 1 - 2 * inter / (pred.sum() + target.sum() + 1)
        """, "PyTorch losses reduce themselves"),
        Valid("""
            import keras
            from keras import ops

            class Kld(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_true = ops.clip(y_true, 1e-7, 1.0)
                    y_pred = ops.clip(y_pred, 1e-7, 1.0)
                    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)
        """, "a Keras Loss subclass reducing over the class axis"),
        Valid("""
            from tensorflow.keras import backend as K

            def dice_loss(y_true, y_pred, smooth=1.0):
                inter = K.sum(y_true * y_pred, axis=[1, 2, 3])
                union = K.sum(y_true, axis=[1, 2, 3]) + K.sum(y_pred, axis=[1, 2, 3])
                return 1 - (2.0 * inter + smooth) / (union + smooth)

            model.compile(optimizer="adam", loss=dice_loss)
        """, "per-image Dice: sums over the spatial axes only"),
        Valid("""
            import tensorflow as tf

            def sum_loss(y_true, y_pred):
                return tf.reduce_sum(tf.square(y_true - y_pred))

            @tf.function
            def step(x, y):
                with tf.GradientTape() as tape:
                    loss = sum_loss(y, model(x))
                return tape.gradient(loss, model.trainable_variables)
        """, "a summed loss used only in a custom loop"),
        Valid("""
            import jax.numpy as jnp

            def loss_fn(params, x, y):
                return jnp.sum((apply(params, x) - y) ** 2)
        """, "JAX: the loss of jax.grad is a scalar"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            def my_mse(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_pred - y_true))

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=tf.keras.losses.Huber(2.0), optimizer="nadam")
            model.fit(X_train, y_train, epochs=2, sample_weight=np.random.rand(len(y_train)))

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=my_mse, optimizer="nadam")
            model.fit(X_train, y_train, epochs=2)
        """, "the weighted fit belongs to another model (compiled with Huber); the model compiled with the batch mean "
             "is fit without weights (handson-ml3 chapter 12)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_sum(tf.keras.losses.mse(y_true, y_pred))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
            model.fit(x_train, y_train, batch_size=32, epochs=10)
        """, "LL201", 4, "reduce_sum with no axis of a per-sample Keras loss, passed to compile (seed s001, with the "
                         "`mse` alias TF 2.16+ still has): the fix sums what mse leaves beyond the batch axis (nothing "
                         "for rank-2 predictions)", fixed="""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_sum(tf.keras.losses.mse(y_true, y_pred), axis=list(range(1, len(y_pred.shape) - 1)))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
            model.fit(x_train, y_train, batch_size=32, epochs=10)
        """),
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                return tf.reduce_mean(tf.abs(y_true - y_pred))

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss=custom_loss)
            model.fit(x, y, sample_weight=w, epochs=5)
        """, "LL201", 4, "reduce_mean over everything while fit() weights samples (no fix: a per-sample mean is a "
                         "different check for the confirmer)"),
        Invalid("""
            import keras
            from keras import ops

            class SumSquaredError(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.sum(ops.square(y_true - y_pred))
        """, "LL201", 6, "Keras 3 Loss subclass summing over the batch", fixed="""
            import keras
            from keras import ops

            class SumSquaredError(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.sum(ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape))))
        """),
        Invalid("""
            from tensorflow.keras import backend as K

            def weighted_bce(y_true, y_pred):
                bce = K.binary_crossentropy(y_true, y_pred)
                return K.sum(bce * 0.7)

            model.compile(optimizer="adam", loss=weighted_bce)
        """, "LL201", 5, "Keras 2 backend K.sum with no axis", fixed="""
            from tensorflow.keras import backend as K

            def weighted_bce(y_true, y_pred):
                bce = K.binary_crossentropy(y_true, y_pred)
                return K.sum(bce * 0.7, axis=list(range(1, len(y_pred.shape))))

            model.compile(optimizer="adam", loss=weighted_bce)
        """),
        Invalid("""
            import tensorflow as tf

            def _sse(y_true, y_pred):
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=0)

            model.compile(optimizer="adam", loss=lambda yt, yp: 0.5 * _sse(yt, yp))
        """, "LL201", 4, "axis=0 in a helper of a lambda loss", fixed="""
            import tensorflow as tf

            def _sse(y_true, y_pred):
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=list(range(1, len(y_pred.shape))))

            model.compile(optimizer="adam", loss=lambda yt, yp: 0.5 * _sse(yt, yp))
        """),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras.losses import LossFunctionWrapper

            def total_error(y_true, y_pred):
                return -tf.reduce_sum(y_true * tf.math.log_sigmoid(y_pred))

            loss_obj = LossFunctionWrapper(total_error, name="total_error")
        """, "LL201", 5, "wrapped by LossFunctionWrapper", fixed="""
            import tensorflow as tf
            from tensorflow.keras.losses import LossFunctionWrapper

            def total_error(y_true, y_pred):
                return -tf.reduce_sum(y_true * tf.math.log_sigmoid(y_pred), axis=list(range(1, len(y_pred.shape))))

            loss_obj = LossFunctionWrapper(total_error, name="total_error")
        """),
        Invalid("""
            import tensorflow as tf

            def per_batch_loss(y_true, y_pred):
                return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred))

            model.compile(optimizer="adam", loss=per_batch_loss)
            model.fit(x, y, class_weight={0: 1.0, 1: 10.0})
        """, "LL201", 4, "class_weight cannot up-weight the rare class of a batch mean"),
        Invalid("""
            import tensorflow as tf

            def batch_mae(y_true, y_pred):
                return tf.reduce_mean(tf.abs(y_true - y_pred))

            def build_model():
                model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
                model.compile(optimizer="adam", loss=batch_mae)
                return model

            model = build_model()
            model.fit(x, y, sample_weight=w)
        """, "LL201", 4, "the model is compiled in a builder function: a weighted fit whose compile is not in view "
                         "still counts"),
        Invalid("""
            import tensorflow as tf

            def sequence_loss(y_true, y_pred):
                err = tf.square(y_true - y_pred)
                total = tf.reduce_sum(err)
                return total

            model.compile(optimizer="adam", loss=sequence_loss)
        """, "LL201", 5, "a sum of a named tensor: its own rank gives the non-batch axes (right for sequences too)",
            fixed="""
            import tensorflow as tf

            def sequence_loss(y_true, y_pred):
                err = tf.square(y_true - y_pred)
                total = tf.reduce_sum(err, axis=list(range(1, len(err.shape))))
                return total

            model.compile(optimizer="adam", loss=sequence_loss)
        """),
        Invalid("""
            import tensorflow as tf

            def flat_sse(y_true, y_pred):
                return tf.reduce_sum(tf.reshape(y_true - y_pred, [-1]))

            model.compile(optimizer="adam", loss=flat_sse)
        """, "LL201", 4, "no fix: after the reshape the leading axis is no longer the batch"),
        Invalid("""
            import tensorflow as tf

            def one_minus_sse(y_true, y_pred):
                return 1.0 - tf.reduce_sum(tf.square(y_true - y_pred))

            model.compile(optimizer="adam", loss=one_minus_sse)
        """, "LL201", 4, "no fix: per-sample values 1 - s_i would count the constant once per sample"),
        Invalid("""
            import tensorflow as tf

            def xent(y_true, y_pred):
                per_sample = tf.reduce_mean(-y_true * tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)), axis=-1)
                return tf.reduce_sum(per_sample, 0) * 2

            model.compile(optimizer="adam", loss=xent)
        """, "LL201", 5, "a positional axis 0 over per-sample values", fixed="""
            import tensorflow as tf

            def xent(y_true, y_pred):
                per_sample = tf.reduce_mean(-y_true * tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)), axis=-1)
                return tf.reduce_sum(per_sample, list(range(1, len(per_sample.shape)))) * 2

            model.compile(optimizer="adam", loss=xent)
        """),
    ]


