"""LL604 activation-before-with-logits: a softmax/sigmoid output passed where a loss expects logits."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.contracts import input_kind, loss_call
from losslint.rules.base import Invalid, Rule, Valid

# torch CrossEntropyLoss / cross_entropy also take logits, but LL602 owns that contract.
_LL602 = frozenset({"CrossEntropyLoss", "F.cross_entropy", "MultiLabelSoftMarginLoss"})


class ActivationBeforeWithLogits(Rule):
    code = "LL604"
    name = "activation-before-with-logits"
    summary = "softmax/sigmoid output passed to a *_with_logits loss or a from_logits=True loss"
    what_it_does = (
        "Finds a softmax or sigmoid output (direct, through a name assigned once, a reshape, a same-module helper or "
        "model) passed as the logits of `tf.nn.sigmoid_cross_entropy_with_logits`, `tf.nn.softmax_cross_entropy_with_"
        "logits`, `tf.compat.v1.losses.sigmoid_cross_entropy`, `nn.BCEWithLogitsLoss`, "
        "`F.binary_cross_entropy_with_logits`, a Keras loss with `from_logits=True`, or optax's "
        "`sigmoid_binary_cross_entropy` / `softmax_cross_entropy`."
    )
    why_bad = (
        "These losses apply the activation themselves. Given probabilities in [0, 1] they apply it a second time: "
        "`sigmoid(p)` lies in [0.5, 0.73], so a binary cross-entropy can never drop below about 0.31 per positive "
        "and a softmax of probabilities stays within a factor e of uniform. The loss plateaus, gradients are tiny, "
        "and nothing raises."
    )
    example = """\
        p = tf.sigmoid(logits)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=p)
    """
    use_instead = """\
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
    """

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.context
        lc = loss_call(ctx.index, ctx.facts, node, self.stmt)
        if lc is None or lc.pred is None or self.stmt is None:
            return
        if lc.spec.expects != "logits" or lc.spec.name in _LL602:
            return
        got = input_kind(ctx.index, ctx.facts, lc.pred, self.stmt)
        if got is None or got[0] not in ("softmax", "sigmoid"):
            return
        kind = got[0]
        how = "with from_logits=True " if lc.spec.framework == "keras" else ""
        self.report(node, f"{lc.via} {how}expects logits, but `{self.source_of(lc.pred)}` is a {kind} output: the "
                          f"{kind} is applied twice, so the loss cannot approach 0 and its gradients are squashed "
                          f"(pass the logits)")

    VALID = [
        Valid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        """, "logits to the fused TF loss"),
        Valid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                probs = tf.nn.softmax(logits)
                tf.summary.histogram("probs", probs)
                return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        """, "probabilities computed for a summary, logits to the loss"),
        Valid("""
            import torch.nn as nn

            criterion = nn.BCEWithLogitsLoss()

            def train_step(model, x, y):
                loss = criterion(model(x), y)
                loss.backward()
        """, "torch with-logits loss on raw model output"),
        Valid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                return tf.keras.losses.categorical_crossentropy(y_true, tf.nn.softmax(y_pred))
        """, "from_logits=False on probabilities"),
        Valid("""
            import jax
            import optax

            def loss_fn(params, x, y):
                logits = apply(params, x)
                return optax.softmax_cross_entropy(jax.nn.log_softmax(logits), y).mean()
        """, "log_softmax is idempotent under softmax: redundant, not wrong"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.sigmoid(w))
        """, "a sigmoid as weight, not as input"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                p = tf.sigmoid(logits)
                return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=p))
        """, "LL604", 5, "TF2 sigmoid output as logits"),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            y = tf.nn.softmax(tf.matmul(x, W) + b)
            cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
        """, "LL604", 6, "TF1 softmax output into softmax_cross_entropy_with_logits"),
        Invalid("""
            import torch
            import torch.nn as nn

            def loss_fn(z, y):
                return nn.BCEWithLogitsLoss()(torch.sigmoid(z), y)
        """, "LL604", 5, "torch BCEWithLogitsLoss on a sigmoid"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(z, y):
                p = torch.sigmoid(z).squeeze(1)
                return F.binary_cross_entropy_with_logits(p, y)
        """, "LL604", 6, "through a name and a squeeze"),
        Invalid("""
            import keras
            from keras import ops

            loss_obj = keras.losses.CategoricalCrossentropy(from_logits=True)

            def loss_fn(y_true, z):
                return loss_obj(y_true, ops.softmax(z))
        """, "LL604", 7, "Keras 3 loss object with from_logits=True on a softmax"),
        Invalid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                return tf.keras.losses.binary_crossentropy(y_true, tf.sigmoid(y_pred), from_logits=True)
        """, "LL604", 4, "Keras function with from_logits=True"),
        Invalid("""
            import jax
            import optax

            def loss_fn(params, x, y):
                probs = jax.nn.sigmoid(apply(params, x))
                return optax.sigmoid_binary_cross_entropy(probs, y).mean()
        """, "LL604", 6, "optax takes logits"),
    ]
