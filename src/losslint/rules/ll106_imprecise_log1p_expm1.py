"""LL106 imprecise-log1p-expm1: log(1 + x) with x small by construction, and exp(x) - 1."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.bounds import bounds_for, exp_minus_one, small_term
from losslint.analysis.facts import _literal, activation_under_log
from losslint.analysis.index import operand
from losslint.analysis.spelling import atom, code, sibling
from losslint.model import Severity
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid


class ImpreciseLog1pExpm1(Rule):
    code = "LL106"
    name = "imprecise-log1p-expm1"
    severity = Severity.INFORMATION
    summary = "log(1 + x) with x small by construction, exp(x) - 1: use log1p / expm1"
    what_it_does = (
        "Finds `log(1 + x)` inside a loss where `x` is small by construction (an `exp` of a nonpositive argument "
        "that is unbounded below, such as `exp(-abs(z))` or `exp(log_softmax(z))`, or a tiny constant times a bounded "
        "value), and `exp(x) - 1` where `x` can be near 0. `log(1 + exp(x))` in one expression is LL102's (softplus) "
        "and `log(1 + abs(d))` is not reported: |d| is not known to be small, and the log is stable there."
    )
    why_bad = (
        "`1 + x` rounds x to the float32 spacing near 1 (6e-8): for x = 1e-8 the sum is exactly 1 and `log` returns "
        "0 instead of 1e-8, and every x below about 1e-4 keeps only a few digits. `exp(x) - 1` cancels the same way "
        "for small |x|. `log1p` and `expm1` compute the same functions to full precision. This loses precision, not "
        "stability: the finding is informational."
    )
    example = """\
        def logistic_loss(labels, logits):
            e = tf.exp(-tf.abs(logits))
            return tf.reduce_mean(tf.nn.relu(logits) - logits * labels + tf.math.log(1 + e))
    """
    use_instead = """\
        def logistic_loss(labels, logits):
            e = tf.exp(-tf.abs(logits))
            return tf.reduce_mean(tf.nn.relu(logits) - logits * labels + tf.math.log1p(e))
    """
    fix_safety = (
        "Safe once confirmed: `log(1 + x)` becomes `log1p(x)` and `exp(x) - 1` becomes `expm1(x)`, next to the "
        "original function (`tf.math.log1p`, `torch.log1p` / `x.log1p()`, `jnp.log1p`, `ops.log1p`, `np.log1p`; the "
        "same for expm1). They are the same functions computed to full precision, so the values agree wherever the "
        "original is finite (and are more accurate for small x); `losslint fix` applies the rewrite after TensorFlow "
        "has confirmed that. The Keras backend has no log1p / expm1: its calls are rewritten to `tf.math.log1p` / "
        "`tf.math.expm1` when the file imports TensorFlow, and get no fix otherwise. An `exp` reached through a name "
        "(`e = exp(x); e - 1`) gets no fix, because `e` may be used elsewhere, and neither does module-level code "
        "(TF1 graphs), where the loss cannot be isolated to confirm the rewrite."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name != "log" or self.stmt is None:
            return
        arg = operand(node, op)
        if not isinstance(arg, cst.BinaryOperation) or not isinstance(arg.operator, cst.Add):
            return
        if activation_under_log(self.context.facts, arg, self.stmt) is not None:
            return  # log(1 + exp(x)): LL102 reports softplus
        if _literal(arg.left) == 1.0:
            x = arg.right
        elif _literal(arg.right) == 1.0:
            x = arg.left
        else:
            return
        why = small_term(bounds_for(self.context.facts), x, self.stmt)
        if why is None:
            return
        self.report(node, f"log(1 + x) with x = `{self.source_of(x)}` ({why}): 1 + x rounds x away in float32 "
                          f"(log(1 + 1e-8) == 0); log1p(x) gives the same value to full precision",
                    self._fix(node, op, x, "log1p"))

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self.stmt is None:
            return
        call = exp_minus_one(bounds_for(self.context.facts), node, self.stmt)
        if call is None:
            return
        fix = None
        if node.left is call:  # the exp itself, not a name bound to it (which may be used elsewhere)
            op = self.op_of(call)
            x = operand(call, op) if op is not None else None
            if op is not None and x is not None:
                fix = self._fix(node, op, x, "expm1", call)
        self.report(node, f"`{self.source_of(node)}` cancels for small |x| (exp(1e-8) - 1 == 0 in float32): "
                          f"expm1(x) gives the same value to full precision", fix)

    def _fix(self, node: cst.CSTNode, op, x: cst.BaseExpression, name: str,  # type: ignore[no-untyped-def]
             call: cst.Call | None = None) -> FixSpec | None:
        # log1p / expm1 are the same functions as log(1 + x) / exp(x) - 1, computed without the rounding of 1 + x or
        # the cancellation of - 1: same values wherever the original is finite, so safe once confirmed.
        call = call if call is not None else node  # type: ignore[assignment]
        assert isinstance(call, cst.Call)
        if self.stmt is None or self.stmt.func is None:
            return None  # module-level (TF1 graph) code: the loss cannot be isolated to confirm the rewrite
        if op.is_method:
            if call.args:
                return None
            new = f"{atom(x)}.{name}()"
        else:
            if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
                return None  # a name= or other argument has no place in the rewrite
            func = sibling(self.context.index, call, op, name)
            if func is None:
                return None
            new = f"{func}({code(x)})"
        return FixSpec(f"use {name}", "safe", (Replacement(node, new),))

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.math.log(1 + tf.abs(y_true - y_pred)))
                return loss
        """, "the seed: |d| is not known to be small, log(1 + |d|) is stable"),
        Valid("""
            import tensorflow as tf

            def logistic_loss(labels, logits):
                e = tf.exp(-tf.abs(logits))
                return tf.reduce_mean(tf.nn.relu(logits) - logits * labels + tf.math.log1p(e))
        """, "log1p already"),
        Valid("""
            import torch

            def softplus_loss(margin):
                return torch.log(1 + torch.exp(-margin)).mean()
        """, "log(1 + exp(x)) is LL102's (softplus)"),
        Valid("""
            import jax.numpy as jnp
            import jax

            def loss_fn(params, x, t):
                pred = x @ params
                return jnp.mean(jnp.expm1(jnp.abs(pred - t)))

            g = jax.grad(loss_fn)
        """, "expm1 already"),
        Valid("""
            import numpy as np
            import torch

            def pnp_loss(sim, mask):
                rank = torch.sum(torch.sigmoid(sim) * mask, dim=-1)
                return torch.log(1 + rank).mean()
        """, "log(1 + a sum): not small"),
        Valid("""
            from keras import ops

            def elu_loss(y_true, y_pred):
                d = ops.abs(y_true - y_pred)
                return ops.mean(ops.exp(d + 1.0) - 1, axis=-1)
        """, "exp(x) - 1 with x >= 1: nothing cancels"),
        Valid("""
            from tensorflow.keras import backend as K

            def msle(y_true, y_pred):
                return K.mean(K.square(K.log(1.0 + K.maximum(y_pred, 0.0)) - K.log(1.0 + y_true)), axis=-1)
        """, "mean squared log error: log(1 + y) of unbounded values"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def logistic_loss(labels, logits):
                e = tf.exp(-tf.abs(logits))
                return tf.reduce_mean(tf.nn.relu(logits) - logits * labels + tf.math.log(1 + e))
        """, "LL106", 5, "TF2 log(1 + exp(-|z|)) through a name", fixed="""
            import tensorflow as tf

            def logistic_loss(labels, logits):
                e = tf.exp(-tf.abs(logits))
                return tf.reduce_mean(tf.nn.relu(logits) - logits * labels + tf.math.log1p(e))
        """),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 10])
            z = tf.matmul(x, W)
            cost = tf.reduce_mean(tf.exp(z) - 1 - z)
            train = tf.train.GradientDescentOptimizer(0.1).minimize(cost)
        """, "LL106", 5, "TF1 exp(z) - 1; module level: no fix (cannot be confirmed)"),
        Invalid("""
            import torch

            def smooth_loss(pred, target):
                return (torch.exp(pred - target) - 1).abs().mean()
        """, "LL106", 4, "torch exp(d) - 1", fixed="""
            import torch

            def smooth_loss(pred, target):
                return (torch.expm1(pred - target)).abs().mean()
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def entropy_bonus_loss(logits):
                p = torch.exp(F.log_softmax(logits, dim=-1))
                return -torch.log(1 + p).sum(-1).mean()
        """, "LL106", 6, "exp of a log-probability through a name", fixed="""
            import torch
            import torch.nn.functional as F

            def entropy_bonus_loss(logits):
                p = torch.exp(F.log_softmax(logits, dim=-1))
                return -torch.log1p(p).sum(-1).mean()
        """),
        Invalid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x):
                s = jax.nn.sigmoid(x @ params)
                return jnp.mean(jnp.log(1.0 + 1e-4 * s))

            g = jax.grad(loss_fn)
        """, "LL106", 6, "a tiny constant times a probability", fixed="""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x):
                s = jax.nn.sigmoid(x @ params)
                return jnp.mean(jnp.log1p(1e-4 * s))

            g = jax.grad(loss_fn)
        """),
        Invalid("""
            from keras import ops

            def linex_loss(y_true, y_pred):
                d = y_pred - y_true
                return ops.mean(ops.exp(d) - 1 - d, axis=-1)
        """, "LL106", 5, "keras.ops LINEX loss exp(d) - 1 - d", fixed="""
            from keras import ops

            def linex_loss(y_true, y_pred):
                d = y_pred - y_true
                return ops.mean(ops.expm1(d) - d, axis=-1)
        """),
        Invalid("""
            from keras import backend as K

            def tail_loss(y_true, y_pred):
                return K.mean(K.log(K.exp(-K.square(y_true - y_pred)) + 1), axis=-1)
        """, "LL106", 4, "Keras 2 backend log(exp(-d**2) + 1)"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def tail_loss(y_true, y_pred):
                return K.mean(K.log(K.exp(-K.square(y_true - y_pred)) + 1), axis=-1)
        """, "LL106", 5, "Keras backend with TensorFlow imported: tf.math.log1p (K has none)", fixed="""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def tail_loss(y_true, y_pred):
                return K.mean(tf.math.log1p(K.exp(-K.square(y_true - y_pred))), axis=-1)
        """),
        Invalid("""
            import torch

            def logistic_loss(logits, target):
                e = (-logits.abs()).exp()
                return (logits.clamp(min=0) - logits * target + (e + 1).log()).mean()
        """, "LL106", 5, "torch tensor methods: (e + 1).log()", fixed="""
            import torch

            def logistic_loss(logits, target):
                e = (-logits.abs()).exp()
                return (logits.clamp(min=0) - logits * target + e.log1p()).mean()
        """),
    ]
