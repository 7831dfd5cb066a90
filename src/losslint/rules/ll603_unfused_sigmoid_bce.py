"""LL603 unfused-sigmoid-bce: a probability binary cross-entropy applied to `sigmoid(z)` computed in the same code."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.contracts import LossCall, _constructor_of, input_kind, loss_call
from losslint.analysis.dataflow import DataFlow
from losslint.analysis.index import operand
from losslint.analysis.spelling import activation_edits, apply_inside, code, name_count, sibling_callable, with_keyword
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
# torch probability losses -> their with-logits twins (same parameters, in the same order, plus pos_weight)
_TORCH_FUSED = {"BCELoss": "BCEWithLogitsLoss", "F.binary_cross_entropy": "binary_cross_entropy_with_logits"}


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
    fix_safety = (
        "Safe once confirmed: the sigmoid is dropped and its input passed to the fused loss, `nn.BCELoss(...)` -> "
        "`nn.BCEWithLogitsLoss(...)`, `F.binary_cross_entropy(...)` -> `F.binary_cross_entropy_with_logits(...)` "
        "(the same `weight` and `reduction`, which mean the same in both), and for Keras the same loss with "
        "`from_logits=True`. Both compute the same binary cross-entropy wherever the sigmoid does not saturate; where "
        "it does (|z| > ~16 in float32) the fused loss keeps the exact value and gradient the probability loss clipped "
        "away. A sigmoid reached through a name is dropped where that name is assigned only when the loss is its only "
        "reader, and a loss object bound to a name or `self` attribute is changed only when this call is its only "
        "use; no fix when the sigmoid comes from a helper or a model's `forward` (other code may want the "
        "probabilities), when a `clip` stands between the sigmoid and the loss, or when `from_logits` could be passed "
        "positionally."
    )

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
                          f"logits with {fused}", self._fix(lc, sig))

    def _fix(self, lc: LossCall, sig: cst.CSTNode) -> FixSpec | None:
        ctx = self.context
        index, stmt = ctx.index, self.stmt
        if not isinstance(sig, cst.Call) or stmt is None or lc.pred is None:
            return None
        op = index.op_of(sig)
        z = operand(sig, op) if op is not None else None
        if z is None or any(a.keyword is None and a.value is not z for a in sig.args):
            return None  # `sigmoid(z)` only (a `name=` keyword is fine)
        edits = activation_edits(index, lc.pred, sig, stmt, code(z), atomic=isinstance(z, _ATOMS),
                                 elementwise=True)
        if edits is None:
            return None
        call = lc.call
        spec = lc.spec
        if spec.framework == "torch":
            fused = _TORCH_FUSED.get(spec.name)
            if fused is None:
                return None
            if spec.name.startswith("F."):  # F.binary_cross_entropy(p, y, weight, ...) -> ..._with_logits(z, y, ...)
                func = call.func
            else:  # nn.BCELoss(weight=..., reduction=...) -> nn.BCEWithLogitsLoss(the same arguments)
                ctor = _constructor_of(index, ctx.facts, call.func, stmt)
                if ctor is None or (ctor is not call.func and not self._only_use(call.func, stmt)):
                    return None
                func = ctor.func
            new_func = sibling_callable(index, func, fused)
            if new_func is None:
                return None
            edits.append((func, new_func))
            title = f"use `{fused}` on the logits"
        else:
            ctor = _constructor_of(index, ctx.facts, call.func, stmt) if index.qualify(call.func) is None else None
            target = ctor if ctor is not None else call
            # `from_logits` must be settable by keyword: no positional argument may stand in its place
            n_pos = len(positional(target)) if ctor is not None else len(positional(call)) - 2
            flag = kwarg(target, "from_logits")
            if n_pos > 0 or any(a.star for a in target.args) or (flag is not None and not (
                    isinstance(flag, cst.Name) and flag.value == "False")):
                return None
            if ctor is not None and ctor is not call.func and not self._only_use(call.func, stmt):
                return None
            new_target, edits = apply_inside(target, edits)
            edits.append((target, code(with_keyword(new_target, "from_logits", "True"))))
            title = "pass the logits with `from_logits=True`"
        return FixSpec(title, "safe", tuple(Replacement(n, t) for n, t in edits))

    def _only_use(self, func: cst.BaseExpression, stmt) -> bool:  # noqa: ANN001
        """Is this call the only use of the loss object (`criterion`, `self.criterion`)? Its constructor changes."""
        if isinstance(func, cst.Name):
            scope = self.context.index.module
            if stmt.func is not None and func.value in stmt.func.defs:
                scope = stmt.func.node
            return name_count(scope, func.value) == 2
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            return name_count(self.context.index.module, func.attr.value) == 2
        return False

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
        Valid("""
            import torch
            import torch.nn.functional as F

            def weighted_bce_loss(logits, target, w):
                return F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum")
        """, "the fused functional loss keeps weight and reduction (the fixed form)"),
        Valid("""
            import tensorflow as tf

            bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)

            def train(model, x, y):
                with tf.GradientTape() as tape:
                    loss = bce(y, model(x))
                return tape.gradient(loss, model.trainable_variables)
        """, "a Keras loss object with from_logits=True on the logits (the fixed form)"),
    ]
    INVALID = [
        Invalid("""
            import torch
            import torch.nn as nn

            def loss_fn(logits, y):
                return nn.BCELoss()(torch.sigmoid(logits), y)
        """, "LL603", 5, "BCELoss on torch.sigmoid", fixed="""
            import torch
            import torch.nn as nn

            def loss_fn(logits, y):
                return nn.BCEWithLogitsLoss()(logits, y)
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                p = logits.sigmoid()
                return F.binary_cross_entropy(p, target)
        """, "LL603", 6, "tensor-method sigmoid through a name", fixed="""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                p = logits
                return F.binary_cross_entropy_with_logits(p, target)
        """),
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
        """, "LL603", 6, "eager GradientTape: Keras cannot recover the logits", fixed="""
            import tensorflow as tf

            def train(model, x, y, opt):
                with tf.GradientTape() as tape:
                    p = model(x)
                    loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(y, p, from_logits=True))
                grads = tape.gradient(loss, model.trainable_variables)
        """),
        Invalid("""
            import tensorflow as tf

            bce = tf.keras.losses.BinaryCrossentropy()

            def train(model, x, y):
                with tf.GradientTape() as tape:
                    loss = bce(y, tf.nn.sigmoid(model(x)))
                return tape.gradient(loss, model.trainable_variables)
        """, "LL603", 7, "a BinaryCrossentropy object without from_logits, eager", fixed="""
            import tensorflow as tf

            bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)

            def train(model, x, y):
                with tf.GradientTape() as tape:
                    loss = bce(y, model(x))
                return tape.gradient(loss, model.trainable_variables)
        """),
        Invalid("""
            import torch
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.BCELoss()

                def step(self, z, y):
                    loss = self.criterion(torch.sigmoid(z), y)
                    loss.backward()
        """, "LL603", 9, "criterion held on self", fixed="""
            import torch
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.BCEWithLogitsLoss()

                def step(self, z, y):
                    loss = self.criterion(z, y)
                    loss.backward()
        """),
        Invalid("""
            import tensorflow as tf

            def bce_loss(y_true, logits):
                return tf.reduce_mean(tf.keras.losses.binary_crossentropy(y_true, tf.sigmoid(logits)))
        """, "LL603", 4, "an eager Keras loss function on tf.sigmoid", fixed="""
            import tensorflow as tf

            def bce_loss(y_true, logits):
                return tf.reduce_mean(tf.keras.losses.binary_crossentropy(y_true, logits, from_logits=True))
        """),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def weighted_bce_loss(y_true, z, weights):
                p = tf.math.sigmoid(z)
                return K.mean(weights * K.binary_crossentropy(y_true, p, from_logits=False))
        """, "LL603", 6, "Keras backend with an explicit from_logits=False", fixed="""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def weighted_bce_loss(y_true, z, weights):
                p = z
                return K.mean(weights * K.binary_crossentropy(y_true, p, from_logits=True))
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def weighted_bce_loss(logits, target, w):
                return F.binary_cross_entropy(torch.sigmoid(logits), target, weight=w, reduction="sum")
        """, "LL603", 5, "functional BCE with weight and reduction (kept by the fix)", fixed="""
            import torch
            import torch.nn.functional as F

            def weighted_bce_loss(logits, target, w):
                return F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum")
        """),
        Invalid("""
            import torch
            import torch.nn as nn

            criterion = nn.BCELoss()

            def step(model, x, y):
                p = torch.sigmoid(model(x))
                loss = criterion(p, y)
                loss.backward()
                return ((p > 0.5) == y).float().mean()
        """, "LL603", 8, "no fix: the probabilities are also used for the accuracy"),
    ]
