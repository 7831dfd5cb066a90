"""LL105 infinite-gradient-at-zero: sqrt / norm / x ** p (0 < p < 1) of a value that can be exactly 0."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.facts import Value, _literal, origin_phrase
from losslint.analysis.index import operand
from losslint.analysis.spelling import lower_bound
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

# Values that really reach 0 in training: distances between coinciding embeddings, zero residuals, empty sums.
_RISKY = frozenset({"square", "difference", "sum", "norm", "y_true", "y_pred", "probability", "mask", "count", "std",
                    "sigmoid", "softmax"})


# Labels carry no gradient: sqrt(y_true) or norm(targets) cannot produce a NaN gradient.
_NO_GRADIENT = frozenset({"y_true", "mask", "count"})


def _risky(v: Value) -> bool:
    if not v.can_be_zero or not (v.origins & _RISKY) or (v.origins & _RISKY) <= _NO_GRADIENT:
        return False
    return v.lo >= 0 or "difference" in v.origins


class InfiniteGradientAtZero(Rule):
    code = "LL105"
    name = "infinite-gradient-at-zero"
    summary = "sqrt / norm / pow(x, p < 1) of a value that can be exactly 0 (distances, sums of squares)"
    what_it_does = (
        "Finds `sqrt`, `rsqrt`, a fractional power (`x ** 0.5`, `pow(x, 0.25)`) and TensorFlow/JAX/NumPy `norm` "
        "inside a loss when the argument can be exactly 0: a sum of squares, a difference, a distance, a "
        "probability, with no `+ eps` or `maximum(x, eps)` guard."
    )
    why_bad = (
        "The derivative of sqrt(x) is 1 / (2 sqrt(x)), infinite at 0; the chain rule then multiplies it by the "
        "derivative of the inside, which is 0 there (2(a - b) for a squared distance), and inf * 0 is NaN. Identical "
        "embeddings, a collapsed network or an exact prediction make the whole batch gradient NaN, while the loss "
        "value itself looks fine. `tf.norm` of a zero vector has a NaN gradient for the same reason "
        "(tensorflow/tensorflow#12071)."
    )
    example = """\
        def contrastive_loss(y_true, y_pred):
            d = tf.sqrt(tf.reduce_sum(tf.square(y_pred[:, 0] - y_pred[:, 1]), axis=-1))
            return tf.reduce_mean(y_true * tf.square(d) + (1 - y_true) * tf.square(tf.maximum(1.0 - d, 0.0)))
    """
    use_instead = """\
        def contrastive_loss(y_true, y_pred):
            sq = tf.reduce_sum(tf.square(y_pred[:, 0] - y_pred[:, 1]), axis=-1)
            d = tf.sqrt(tf.maximum(sq, 1e-12))
            return tf.reduce_mean(y_true * sq + (1 - y_true) * tf.square(tf.maximum(1.0 - d, 0.0)))
    """
    fix_safety = (
        "Safe once confirmed, for `sqrt` of a nonnegative value: `sqrt(x)` becomes `sqrt(maximum(x, 1e-12))` in the "
        "call's own spelling (`K.maximum(x, K.epsilon())` for the Keras backend, `torch.clamp(x, min=1e-12)`, "
        "`x.clamp(min=1e-12).sqrt()`), which equals the original wherever x >= eps and has a finite gradient at 0. "
        "`losslint fix` applies it after TensorFlow has confirmed that. Norms and fractional powers get no automatic "
        "fix (the rewrite would change the expression's structure)."
    )

    def visit_Call(self, node: cst.Call) -> None:
        op = self.op_of(node)
        if op is None:
            return
        if op.name in ("sqrt", "rsqrt"):
            arg = operand(node, op)
            fix = None
            if op.name == "sqrt" and arg is not None and self.value(arg).lo >= 0:
                # max(x, 1e-12) equals x wherever x >= 1e-12 and moves sqrt by at most 1e-6: safe once confirmed.
                bounded = lower_bound(self.context.index, node, op, arg, "1e-12")
                if bounded is not None:
                    fix = FixSpec("bound the argument below by a tiny eps inside the sqrt", "safe",
                                  (Replacement(arg, bounded),))
            self._check(node, arg, op.name, fix)
        elif op.name == "norm" and op.framework in ("tensorflow", "jax", "numpy", "keras"):
            # PyTorch's norms have a zero subgradient at 0 (torch.linalg.vector_norm); TF's and JAX's do not.
            self._check(node, operand(node, op), "norm")
        elif op.name == "pow":
            args = [a.value for a in node.args if a.keyword is None and not a.star]
            exponent = args[0] if op.is_method and args else (args[1] if len(args) > 1 else None)
            p = _literal(exponent) if exponent is not None else None
            if p is not None and 0 < p < 1:
                self._check(node, operand(node, op), f"pow(·, {p:g})")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power):
            p = _literal(node.right)
            if p is not None and 0 < p < 1:
                self._check(node, node.left, f"** {p:g}")

    def _check(self, node: cst.CSTNode, arg: cst.BaseExpression | None, what: str,
               fix: FixSpec | None = None) -> None:
        if arg is None:
            return
        v = self.value(arg)
        if not _risky(v) or self.context.facts.only_checked(self.stmt):
            return
        self.report(node, f"{what} of `{self.source_of(arg)}` ({origin_phrase(v)}), which can be exactly 0: the "
                          f"gradient there is inf * 0 = NaN; add an eps inside (sqrt(x + eps)) or use maximum(x, eps)", fix)

    VALID = [
        Valid("""
            import torch

            class P2SLoss(torch.nn.Module):
                def forward(self, embeddings, labels):
                    w_modulus = self.weight.pow(2).sum(0).pow(0.5)
                    assert torch.all(torch.abs(w_modulus - 1.0) < 1e-5)
                    return (embeddings.mm(self.weight) - labels).pow(2).mean()
        """, "a norm computed only for an assert never reaches the loss"),
        Valid("""
            import jax.numpy as jnp

            def cosine_loss(params, x, targets, eps=1e-8):
                emb = x @ params["w"]
                den = jnp.maximum(jnp.linalg.norm(emb, axis=-1) * jnp.linalg.norm(targets, axis=-1), eps)
                return jnp.mean(1 - jnp.sum(emb * targets, axis=-1) / den)
        """, "the norm of the labels carries no gradient"),
        Valid("""
            import tensorflow as tf

            def euclidean_loss(y_true, y_pred):
                return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) + 1e-12))
        """, "sqrt(x + eps)"),
        Valid("""
            import tensorflow as tf

            def contrastive_loss(y_true, y_pred):
                sq = tf.reduce_sum(tf.square(y_pred[:, 0] - y_pred[:, 1]), axis=-1)
                d = tf.sqrt(tf.maximum(sq, 1e-12))
                return tf.reduce_mean(y_true * sq + (1 - y_true) * tf.square(tf.maximum(1.0 - d, 0.0)))
        """, "sqrt(maximum(x, eps))"),
        Valid("""
            from keras import backend as K

            def rmse(y_true, y_pred):
                return K.sqrt(K.mean(K.square(y_pred - y_true)) + K.epsilon())
        """, "RMSE with + K.epsilon()"),
        Valid("""
            import torch

            def triplet_loss(anchor, positive, negative, margin=1.0):
                d_pos = (anchor - positive).norm(dim=1)
                d_neg = torch.linalg.vector_norm(anchor - negative, dim=1)
                return torch.relu(d_pos - d_neg + margin).mean()
        """, "PyTorch norms have a zero subgradient at 0"),
        Valid("""
            import jax.numpy as jnp

            def charbonnier_loss(y_true, y_pred, eps=1e-3):
                return jnp.mean(jnp.sqrt((y_true - y_pred) ** 2 + eps ** 2))
        """, "Charbonnier: an eps parameter squared"),
        Valid("""
            import tensorflow as tf

            def std_loss(y_true, y_pred):
                return tf.sqrt(tf.exp(y_pred))
        """, "sqrt of a provably positive value"),
        Valid("""
            import torch

            def focal_loss(logits, target, gamma=2.0):
                logp = torch.log_softmax(logits, dim=-1)
                p = logp.exp()
                return -((1 - p) ** gamma * logp * target).sum(-1).mean()
        """, "integer-like power >= 1 is differentiable at 0"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def euclidean_loss(y_true, y_pred):
                return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1)))
        """, "LL105", 4, "sqrt of a sum of squares", fixed="""
            import tensorflow as tf

            def euclidean_loss(y_true, y_pred):
                return tf.reduce_mean(tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1), 1e-12)))
        """),
        Invalid("""
            from keras import backend as K

            def rmse(y_true, y_pred):
                return K.sqrt(K.mean(K.square(y_pred - y_true)))
        """, "LL105", 4, "custom RMSE (keras-team/keras#6644)", fixed="""
            from keras import backend as K

            def rmse(y_true, y_pred):
                return K.sqrt(K.maximum(K.mean(K.square(y_pred - y_true)), K.epsilon()))
        """),
        Invalid("""
            import tensorflow as tf

            def contrastive_loss(y_true, y_pred):
                d = tf.norm(y_pred[:, 0] - y_pred[:, 1], axis=-1)
                return tf.reduce_mean(y_true * tf.square(d) + (1 - y_true) * tf.square(tf.maximum(1.0 - d, 0.0)))
        """, "LL105", 4, "tf.norm of a difference (tensorflow/tensorflow#12071)"),
        Invalid("""
            import torch

            def dist_loss(pred, target):
                return torch.sqrt(((pred - target) ** 2).sum(dim=1)).mean()
        """, "LL105", 4, "torch.sqrt of a sum of squares", fixed="""
            import torch

            def dist_loss(pred, target):
                return torch.sqrt(torch.clamp(((pred - target) ** 2).sum(dim=1), min=1e-12)).mean()
        """),
        Invalid("""
            import jax.numpy as jnp
            import jax

            def loss_fn(pred, target):
                return jnp.mean(jnp.linalg.norm(pred - target, axis=-1))

            g = jax.grad(loss_fn)
        """, "LL105", 5, "jnp.linalg.norm of a difference"),
        Invalid("""
            import torch

            def focal_loss(probs, target, gamma=0.5):
                return -((1 - probs) ** 0.5 * torch.log(probs.clamp(min=1e-7)) * target).sum(1).mean()
        """, "LL105", 4, "focal loss with gamma < 1 as a literal power"),
        Invalid("""
            import tensorflow as tf

            def hellinger_loss(y_true, y_pred):
                return tf.reduce_sum(tf.square(tf.sqrt(y_true) - tf.math.pow(y_pred, 0.5)), axis=-1)
        """, "LL105", 4, "Hellinger distance: sqrt of probabilities"),
    ]
