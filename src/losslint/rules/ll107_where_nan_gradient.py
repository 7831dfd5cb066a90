"""LL107 where-nan-gradient: where(cond, f(x), other) whose masked-out inputs make f inf/NaN."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.bounds import bounds_for
from losslint.analysis.spelling import code, ones_for
from losslint.analysis.walk import walk
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

_OP_WORDS = {"log": "log", "log1p": "log1p", "divide": "division", "sqrt": "sqrt", "pow": "power"}


class WhereNanGradient(Rule):
    code = "LL107"
    name = "where-nan-gradient"
    summary = "where/select whose unselected branch is NaN/inf for the masked-out inputs (log, div, sqrt, pow)"
    what_it_does = (
        "Finds `where(cond, f(x), other)` (`tf.where`, `tf.compat.v1.where`, `tf.select`, `torch.where`, "
        "`jnp.where`, `keras.ops.where`, `K.switch` is not covered) inside a loss where `f` is a log, a division, a "
        "sqrt or a negative/fractional power, and `cond` is what keeps `f`'s argument in its safe range: the "
        "inputs it masks out are exactly those that make `f` inf or NaN (`where(x > 0, log(x), 0)`, "
        "`where(den > 0, num / den, 0)`). A condition held in a name (`m = x > 0`) or a comparison op call counts. "
        "It stays silent on the double-where pattern, where `f`'s argument is itself sanitised, when the argument "
        "is safe everywhere, and when it is a label or mask that carries no gradient."
    )
    why_bad = (
        "`where` evaluates and differentiates both branches. The forward value is fine, but in the backward pass "
        "the unselected branch receives a zero upstream gradient times f'(x), and f'(x) is inf at the masked-out "
        "inputs: 0 * inf = NaN, and NaN wins in the sum, so the whole gradient is NaN (documented in `tf.where`, "
        "jax-ml/jax#1052, pytorch/pytorch#156212). The loss looks finite while the weights turn to NaN."
    )
    example = """\
        def log_loss(y_true, y_pred):
            return -tf.reduce_mean(tf.where(y_pred > 0, y_true * tf.math.log(y_pred), 0.0))
    """
    use_instead = """\
        def log_loss(y_true, y_pred):
            safe = tf.where(y_pred > 0, y_pred, 1.0)  # the masked-out inputs never reach the log
            return -tf.reduce_mean(tf.where(y_pred > 0, y_true * tf.math.log(safe), 0.0))
    """
    fix_safety = (
        "Safe once confirmed: the double-where rewrite. The operand of the log / division / sqrt / power is itself "
        "wrapped in a `where` of the same spelling and condition that puts a harmless 1 at the masked-out inputs: "
        "`where(c, log(x), y)` becomes `where(c, log(where(c, x, 1.0)), y)` (`where(c, 1.0, x)` when the hazard is in "
        "the false branch; `tf.ones_like(x)` for TensorFlow, whose TF1 `where` / `select` do not broadcast a scalar). "
        "Where the branch is selected its operand is unchanged, so every forward value is the same; at the masked-out "
        "inputs the branch sees 1, where log, 1 / x, sqrt and x ** p are finite with finite derivatives, so the "
        "gradient is finite. `losslint fix` applies it after TensorFlow has confirmed that. Nested hazards (one inside "
        "another's operand) get no fix, and neither does module-level code (TF1 graphs), where the loss cannot be "
        "isolated to confirm the rewrite."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None or op.name != "where" or self.stmt is None:
            return
        hazards = bounds_for(self.context.facts).where_hazards(node, self.stmt)
        for h in hazards:
            x = self.source_of(h.operand, 30)
            self.report(h.node, f"`{self.source_of(node, 30)}` masks the {_OP_WORDS[h.kind]} of `{x}` only in the "
                                f"forward pass: both branches are differentiated, and at the masked-out inputs "
                                f"({h.what}) the gradient is 0 * inf = NaN; sanitise the operand with the same "
                                f"condition too (double where: `where(cond, {x}, 1)` inside)",
                        self._fix(node, op, h, hazards))

    def _fix(self, call: cst.Call, op, h, hazards) -> FixSpec | None:  # type: ignore[no-untyped-def]
        # The inner where returns the operand itself wherever the outer where selects this branch, so the forward
        # values are unchanged; elsewhere it gives 1, where each hazard op is finite with a finite derivative.
        args = [a for a in call.args if a.keyword is None and not a.star]
        if len(args) != 3 or len(call.args) != 3 or self.stmt is None or self.stmt.func is None:
            return None  # module-level (TF1 graph) code: the loss cannot be isolated to confirm the rewrite
        inside = {id(n) for other in hazards if other is not h for n in _nodes(other.operand)}
        mine = {id(n) for n in _nodes(h.operand)}
        if id(h.node) in inside or any(id(other.node) in mine for other in hazards if other is not h):
            return None  # nested hazards: the edits would overlap
        cond, first = args[0].value, args[1].value
        safe = ones_for(self.context.index, call, op, h.operand)
        if safe is None:
            return None
        x = code(h.operand)
        where = code(call.func)
        in_true = id(h.node) in {id(n) for n in _nodes(first)}
        inner = f"{where}({code(cond)}, {x}, {safe})" if in_true else f"{where}({code(cond)}, {safe}, {x})"
        return FixSpec("sanitise the operand with the same condition (double where)", "safe",
                       (Replacement(h.operand, inner),))

    VALID = [
        Valid("""
            import tensorflow as tf

            def log_loss(y_true, y_pred):
                safe = tf.where(y_pred > 0, y_pred, 1.0)
                return -tf.reduce_mean(tf.where(y_pred > 0, y_true * tf.math.log(safe), 0.0))
        """, "the double-where pattern"),
        Valid("""
            import torch

            def ratio_loss(num, den):
                safe_den = torch.where(den > 0, den, torch.ones_like(den))
                return torch.where(den > 0, num / safe_den, torch.zeros_like(num)).mean()
        """, "double where on a denominator"),
        Valid("""
            import jax.numpy as jnp

            def kl_divergence(log_predictions, targets):
                loss = targets * (jnp.where(targets == 0, 0, jnp.log(targets)) - log_predictions)
                return jnp.sum(loss, axis=-1)
        """, "log of the labels: no gradient flows to them (optax 0.2.8)"),
        Valid("""
            import tensorflow as tf

            def safe_log_loss(y_true, y_pred):
                return -tf.reduce_mean(tf.where(y_true > 0.5, tf.math.log(y_pred + 1e-7), tf.math.log(1 - y_pred + 1e-7)))
        """, "both branches safe everywhere (+ eps)"),
        Valid("""
            import keras
            from keras import ops

            class MaskedMse(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    mask = ops.cast(ops.not_equal(y_true, -1), "float32")
                    per = ops.where(mask > 0, ops.square(y_true - y_pred), 0.0)
                    return ops.sum(per, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)
        """, "where on a branch with no hazard"),
        Valid("""
            import torch

            def huber_like_loss(pred, target, delta=1.0):
                d = (pred - target).abs()
                return torch.where(d < delta, 0.5 * d ** 2, delta * (d - 0.5 * delta)).mean()
        """, "smooth L1 written with where: no log/div/sqrt"),
        Valid("""
            import jax.numpy as jnp
            import jax

            def loss_fn(params, x):
                r = x @ params
                return jnp.mean(jnp.where(r > 0, jnp.log(jnp.maximum(r, 1e-6)), 0.0))

            g = jax.grad(loss_fn)
        """, "the operand is clamped: safe everywhere"),
        Valid("""
            import tensorflow as tf

            def loss(y_true, y_pred):
                return tf.reduce_mean(tf.math.log(y_pred) if USE_LOG else y_pred)
        """, "a Python conditional expression evaluates one branch only"),
    ]
    INVALID = [
        Invalid("""
            from tensorflow.keras import backend as K

            def root_error(y_true, y_pred):
                d = y_true - y_pred
                return K.mean(K.switch(K.abs(d) > 0, K.sqrt(K.abs(d)), K.zeros_like(d)))
        """, "LL107", 5, "Keras 2's K.switch is the backend's where"),
        Invalid("""
            import tensorflow as tf

            def log_loss(y_true, y_pred):
                return -tf.reduce_mean(tf.where(y_pred > 0, y_true * tf.math.log(y_pred), 0.0))
        """, "LL107", 4, "TF2 tf.where(x > 0, log(x), 0)", fixed="""
            import tensorflow as tf

            def log_loss(y_true, y_pred):
                return -tf.reduce_mean(tf.where(y_pred > 0, y_true * tf.math.log(tf.where(y_pred > 0, y_pred, tf.ones_like(y_pred))), 0.0))
        """),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 10])
            p = tf.matmul(x, W)
            cost = -tf.reduce_sum(tf.select(p > 0, tf.log(p), tf.zeros_like(p)))
            train = tf.train.AdamOptimizer().minimize(cost)
        """, "LL107", 5, "TF1 tf.select with tf.log; module level: no fix (cannot be confirmed)"),
        Invalid("""
            import torch

            def ratio_loss(num, den):
                return torch.where(den > 0, num / den, torch.zeros_like(num)).mean()
        """, "LL107", 4, "torch.where(den > 0, num / den, 0)", fixed="""
            import torch

            def ratio_loss(num, den):
                return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.zeros_like(num)).mean()
        """),
        Invalid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x):
                r = x @ params
                return jnp.mean(jnp.where(r > 0, jnp.sqrt(r), 0.0))

            g = jax.grad(loss_fn)
        """, "LL107", 6, "jnp.where(r > 0, sqrt(r), 0) in a jax.grad target", fixed="""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x):
                r = x @ params
                return jnp.mean(jnp.where(r > 0, jnp.sqrt(jnp.where(r > 0, r, 1.0)), 0.0))

            g = jax.grad(loss_fn)
        """),
        Invalid("""
            import keras
            from keras import ops

            class LogCountLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    positive = ops.greater(y_pred, 0.0)
                    return ops.mean(ops.where(positive, y_true * ops.log(y_pred), 0.0), axis=-1)
        """, "LL107", 7, "keras.ops.where with the condition in a name", fixed="""
            import keras
            from keras import ops

            class LogCountLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    positive = ops.greater(y_pred, 0.0)
                    return ops.mean(ops.where(positive, y_true * ops.log(ops.where(positive, y_pred, 1.0)), 0.0), axis=-1)
        """),
        Invalid("""
            import tensorflow as tf

            def inverse_error(y_true, y_pred):
                d = tf.abs(y_true - y_pred)
                return tf.reduce_mean(tf.where(tf.math.not_equal(d, 0.0), 1.0 / d, 0.0))
        """, "LL107", 5, "tf.where(d != 0, 1 / |d|, 0): the gradient at d = 0 is NaN", fixed="""
            import tensorflow as tf

            def inverse_error(y_true, y_pred):
                d = tf.abs(y_true - y_pred)
                return tf.reduce_mean(tf.where(tf.math.not_equal(d, 0.0), 1.0 / tf.where(tf.math.not_equal(d, 0.0), d, tf.ones_like(d)), 0.0))
        """),
        Invalid("""
            import torch

            def power_loss(pred, target):
                d = (pred - target).abs()
                return torch.where(d > 0, d ** -0.5, torch.zeros_like(d)).mean()
        """, "LL107", 5, "negative power masked by where", fixed="""
            import torch

            def power_loss(pred, target):
                d = (pred - target).abs()
                return torch.where(d > 0, torch.where(d > 0, d, 1.0) ** -0.5, torch.zeros_like(d)).mean()
        """),
        Invalid("""
            import jax.numpy as jnp

            def log_loss(y_true, y_pred):
                return -jnp.mean(jnp.where(y_pred <= 0, 0.0, y_true * jnp.log(y_pred)))
        """, "LL107", 4, "the hazard in the false branch: the inner where puts 1 where the condition holds", fixed="""
            import jax.numpy as jnp

            def log_loss(y_true, y_pred):
                return -jnp.mean(jnp.where(y_pred <= 0, 0.0, y_true * jnp.log(jnp.where(y_pred <= 0, 1.0, y_pred))))
        """),
    ]


def _nodes(expr: cst.CSTNode) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    walk(expr, out.append)
    return out
