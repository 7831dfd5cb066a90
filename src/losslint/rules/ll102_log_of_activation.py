"""LL102 log-of-activation: log(softmax(x)), log(sigmoid(x)), log(1 - sigmoid(x)), log(1 + exp(x))."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.facts import activation_under_log
from losslint.analysis.index import operand
from losslint.analysis.spelling import atom, code, fused
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid


def _args(call: cst.Call) -> str:
    return ", ".join(code(a.value) if a.keyword is None else f"{a.keyword.value}={code(a.value)}"
                     for a in call.args)

_FUSED = {
    "softmax": "log_softmax(x) (or a cross-entropy with from_logits=True)",
    "sigmoid": "log_sigmoid(x) = -softplus(-x) (or a binary cross-entropy with from_logits=True)",
    "1 - sigmoid": "log_sigmoid(-x) = -softplus(x)",
    "1 + exp": "softplus(x)",
}


class LogOfActivation(Rule):
    code = "LL102"
    name = "log-of-activation"
    summary = "log(softmax(x)), log(sigmoid(x)), log(1 - sigmoid(x)), log(1 + exp(x)): use the fused op"
    what_it_does = (
        "Finds a `log` applied directly to a softmax or sigmoid output (or to a name bound to one, or to "
        "`1 - sigmoid(x)`, or `1 + exp(x)`) with no guard in between, in every framework's spelling."
    )
    why_bad = (
        "The activation saturates first and the log sees the rounded result: in float32 `softmax` returns exactly 0 "
        "once a logit gap exceeds about 87 and `sigmoid(x)` is exactly 1 for x > 17, so `log` gives `-inf` and the "
        "gradient NaN. `1 + exp(x)` overflows to inf for x > 88. The fused ops compute the same values in log space "
        "and stay finite."
    )
    example = """\
        def loss(labels, logits):
            return -tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)
    """
    use_instead = """\
        def loss(labels, logits):
            return -tf.reduce_sum(labels * tf.nn.log_softmax(logits), axis=-1)
    """
    fix_safety = (
        "Safe once confirmed: `log(softmax(x))` -> `log_softmax(x)`, `log(sigmoid(x))` -> `log_sigmoid(x)`, "
        "`log(1 - sigmoid(x))` -> `log_sigmoid(-x)`, `log(1 + exp(x))` -> `softplus(x)`, each in the framework's own "
        "namespace (`tf.nn`, `tf.math`, `keras.ops`, `torch.nn.functional`, `jax.nn`). The rewrites equal the "
        "original wherever it is finite; `losslint fix` applies them after TensorFlow has confirmed that on normal "
        "inputs and shown them finite on saturated ones. Forms that go through a variable (`p = softmax(x)` then "
        "`log(p)`) get no automatic fix, because `p` may be used elsewhere."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name not in ("log", "log2", "log10"):
            return
        arg = operand(node, op)
        if arg is None:
            return
        pattern = activation_under_log(self.context.facts, arg, self.stmt)
        if pattern is None:
            return
        what = "overflows to inf for x > 88 in float32 (the loss becomes inf, its gradient NaN)" \
            if pattern == "1 + exp" else "saturates to -inf in float32 and its gradient to NaN"
        self.report(node, f"log of {pattern}(...) (`{self.source_of(arg)}`) {what}: use {_FUSED[pattern]}",
                    self._fix(node, op, arg, pattern))

    def _fix(self, node: cst.Call, op, arg: cst.BaseExpression, pattern: str) -> FixSpec | None:  # type: ignore
        # Only the direct forms are rewritten; through a name (`p = softmax(x); log(p)`) `p` may be used elsewhere.
        if op.name != "log":
            return None
        index = self.context.index
        new = None
        if pattern in ("softmax", "sigmoid") and isinstance(arg, cst.Call):
            inner_op = self.op_of(arg)
            if inner_op is not None:
                name = "log_softmax" if pattern == "softmax" else "log_sigmoid"
                new = fused(index, arg, inner_op, name, _args(arg))
        elif isinstance(arg, cst.BinaryOperation) and isinstance(arg.right, cst.Call):
            inner = arg.right
            inner_op = self.op_of(inner)
            x = operand(inner, inner_op) if inner_op is not None else None
            if inner_op is not None and x is not None and len(inner.args) == (0 if inner_op.is_method else 1):
                if pattern == "1 - sigmoid":
                    new = fused(index, inner, inner_op, "log_sigmoid", f"-{atom(x)}")
                elif pattern == "1 + exp":
                    new = fused(index, inner, inner_op, "softplus", code(x))
        if new is None:
            return None
        return FixSpec(f"use the fused `{new.split('(', 1)[0].rsplit('.', 1)[-1]}`", "safe", (Replacement(node, new),))

    VALID = [
        Valid("""
            import tensorflow as tf

            def stable_bce(labels, logits):
                return tf.reduce_mean(tf.maximum(logits, 0.0) - logits * labels
                                      + tf.math.log(1.0 + tf.exp(-tf.abs(logits))))
        """, "the stable softplus tail: exp(-|x|) is at most 1, so 1 + exp(...) cannot overflow"),
        Valid("""
            import tensorflow as tf

            def loss(labels, logits):
                return -tf.reduce_sum(labels * tf.nn.log_softmax(logits), axis=-1)
        """, "log_softmax"),
        Valid("""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.log_softmax(logits, dim=1), target)
        """, "torch log_softmax + nll_loss"),
        Valid("""
            import tensorflow as tf

            def bce_loss(labels, logits):
                return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        """, "fused sigmoid cross-entropy"),
        Valid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(labels, logits):
                return -jnp.mean(labels * jax.nn.log_sigmoid(logits) + (1 - labels) * jax.nn.log_sigmoid(-logits))
        """, "jax log_sigmoid"),
        Valid("""
            import tensorflow as tf

            def loss(labels, logits):
                p = tf.nn.softmax(logits)
                p = tf.clip_by_value(p, 1e-7, 1.0)
                return -tf.reduce_sum(labels * tf.math.log(p), axis=-1)
        """, "clipped before the log: guarded"),
        Valid("""
            import torch

            def focal_loss(logits, target, gamma=2.0):
                logp = torch.log_softmax(logits, dim=-1)
                p = logp.exp()
                return -((1 - p) ** gamma * logp * target).sum(-1).mean()
        """, "focal loss in log space"),
        Valid("""
            import tensorflow as tf

            def loss(y_true, logits):
                return tf.reduce_mean(tf.math.softplus(-y_true * logits))
        """, "softplus instead of log(1 + exp(x))"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def loss(labels, logits):
                return -tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)
        """, "LL102", 4, "TF2 log(softmax)", fixed="""
            import tensorflow as tf

            def loss(labels, logits):
                return -tf.reduce_sum(labels * tf.nn.log_softmax(logits), axis=-1)
        """),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            y = tf.nn.softmax(tf.matmul(x, W) + b)
            cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
        """, "LL102", 6, "the TF1 MNIST tutorial"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(torch.log(F.softmax(logits, dim=1)), target)
        """, "LL102", 5, "torch log(softmax)", fixed="""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.log_softmax(logits, dim=1), target)
        """),
        Invalid("""
            import torch

            def bce_loss(logits, target):
                p = logits.sigmoid()
                return -(target * p.log() + (1 - target) * (1 - p).log()).mean()
        """, "LL102", 5, "tensor methods: sigmoid then .log()"),
        Invalid("""
            from keras import ops

            def binary_loss(y_true, logits):
                pos = y_true * ops.log(ops.sigmoid(logits))
                return -ops.mean(pos)
        """, "LL102", 4, "keras.ops log(sigmoid) and log(1 - sigmoid)", fixed="""
            from keras import ops

            def binary_loss(y_true, logits):
                pos = y_true * ops.log_sigmoid(logits)
                return -ops.mean(pos)
        """),
        Invalid("""
            import jax.numpy as jnp
            import jax

            def loss_fn(labels, logits):
                return jnp.mean(jnp.log(1 + jnp.exp(-labels * logits)))
        """, "LL102", 5, "log(1 + exp(x)) is softplus", fixed="""
            import jax.numpy as jnp
            import jax

            def loss_fn(labels, logits):
                return jnp.mean(jax.nn.softplus(-labels * logits))
        """),
        Invalid("""
            from tensorflow.keras import backend as K

            def cce(y_true, y_pred):
                probs = K.softmax(y_pred)
                return -K.sum(y_true * K.log(probs), axis=-1)
        """, "LL102", 5, "Keras backend, through a name"),
    ]
