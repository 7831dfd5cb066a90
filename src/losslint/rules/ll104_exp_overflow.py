"""LL104 exp-overflow: log(sum(exp(x))), exp(x) / sum(exp(x)) by hand, exp of an amplified argument."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.bounds import bounds_for
from losslint.analysis.index import operand
from losslint.analysis.spelling import logsumexp_call, reduction_axis, softmax_call
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

_LSE = {
    "tensorflow": "tf.reduce_logsumexp(x, axis)",
    "keras": "keras.ops.logsumexp(x, axis) (K.logsumexp in Keras 2)",
    "torch": "torch.logsumexp(x, dim)",
    "jax": "jax.nn.logsumexp(x, axis)",
    "numpy": "scipy.special.logsumexp(x, axis)",
    "tensor-method": "x.logsumexp(dim)",
}
_SOFTMAX = {
    "tensorflow": "tf.nn.softmax(x, axis) (or log_softmax / a cross-entropy with logits)",
    "keras": "keras.ops.softmax(x, axis)",
    "torch": "torch.softmax(x, dim) (or F.log_softmax / F.cross_entropy)",
    "jax": "jax.nn.softmax(x, axis)",
    "numpy": "scipy.special.softmax(x, axis)",
    "tensor-method": "x.softmax(dim)",
}


class ExpOverflow(Rule):
    code = "LL104"
    name = "exp-overflow"
    summary = "log(sum(exp(x))), exp(x) / sum(exp(x)) by hand, exp of an amplified argument (square, large factor)"
    what_it_does = (
        "Finds three shapes of `exp` that overflow inside a loss: `log(sum(exp(x)))` (or `log(mean(exp(x)))`), a "
        "softmax written by hand as `exp(x) / sum(exp(x))` (also `exp(a) / (exp(a) + sum(exp(b)))`), and `exp` of an "
        "amplified argument: the square or a higher power of a prediction, label or difference "
        "(`exp(square(y_true - y_pred))`, `exp(d ** 2)`) or such a value times a large constant (`exp(10 * x)`). It "
        "stays silent when the argument is provably bounded above: max-shifted (`exp(x - max(x, keepdims=True))`, "
        "`log(sum(exp(x - m))) + m`), negated (`exp(-abs(x))`, `exp(-d ** 2)`), clipped, or a log-probability, and on "
        "the fused ops (`reduce_logsumexp`, `softmax`, `log_softmax`)."
    )
    why_bad = (
        "`exp` overflows float32 to inf once its argument exceeds about 88.7 (11 in float16). A logit of 89 makes "
        "`sum(exp(x))` inf, its log inf and the hand-written softmax inf / inf = NaN, and the gradient NaN. The fused "
        "ops subtract the maximum first and return the same value without overflowing. An amplified argument gets "
        "there much sooner: `exp(d ** 2)` is inf for |d| > 9.4, an error a regression model easily makes early in "
        "training."
    )
    example = """\
        def loss(y_true, y_pred):
            return tf.reduce_mean(tf.exp(tf.square(y_true - y_pred)))

        def nll(labels, logits):
            return -tf.reduce_sum(labels * (logits - tf.math.log(tf.reduce_sum(tf.exp(logits), -1, keepdims=True))))
    """
    use_instead = """\
        def loss(y_true, y_pred):
            # a different, bounded loss: decide what large errors should cost
            return tf.reduce_mean(tf.exp(tf.minimum(tf.square(y_true - y_pred), 80.0)))

        def nll(labels, logits):
            return -tf.reduce_sum(labels * tf.nn.log_softmax(logits), -1)
    """
    fix_safety = (
        "Safe once confirmed, for the direct forms. `log(sum(exp(x), axis...))` becomes the framework's logsumexp of "
        "`x` with the same reduction arguments (`tf.reduce_logsumexp`, `K.logsumexp`, `ops.logsumexp`, "
        "`torch.logsumexp(x, dim)` or `x.logsumexp(dim)`, `jax.nn.logsumexp`), and `exp(x) / sum(exp(x), axis, "
        "keepdims=True)` becomes `softmax(x, axis)` (`tf.nn.softmax`, `K.softmax`, `ops.softmax`, `torch.softmax`, "
        "`jax.nn.softmax`). Both compute the same values as the original wherever it is finite, after subtracting the "
        "max, so they stay finite where it overflowed; `losslint fix` applies them after TensorFlow has confirmed "
        "that. No fix is offered for `log(mean(exp(x)))` (it needs `- log(n)`, and n is not known from the code), "
        "for `log(sum(exp(x)) + eps)` (the eps changes the value), for exps reached through a name, for a softmax "
        "without a single literal axis and keepdims, for a torch sum without `dim`, for module-level code (TF1 "
        "graphs: the loss cannot be isolated to confirm the rewrite), for NumPy (SciPy's logsumexp / softmax are "
        "another import), or for an amplified argument: every remedy there (clipping the "
        "argument, capping the value, another loss) changes the loss and is only suggested; note that "
        "`expm1(abs(d))` is a different function from `exp(d ** 2)` (other values, gradients and minimiser "
        "landscape), not an overflow-free equivalent."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None:
            return
        stmt = self.stmt
        if stmt is None:
            return
        b = bounds_for(self.context.facts)
        if op.name == "log":
            exps = b.log_sum_exp(node, stmt)
            if exps and b.unsafe_exps(exps):
                arg = operand(node, op)
                red = "mean" if arg is not None and "mean" in self.source_of(arg, 200).split("(")[0] else "sum"
                self.report(node, f"log({red}(exp(x))) of `{self.source_of(arg) if arg is not None else ''}` overflows: "
                                  f"exp is inf once x > 88.7 (float32), so the loss is inf and its gradient NaN; use "
                                  f"{_LSE.get(op.framework, 'logsumexp')} (minus log(n) for a mean), which subtracts "
                                  f"the max and gives the same value", self._lse_fix(node, op, arg))
            return
        if op.name == "divide":
            args = [a.value for a in node.args if a.keyword is None and not a.star]
            if op.is_method and isinstance(node.func, cst.Attribute) and args:
                self._softmax(node, node.func.value, args[0], op.framework)
            elif len(args) >= 2:
                self._softmax(node, args[0], args[1], op.framework)
            return
        if op.name == "exp":
            arg = operand(node, op)
            if arg is None or id(node) in b.exps_in_patterns(stmt):
                return
            amp = b.amplified(arg, stmt)
            if amp is None:
                return
            base = self.source_of(amp.base, 30)
            when = f"|{base}| > {amp.limit():.3g}" if amp.kind != "scaled" else f"{base} > {amp.limit():.3g}"
            self.report(node, f"exp of an amplified argument `{self.source_of(amp.term)}` overflows float32 to inf "
                              f"once {when}, and the loss and its gradient become inf/NaN; every remedy (clip the "
                              f"argument, cap the value, another loss) changes the loss, so this is a suggestion, not "
                              f"a fix (expm1(abs(d)) is a different loss too)")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Divide):
            self._softmax(node, node.left, node.right, None)

    def _softmax(self, node: cst.CSTNode, num: cst.BaseExpression, den: cst.BaseExpression,
                 framework: str | None) -> None:
        stmt = self.stmt
        if stmt is None:
            return
        b = bounds_for(self.context.facts)
        exps = b.softmax_by_hand(num, den, stmt)
        if not exps or not b.unsafe_exps(exps):
            return
        if framework is None:
            first = self.op_of(exps[0][0])
            framework = first.framework if first is not None else ""
        self.report(node, f"softmax written by hand (`{self.source_of(node)}`): exp overflows to inf once x > 88.7 "
                          f"(float32) and inf / inf is NaN in the loss and the gradient; use "
                          f"{_SOFTMAX.get(framework, 'the framework softmax')}, which subtracts the max",
                    self._softmax_fix(node, num, den))

    # ---- fixes -------------------------------------------------------------------------------------------------
    def _exp(self, expr: cst.BaseExpression):  # type: ignore[no-untyped-def]
        """(op, x) of a direct `exp(x)` call / `x.exp()` with nothing else passed, else None."""
        if not isinstance(expr, cst.Call):
            return None
        op = self.op_of(expr)
        if op is None or op.name != "exp" or len(expr.args) != (0 if op.is_method else 1):
            return None
        x = operand(expr, op)
        return (op, x) if x is not None else None

    def _sum_of_exp(self, expr: cst.BaseExpression | None):  # type: ignore[no-untyped-def]
        """(sum call, sum op, exp op, x) of a direct `sum(exp(x), ...)` / `exp(x).sum(...)`, else None."""
        if not isinstance(expr, cst.Call):
            return None
        op = self.op_of(expr)
        if op is None or op.name != "sum":
            return None
        inner = operand(expr, op)
        found = self._exp(inner) if inner is not None else None
        if found is None:
            return None
        return expr, op, found[0], found[1]

    def _in_function(self) -> bool:
        # Module-level (TF1 graph) code cannot be isolated to confirm a rewrite, so a safe fix would never apply.
        return self.stmt is not None and self.stmt.func is not None

    def _lse_fix(self, node: cst.Call, op, arg: cst.BaseExpression | None) -> FixSpec | None:  # type: ignore
        # log(sum(exp(x))) == logsumexp(x) wherever the former is finite: safe once confirmed. A mean would need
        # - log(n), which the code does not state, so log(mean(exp(x))) gets no fix; nor does a log of a name or of a
        # sum plus eps (the eps changes the value).
        if op.name != "log" or len(node.args) != (0 if op.is_method else 1) or not self._in_function():
            return None
        found = self._sum_of_exp(arg)
        if found is None:
            return None
        new = logsumexp_call(self.context.index, *found)
        if new is None:
            return None
        return FixSpec("use the fused logsumexp", "safe", (Replacement(node, new),))

    def _softmax_fix(self, node: cst.CSTNode, num: cst.BaseExpression, den: cst.BaseExpression) -> FixSpec | None:
        # exp(x) / sum(exp(x), axis, keepdims=True) == softmax(x, axis) wherever the former is finite: safe once
        # confirmed. Without keepdims or with no single literal axis the shapes or the reduced axes may differ.
        if not (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide)) \
                or not self._in_function():
            return None
        found = self._sum_of_exp(den)
        top = self._exp(num)
        if found is None or top is None or not num.deep_equals(operand(found[0], found[1])):
            return None
        ax = reduction_axis(found[0], found[1])
        if ax is None or not ax[1]:
            return None
        new = softmax_call(self.context.index, found[0], found[1], found[2], found[3], ax[0])
        if new is None:
            return None
        return FixSpec("use the framework softmax", "safe", (Replacement(node, new),))

    VALID = [
        Valid("""
            import tensorflow as tf

            def nll(labels, logits):
                return -tf.reduce_sum(labels * (logits - tf.reduce_logsumexp(logits, -1, keepdims=True)), -1)
        """, "the fused reduce_logsumexp"),
        Valid("""
            import numpy as np
            import torch

            def softmax_loss(logits, target):
                z = logits - logits.max(dim=1, keepdim=True)[0]
                p = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
                return -(target * torch.log(p + 1e-7)).sum(1).mean()
        """, "max-shifted softmax by hand: exp(z) <= 1"),
        Valid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, y):
                logits = x @ params
                m = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
                lse = jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True)) + m
                return -jnp.mean(jnp.sum(y * (logits - lse), axis=-1))

            g = jax.grad(loss_fn)
        """, "log(sum(exp(x - m))) + m with m a stop-gradient max"),
        Valid("""
            import tensorflow as tf

            def sigmoid_xent(labels, logits):
                return tf.reduce_mean(tf.maximum(logits, 0.0) - logits * labels + tf.math.log1p(tf.exp(-tf.abs(logits))))
        """, "exp(-abs(x)) is at most 1"),
        Valid("""
            import torch

            def gaussian_nll(pred, target, log_var):
                return (0.5 * torch.exp(-log_var) * (pred - target) ** 2 + 0.5 * log_var).mean()
        """, "exp of a plain (not amplified) log-variance"),
        Valid("""
            import keras
            from keras import ops

            class RbfLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.mean(1.0 - ops.exp(-ops.square(y_true - y_pred) / 2.0), axis=-1)
        """, "Gaussian kernel exp(-d**2 / 2) is bounded by 1"),
        Valid("""
            import torch

            def poisson_loss(log_rate, target):
                return (torch.exp(log_rate) - target * log_rate).mean()
        """, "exp of a log-rate, not amplified"),
        Valid("""
            import tensorflow as tf

            def focal_loss(y_true, logits, gamma=2.0):
                logp = tf.nn.log_softmax(logits)
                p = tf.exp(logp)
                return -tf.reduce_sum(y_true * (1 - p) ** gamma * logp, -1)
        """, "exp of a log-probability is at most 1"),
        Valid("""
            import torch

            def ntxent_loss(pos_pairs, neg_pairs, temperature=0.07):
                pos_pairs = pos_pairs / temperature
                neg_pairs = neg_pairs / temperature
                max_val = torch.max(pos_pairs, torch.max(neg_pairs, dim=1, keepdim=True)[0]).detach()
                numerator = torch.exp(pos_pairs - max_val).squeeze(1)
                denominator = torch.sum(torch.exp(neg_pairs - max_val), dim=1) + numerator
                return -torch.log((numerator / denominator) + 1e-20).mean()
        """, "max-shifted by the elementwise max of both sets (pytorch-metric-learning 2.9)"),
        Valid("""
            import tensorflow as tf

            def improved_loss(y_true, y_pred):
                diff = tf.abs(y_true - y_pred)
                return tf.reduce_mean(tf.math.expm1(diff))
        """, "expm1(|d|) is a different loss, but not an amplified exp"),
        Valid("""
            import keras
            from keras import ops

            def ssim_loss(y_true, y_pred, size=11, sigma=1.5):
                x = ops.arange(size, dtype="float32") - (size - 1) / 2.0
                gauss = ops.exp(-(x ** 2) / (2.0 * sigma ** 2))
                gauss = gauss / ops.sum(gauss)
                return ops.mean(ops.abs(y_true - y_pred) * gauss[0])
        """, "a normalised Gaussian kernel: exp(-x**2 / (2 sigma**2)) <= 1 (keras ops/image.py, kornia pyramid.py)"),
        Valid("""
            import torch

            def soft_argmax_loss(patch_scores, grid, target, temperature=0.1):
                max_v = patch_scores.max(dim=1).values.detach()[:, None]
                x_exp = ((patch_scores - max_v) / temperature).exp()
                w = x_exp / x_exp.sum(dim=1, keepdim=True)
                return ((w @ grid - target) ** 2).mean()
        """, "max-shifted through .values, detach() and [:, None], then divided by a temperature (kornia aliked)"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def manifold_loss(emb, proxies, margin=0.1):
                sim = F.cosine_similarity(emb, proxies.unsqueeze(1), dim=-1).t() + margin
                return torch.log(1 + torch.sum(torch.exp(sim), dim=1)).mean()
        """, "log(1 + sum(exp(cosine + margin))): not a log-sum-exp, and bounded (pytorch-metric-learning)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def loss_with_potential_overflow(y_true, y_pred):
                return tf.reduce_mean(tf.exp(tf.square(y_true - y_pred)))
        """, "LL104", 4, "the seed: exp(square(d)) is inf for |d| > 9.4"),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            logits = tf.matmul(x, W) + b
            log_z = tf.log(tf.reduce_sum(tf.exp(logits), 1, keep_dims=True))
            cost = -tf.reduce_mean(tf.reduce_sum(y_ * (logits - log_z), 1))
            train_op = tf.train.AdamOptimizer(1e-3).minimize(cost)
        """, "LL104", 6, "TF1 log(reduce_sum(exp(logits))); module level: no fix (cannot be confirmed)"),
        Invalid("""
            import torch

            def softmax_xent(logits, target):
                e = torch.exp(logits)
                p = e / e.sum(dim=1, keepdim=True)
                return -(target * torch.log(p + 1e-8)).sum(dim=1).mean()
        """, "LL104", 5, "torch softmax by hand"),
        Invalid("""
            from keras import backend as K

            def weighted_mse(y_true, y_pred):
                err = y_pred - y_true
                return K.mean(K.exp(err ** 2) * K.square(err), axis=-1)
        """, "LL104", 5, "Keras 2 backend exp(d ** 2)"),
        Invalid("""
            import keras
            from keras import ops

            class SharpLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.mean(ops.exp(10.0 * (y_pred - y_true)), axis=-1)
        """, "LL104", 6, "keras.ops exp(10 * d)"),
        Invalid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, labels):
                logits = x @ params
                return -jnp.mean(jnp.sum(labels * logits, -1) - jnp.log(jnp.sum(jnp.exp(logits), -1)))

            grads = jax.grad(loss_fn)(params, x, labels)
        """, "LL104", 6, "jax log(sum(exp(logits)))", fixed="""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, labels):
                logits = x @ params
                return -jnp.mean(jnp.sum(labels * logits, -1) - jax.nn.logsumexp(logits, -1))

            grads = jax.grad(loss_fn)(params, x, labels)
        """),
        Invalid("""
            import torch

            def infonce_loss(pos, neg):
                num = torch.exp(pos)
                return -torch.log(num / (num + torch.exp(neg).sum(dim=1))).mean()
        """, "LL104", 5, "InfoNCE by hand: exp(a) / (exp(a) + sum(exp(b)))"),
        Invalid("""
            import tensorflow as tf

            def lse_mse(y_true, y_pred):
                return tf.math.log(tf.reduce_mean(tf.exp(tf.square(y_true - y_pred))))
        """, "LL104", 4, "log(mean(exp(d**2))): one finding, with the value-preserving logsumexp"),
        Invalid("""
            import tensorflow as tf

            def ge2e_loss(S, S_correct):
                return -tf.reduce_sum(S_correct - tf.log(tf.reduce_sum(tf.exp(S), axis=1, keep_dims=True) + 1e-6))
        """, "LL104", 4, "log(sum(exp(S)) + eps): the eps guards the log, not the sum"),
        Invalid("""
            import torch

            def nll_loss(logits, target):
                log_z = torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
                return -(target * (logits - log_z)).sum(dim=1).mean()
        """, "LL104", 4, "torch log(exp(x).sum(dim)): the tensor-method logsumexp", fixed="""
            import torch

            def nll_loss(logits, target):
                log_z = logits.logsumexp(dim=1, keepdim=True)
                return -(target * (logits - log_z)).sum(dim=1).mean()
        """),
        Invalid("""
            from keras import ops

            def softmax_xent(y_true, logits):
                p = ops.exp(logits) / ops.sum(ops.exp(logits), axis=-1, keepdims=True)
                return -ops.sum(y_true * ops.log(ops.maximum(p, 1e-7)), axis=-1)
        """, "LL104", 4, "keras.ops softmax by hand in one expression", fixed="""
            from keras import ops

            def softmax_xent(y_true, logits):
                p = ops.softmax(logits, axis=-1)
                return -ops.sum(y_true * ops.log(ops.maximum(p, 1e-7)), axis=-1)
        """),
        Invalid("""
            import jax.numpy as jnp

            def lse_loss(logits):
                return jnp.mean(jnp.log(jnp.sum(jnp.exp(logits), axis=-1)))
        """, "LL104", 4, "jax.numpy only: no jax.nn in scope, so no logsumexp to spell"),
    ]
