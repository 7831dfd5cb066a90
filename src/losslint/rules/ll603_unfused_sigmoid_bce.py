"""LL603 unfused-sigmoid-bce: a probability binary cross-entropy applied to `sigmoid(z)` computed in the same code."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.contracts import input_kind, loss_call
from losslint.analysis.dataflow import DataFlow
from losslint.rules.base import Invalid, Rule, Valid


class UnfusedSigmoidBce(Rule):
    code = "LL603"
    name = "unfused-sigmoid-bce"
    summary = "BCELoss / binary_crossentropy on sigmoid(z) computed in the same code: use the with-logits form"
    what_it_does = (
        "Finds a binary cross-entropy on probabilities (`nn.BCELoss`, `F.binary_cross_entropy`, Keras "
        "`binary_crossentropy` / `BinaryCrossentropy()` / `K.binary_crossentropy` without `from_logits=True`) whose "
        "prediction is a `sigmoid(z)` computed in the same code (directly, through a name assigned once, a reshape, "
        "a same-module helper, or the `forward` of a same-module model)."
    )
    why_bad = (
        "In float32 `sigmoid(z)` is exactly 1 for z > 17 and underflows towards 0 for very negative z. The "
        "probability losses then clip: PyTorch clamps the log at -100 and Keras clips to [1e-7, 1 - 1e-7], so a "
        "confidently wrong prediction gets a capped loss and a zero (Keras) or vanishing gradient instead of the "
        "large corrective gradient of the fused loss, and under `torch.autocast` `BCELoss` raises. The with-logits "
        "losses compute the same value as `softplus` of the logits and stay exact. Keras itself recovers the logits "
        "when it can see the Sigmoid op in a traced graph (the TensorFlow backend, inside `fit` or a `tf.function`), "
        "so the rule stays silent there and for `keras.ops.sigmoid` outputs; it reports eager TensorFlow code and "
        "every PyTorch case."
    )
    example = """\
        loss = nn.BCELoss()(torch.sigmoid(logits), y)
    """
    use_instead = """\
        loss = nn.BCEWithLogitsLoss()(logits, y)
        # Keras: tf.keras.losses.BinaryCrossentropy(from_logits=True)(y, logits)
    """

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.context
        lc = loss_call(ctx.index, ctx.facts, node, self.stmt)
        if lc is None or lc.pred is None or self.stmt is None:
            return
        spec = lc.spec
        if not spec.binary or spec.expects != "probabilities":
            return
        got = input_kind(ctx.index, ctx.facts, lc.pred, self.stmt)
        if got is None or got[0] != "sigmoid":
            return
        sig = got[1]
        if spec.framework == "keras":
            op = ctx.index.op_of(sig) if isinstance(sig, cst.Call) else None
            if op is None or not op.qualified.startswith("tensorflow") or ".keras." in op.qualified:
                return  # keras.ops / keras.activations sigmoid: Keras keeps the logits and uses them
            flow = DataFlow.of(ctx.index, ctx.scopes, ctx.facts)
            if flow.graph_mode(self.stmt.func, self.stmt):
                return  # traced: Keras finds the Sigmoid op and switches to the fused loss itself
        what = self.source_of(lc.pred)
        fused = "BCEWithLogitsLoss / F.binary_cross_entropy_with_logits" if spec.framework == "torch" \
            else "from_logits=True"
        self.report(node, f"{lc.via} on `{what}`, a sigmoid computed here: once |z| > ~17 the sigmoid saturates, "
                          f"the loss is clipped and its gradient vanishes for confidently wrong predictions; pass the "
                          f"logits with {fused}")

    VALID = [
        Valid("""
            import torch.nn as nn

            criterion = nn.BCEWithLogitsLoss()

            def train_step(model, x, y):
                loss = criterion(model(x), y)
                loss.backward()
        """, "the fused torch loss on logits"),
        Valid("""
            import torch.nn.functional as F

            def bce(probs, target):
                return F.binary_cross_entropy(probs, target)
        """, "probabilities from elsewhere: nothing provable about where they were computed"),
        Valid("""
            import tensorflow as tf

            def loss_fn(y_true, logits):
                return tf.keras.losses.binary_crossentropy(y_true, logits, from_logits=True)
        """, "Keras with from_logits=True on logits"),
        Valid("""
            import tensorflow as tf

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    p = tf.sigmoid(model(x))
                    loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(y, p))
                grads = tape.gradient(loss, model.trainable_variables)
        """, "traced: Keras sees the Sigmoid op and uses its logits"),
        Valid("""
            import keras
            from keras import ops

            def loss_fn(y_true, z):
                return keras.losses.binary_crossentropy(y_true, ops.sigmoid(z))
        """, "keras.ops.sigmoid keeps its logits (_keras_logits) for the loss"),
        Valid("""
            import jax
            import optax

            def loss_fn(params, x, y):
                return optax.sigmoid_binary_cross_entropy(apply(params, x), y).mean()
        """, "optax takes logits"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                probs = torch.softmax(logits, dim=1)
                return F.binary_cross_entropy(probs, target)
        """, "not a sigmoid (a softmax over classes with one-hot targets)"),
    ]
    INVALID = [
        Invalid("""
            import torch
            import torch.nn as nn

            def loss_fn(logits, y):
                return nn.BCELoss()(torch.sigmoid(logits), y)
        """, "LL603", 5, "BCELoss on torch.sigmoid"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                p = logits.sigmoid()
                return F.binary_cross_entropy(p, target)
        """, "LL603", 6, "tensor-method sigmoid through a name"),
        Invalid("""
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def forward(self, x):
                    return torch.sigmoid(self.fc(x))

            model = Net()
            criterion = nn.BCELoss()
            out = model(x)
            loss = criterion(out.view(-1), y)
            loss.backward()
        """, "LL603", 11, "a same-module model ending in sigmoid"),
        Invalid("""
            import tensorflow as tf

            def train(model, x, y, opt):
                with tf.GradientTape() as tape:
                    p = tf.sigmoid(model(x))
                    loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(y, p))
                grads = tape.gradient(loss, model.trainable_variables)
        """, "LL603", 6, "eager GradientTape: Keras cannot recover the logits"),
        Invalid("""
            import tensorflow as tf

            bce = tf.keras.losses.BinaryCrossentropy()

            def train(model, x, y):
                with tf.GradientTape() as tape:
                    loss = bce(y, tf.nn.sigmoid(model(x)))
                return tape.gradient(loss, model.trainable_variables)
        """, "LL603", 7, "a BinaryCrossentropy object without from_logits, eager"),
        Invalid("""
            import torch
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.BCELoss()

                def step(self, z, y):
                    loss = self.criterion(torch.sigmoid(z), y)
                    loss.backward()
        """, "LL603", 9, "criterion held on self"),
    ]
