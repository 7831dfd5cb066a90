"""LL101 unguarded-log: `log` of a value that can be 0 (or negative) inside a loss."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.facts import _add, activation_under_log, const, origin_phrase
from losslint.analysis.index import operand
from losslint.analysis.spelling import lower_bound
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

# Origins that make a zero argument a real hazard; a log of an arbitrary value of unknown origin is not reported.
_RISKY = frozenset({"y_pred", "y_true", "probability", "softmax", "sigmoid", "ratio", "difference", "sum", "count",
                    "mask", "norm", "logits", "std"})
_LOGS = frozenset({"log", "log2", "log10", "log1p"})
_EPS = "1e-7"  # the smallest eps for which 1 - eps != 1 in float32 (Keras' epsilon())


class UnguardedLog(Rule):
    code = "LL101"
    name = "unguarded-log"
    summary = "log of a value that is not provably > 0 (y_pred, probabilities, ratios)"
    what_it_does = (
        "Finds `log` (and `log2`, `log10`, `log1p(x)` read as `log(1 + x)`) inside a loss whose argument can be "
        "exactly 0 or negative: a prediction or probability, a label, a ratio, a sum or a difference, with no "
        "`clip`, `maximum`, `+ eps`, `1 + nonnegative` or `where` guard on the way. It follows assignments in the "
        "function and into same-module helpers, and knows TensorFlow 1 and 2, Keras backend and `keras.ops`, "
        "PyTorch (functions and tensor methods), JAX and NumPy spellings."
    )
    why_bad = (
        "A float32 probability underflows to exactly 0 long before the model is certain (a softmax once a logit gap "
        "exceeds about 87). `log(0)` is `-inf`, and `0 * -inf` (the zero labels of a cross-entropy) is NaN, so the "
        "loss and every gradient become NaN, usually mid-training and long after the code was written."
    )
    example = """\
        def crossentropy(y_true, y_pred):
            return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
    """
    use_instead = """\
        def crossentropy(y_true, y_pred):
            y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0 - 1e-7)
            return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
        # or better: keep logits and use tf.nn.softmax_cross_entropy_with_logits
    """
    fix_safety = (
        "Safe once confirmed. For a nonnegative argument the fix bounds it below by eps in the call's own spelling "
        "(`tf.maximum(x, 1e-7)`, `K.maximum(x, K.epsilon())`, `ops.maximum`, `jnp.maximum`, `torch.clamp(x, "
        "min=1e-7)`, `x.clamp(min=1e-7).log()`); values change only where x < eps, where the original log was -inf "
        "or within float32 noise of it. `losslint fix` applies it after TensorFlow has run both versions and found "
        "values and gradients equal on normal inputs and finite on edge inputs (exact 0 and 1). No fix is offered "
        "for arguments that can be negative (the log itself is the bug there) or for `log1p`."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name not in _LOGS:
            return
        arg = operand(node, op)
        if arg is None:
            return
        if op.name != "log1p" and activation_under_log(self.context.facts, arg, self.stmt) is not None:
            return  # log of an activation: LL102 reports it with the fused op
        v = self.value(arg)
        if op.name == "log1p":
            v = _add(v, const(1.0))
        if v.positive or not (v.origins & _RISKY) or self.context.facts.only_compared(node, self.stmt):
            return
        what = self.source_of(arg)
        where = origin_phrase(v)
        shown = op.name if op.name != "log1p" else "log1p"
        if v.lo < 0 and not ({"y_pred", "y_true", "probability", "softmax", "sigmoid"} >= (v.origins & _RISKY)):
            self.report(node, f"{shown} of `{what}` ({where}), which can be 0 or negative: the loss becomes "
                              f"-inf/NaN and its gradient NaN")
        else:
            self.report(node, f"{shown} of `{what}` ({where}), which can be 0: the loss becomes -inf and its "
                              f"gradient NaN", self._fix(node, op, arg, v))

    def _fix(self, node: cst.Call, op, arg: cst.BaseExpression, v) -> FixSpec | None:  # type: ignore[no-untyped-def]
        # Bounding a nonnegative value below by eps changes it only where it was below eps, i.e. where the log was
        # -inf or within float32 noise of it: safe, once TensorFlow confirms values and gradients agree elsewhere.
        if op.name == "log1p" or v.lo < 0:
            return None
        bounded = lower_bound(self.context.index, node, op, arg, _EPS)
        if bounded is None:
            return None
        return FixSpec(f"bound `{self.source_of(arg, 30)}` below by eps before the log", "safe",
                       (Replacement(arg, bounded),))

    VALID = [
        Valid("""
            from keras import ops

            def binary_focal_loss(y_true, y_pred, gamma=2.0):
                y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
                p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
                return -ops.mean((1 - p_t) ** gamma * ops.log(p_t))
        """, "focal loss p_t: a convex mix of clipped y_pred and 1 - y_pred stays >= eps"),
        Valid("""
            import tensorflow as tf

            def crossentropy(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0 - 1e-7)
                return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
        """, "clip before log, reassigning the parameter"),
        Valid("""
            from tensorflow.keras import backend as K

            def bce(y_true, y_pred):
                return -K.mean(y_true * K.log(y_pred + K.epsilon())
                               + (1 - y_true) * K.log(1 - y_pred + K.epsilon()))
        """, "+ K.epsilon()"),
        Valid("""
            import torch

            def nll_loss(probs, target):
                return -(target * torch.log(probs.clamp(min=1e-7))).sum(dim=1).mean()
        """, "tensor clamp(min=eps)"),
        Valid("""
            import jax.numpy as jnp

            def loss_fn(y_true, y_pred):
                return -jnp.mean(y_true * jnp.log(jnp.maximum(y_pred, 1e-7)))
        """, "maximum(x, eps)"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.math.log(1 + tf.abs(y_true - y_pred)))
                return loss
        """, "log(1 + nonnegative) can never see 0 (seed claim (b) is false)"),
        Valid("""
            import tensorflow as tf

            def log_cosh(y_true, y_pred):
                d = y_pred - y_true
                return tf.reduce_mean(d + tf.math.softplus(-2.0 * d) - tf.math.log(2.0))
        """, "log of a positive constant"),
        Valid("""
            import keras
            from keras import ops

            EPS = 1e-6

            class Kld(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_true = ops.clip(y_true, EPS, 1.0)
                    y_pred = ops.clip(y_pred, EPS, 1.0)
                    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)
        """, "a module constant eps, both sides clipped"),
        Valid("""
            import torch

            def poisson_nll(log_input, target):
                return (torch.exp(log_input) - target * log_input).mean()
        """, "no log at all on the risky value"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            def entropy_loss(y_true, y_pred):
                p = tf.nn.softmax(y_pred)
                return -tf.reduce_sum(p * tf.math.log(tf.maximum(p, 1e-7)))
        """, "maximum guard on a softmax"),
        Valid("""
            import torch

            def safe_log(x, eps=1e-7):
                return torch.log(x + eps)

            def dice_bce_loss(pred, target):
                return -(target * safe_log(pred)).mean()
        """, "guard inside a same-module helper with a positive default eps"),
        Valid("""
            import tensorflow as tf

            def print_scale(x):
                return tf.math.log(x)
        """, "not a loss scope"),
        Valid("""
            import torch

            def focal_loss(y_pred, y_true, mode="binary", eps=1e-7):
                y_pred = torch.clamp(y_pred, eps, 1 - eps)
                if mode == "binary":
                    y_pred = torch.log(y_pred / (1 - y_pred))
                elif mode == "multiclass":
                    y_pred = torch.log(y_pred)
                return (y_pred * y_true).mean()
        """, "an assignment in the `if` branch does not reach the `elif` (smp 0.6)"),
        Valid("""
            import torch

            from ..utils import common_functions as c_f

            def nca_loss(mat, query_labels, reference_labels):
                same_labels = c_f.to_dtype(query_labels.unsqueeze(1) == reference_labels.unsqueeze(0), dtype=mat.dtype)
                exp = torch.nn.functional.softmax(mat, dim=1)
                exp = torch.sum(exp * same_labels, dim=1)
                non_zero = exp != 0
                return -torch.log(exp[non_zero]).mean()
        """, "a boolean selection of the nonzero elements (pytorch-metric-learning 2.9)"),
        Valid("""
            import torch
            from ..utils import common_functions as c_f

            def ntxent_loss(pos, neg):
                numerator = torch.exp(pos)
                denominator = torch.sum(torch.exp(neg), dim=1) + numerator
                return -torch.log(numerator / denominator + c_f.small_val(pos.dtype)).mean()
        """, "an epsilon from a helper in another module, known by its name"),
        Valid("""
            import torch

            def pnp_loss(sim_diff, n, neg_rows, neg_cols):
                neg = torch.zeros(n, n)
                neg[neg_rows, neg_cols] = 1
                mask = neg.unsqueeze(0).repeat(n, 1, 1)
                rank = torch.sum(torch.sigmoid(sim_diff) * mask, dim=-1)
                return torch.log(1 + rank).mean()
        """, "log(1 + sum of sigmoid * 0/1 mask), the mask built by zeros() and index stores"),
        Valid("""
            import torch

            def sampson_loss(numerator, denominator, scale2):
                r2 = (numerator * denominator.rsqrt()).square()
                return torch.log1p(r2 / scale2).sum()
        """, "a hyper-parameter divisor keeps the quotient's sign: log1p(nonnegative) (kornia 0.9)"),
        Valid("""
            import jax.numpy as jnp

            def kl_divergence(log_predictions, targets):
                loss = targets * (jnp.where(targets == 0, 0, jnp.log(targets)) - log_predictions)
                return jnp.sum(loss, axis=-1)
        """, "where selects the log only where its argument is nonzero (optax 0.2.8)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def crossentropy(y_true, y_pred):
                return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
        """, "LL101", 4, "TF2 tf.math.log of y_pred", fixed="""
            import tensorflow as tf

            def crossentropy(y_true, y_pred):
                return -tf.reduce_sum(y_true * tf.math.log(tf.math.maximum(y_pred, 1e-7)), axis=-1)
        """),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            y = tf.matmul(x, W) + b
            probs = tf.div(y, tf.reduce_sum(y, 1, keep_dims=True))
            cross_entropy = -tf.reduce_sum(y_ * tf.log(probs))
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
        """, "LL101", 7, "TF1 tf.log of a ratio whose value reaches minimize()"),
        Invalid("""
            from keras import backend as K

            def bce(y_true, y_pred):
                return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred + K.epsilon()))
        """, "LL101", 4, "Keras backend K.log of y_pred", fixed="""
            from keras import backend as K

            def bce(y_true, y_pred):
                return -K.mean(y_true * K.log(K.maximum(y_pred, K.epsilon())) + (1 - y_true) * K.log(1 - y_pred + K.epsilon()))
        """),
        Invalid("""
            import torch

            class WeightedNLLLoss(torch.nn.Module):
                def forward(self, input, target):
                    return -(target * input.log()).sum(dim=1).mean()
        """, "LL101", 5, "torch tensor method .log() in a loss module's forward", fixed="""
            import torch

            class WeightedNLLLoss(torch.nn.Module):
                def forward(self, input, target):
                    return -(target * input.clamp(min=1e-7).log()).sum(dim=1).mean()
        """),
        Invalid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, labels):
                probs = model_apply(params, x)
                return -jnp.mean(labels * jnp.log(probs))

            grads = jax.grad(loss_fn)(params, x, labels)
        """, "LL101", 6, "jnp.log of probabilities in a jax.grad target", fixed="""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, labels):
                probs = model_apply(params, x)
                return -jnp.mean(labels * jnp.log(jnp.maximum(probs, 1e-7)))

            grads = jax.grad(loss_fn)(params, x, labels)
        """),
        Invalid("""
            import keras
            from keras import ops

            class Kld(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_pred = ops.clip(y_pred, 1e-7, 1.0)
                    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)
        """, "LL101", 7, "keras.ops.log of y_true / y_pred: y_true can be 0", fixed="""
            import keras
            from keras import ops

            class Kld(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_pred = ops.clip(y_pred, 1e-7, 1.0)
                    return ops.sum(y_true * ops.log(ops.maximum(y_true / y_pred, 1e-7)), axis=-1)
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def bce_loss(pred, target):
                pred = torch.sigmoid(pred)
                return -(target * torch.log(pred) + (1 - target) * torch.log1p(-pred)).mean()
        """, "LL101", 6, "log1p(-p) is log(1 - p), -inf at p = 1"),
        Invalid("""
            import numpy as np
            import tensorflow as tf

            def entropy_loss(y_true, y_pred):
                return -np.sum(y_pred * np.log2(y_pred))
        """, "LL101", 5, "NumPy spelling, log2", fixed="""
            import numpy as np
            import tensorflow as tf

            def entropy_loss(y_true, y_pred):
                return -np.sum(y_pred * np.log2(np.maximum(y_pred, 1e-7)))
        """),
    ]
