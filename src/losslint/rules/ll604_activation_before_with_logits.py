"""LL604 activation-before-with-logits: a softmax/sigmoid output passed where a loss expects logits."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.contracts import LossCall, _constructor_of, input_kind, loss_call
from losslint.analysis.index import operand
from losslint.analysis.spelling import activation_edits, code
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

# torch CrossEntropyLoss / cross_entropy also take logits, but LL602 owns that contract.
_LL602 = frozenset({"CrossEntropyLoss", "F.cross_entropy", "MultiLabelSoftMarginLoss"})


_KERAS_OWN = ("keras.ops.", "keras.src.ops.", "keras.activations.", "keras.src.activations.",
              "tensorflow.keras.activations.", "tf_keras.activations.")


def _last_axis(axis: cst.BaseExpression | None) -> bool:
    """No axis given (the last), or literally -1."""
    return axis is None or (isinstance(axis, cst.UnaryOperation) and isinstance(axis.operator, cst.Minus)
                            and isinstance(axis.expression, cst.Integer) and axis.expression.value == "1")


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
    fix_safety = (
        "Unsafe: the fix passes the activation's input (the logits) to the loss, `loss(sigmoid(z))` -> `loss(z)`, "
        "which changes the loss value by design (it removes the second activation), so it is applied only with "
        "`--unsafe-fixes`; confirmation checks that the new loss runs, differs and adds no NaN/Inf. One exception: "
        "a `keras.ops` / `keras.activations` softmax or sigmoid before a Keras loss with `from_logits=True` is "
        "already undone by Keras' TensorFlow backend (it uses the logits Keras attached to the output, and warns), "
        "so there TensorFlow confirms the fix keeps the value; on the JAX and PyTorch backends it changes it. The "
        "activation "
        "is removed where it is written: inside the call, or where a name is assigned when the loss is that name's "
        "only reader (else the name is replaced at the loss when the activation's input is a name bound once). No "
        "fix when the activation is in a helper or a model's `forward` (other code may want the probabilities), "
        "when a softmax is taken over another axis than the loss's last one, or when it reaches the loss through "
        "reshapes or indexing that could move its axis."
    )

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
        twice = f"the {kind} is applied twice"
        act_op = ctx.index.op_of(got[1]) if isinstance(got[1], cst.Call) else None
        if lc.spec.framework == "keras" and act_op is not None \
                and act_op.qualified.startswith(("keras.ops", "keras.activations", "keras.src")):
            # Keras' TensorFlow backend reads the logits it cached on the activation's output; the others cannot
            twice = (f"on Keras' TensorFlow backend the loss quietly uses the logits cached on that output, but on "
                     f"the JAX and PyTorch backends the {kind} is applied twice")
        self.report(node, f"{lc.via} {how}expects logits, but `{self.source_of(lc.pred)}` is a {kind} output: "
                          f"{twice}, so the loss cannot approach 0 and its gradients are squashed "
                          f"(pass the logits)", self._fix(lc, kind, got[1]))

    def _fix(self, lc: LossCall, kind: str, act: cst.CSTNode) -> FixSpec | None:
        """Pass the activation's input instead: `loss(softmax(z))` -> `loss(z)`."""
        ctx = self.context
        index, stmt = ctx.index, self.stmt
        if not isinstance(act, cst.Call) or stmt is None or lc.pred is None:
            return None
        op = index.op_of(act)
        z = operand(act, op) if op is not None else None
        if z is None or any(a.keyword is None and a.value is not z for a in act.args):
            return None  # the activation of one tensor, its axis (if any) by keyword
        if kind == "softmax":
            # The loss applies its softmax over the last axis: only a softmax over that same axis is undone exactly.
            if any(a.keyword is not None and a.keyword.value not in ("axis", "dim", "name") for a in act.args) \
                    or not _last_axis(kwarg(act, "axis", "dim")):
                return None
            ctor = _constructor_of(index, ctx.facts, lc.call.func, stmt) if lc.spec.framework == "keras" else None
            # (an axis passed by position: Keras functions take it fifth, tf.nn and optax third)
            if not _last_axis(kwarg(lc.call, "axis", "dim")) or (ctor is not None and not _last_axis(
                    kwarg(ctor, "axis"))) or len(positional(lc.call)) > (3 if lc.spec.framework == "keras" else 2):
                return None
        edits = activation_edits(index, lc.pred, act, stmt, code(z),
                                 atomic=isinstance(z, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)),
                                 elementwise=kind == "sigmoid")
        if edits is None:
            return None
        # Keras' own softmax/sigmoid (keras.ops, keras.activations) keep their logits on the tensor, and a Keras loss
        # on the TensorFlow backend uses them (with a warning): there the fix keeps the value; elsewhere it changes it.
        rescued = lc.spec.framework == "keras" and op is not None and op.qualified.startswith(_KERAS_OWN)
        return FixSpec(f"pass the logits, not the {kind} output", "unsafe",
                       tuple(Replacement(n, t) for n, t in edits), expect="same" if rescued else "changed")

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
        Valid("""
            import keras

            loss_obj = keras.losses.CategoricalCrossentropy(from_logits=True)

            def loss_fn(y_true, z):
                return loss_obj(y_true, z)
        """, "a from_logits=True loss object given the logits (the fixed form)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                p = tf.sigmoid(logits)
                return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=p))
        """, "LL604", 5, "TF2 sigmoid output as logits", fixed="""
            import tensorflow as tf

            def loss_fn(labels, logits):
                p = logits
                return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=p))
        """),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            y = tf.nn.softmax(tf.matmul(x, W) + b)
            cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
        """, "LL604", 6, "TF1 softmax output into softmax_cross_entropy_with_logits", fixed="""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.float32, [None, 10])
            y = tf.matmul(x, W) + b
            cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
        """),
        Invalid("""
            import torch
            import torch.nn as nn

            def loss_fn(z, y):
                return nn.BCEWithLogitsLoss()(torch.sigmoid(z), y)
        """, "LL604", 5, "torch BCEWithLogitsLoss on a sigmoid", fixed="""
            import torch
            import torch.nn as nn

            def loss_fn(z, y):
                return nn.BCEWithLogitsLoss()(z, y)
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(z, y):
                p = torch.sigmoid(z).squeeze(1)
                return F.binary_cross_entropy_with_logits(p, y)
        """, "LL604", 6, "through a name and a squeeze", fixed="""
            import torch
            import torch.nn.functional as F

            def loss_fn(z, y):
                p = z.squeeze(1)
                return F.binary_cross_entropy_with_logits(p, y)
        """),
        Invalid("""
            import keras
            from keras import ops

            loss_obj = keras.losses.CategoricalCrossentropy(from_logits=True)

            def loss_fn(y_true, z):
                return loss_obj(y_true, ops.softmax(z))
        """, "LL604", 7, "Keras 3 loss object with from_logits=True on a softmax", fixed="""
            import keras
            from keras import ops

            loss_obj = keras.losses.CategoricalCrossentropy(from_logits=True)

            def loss_fn(y_true, z):
                return loss_obj(y_true, z)
        """),
        Invalid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                return tf.keras.losses.binary_crossentropy(y_true, tf.sigmoid(y_pred), from_logits=True)
        """, "LL604", 4, "Keras function with from_logits=True", fixed="""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                return tf.keras.losses.binary_crossentropy(y_true, y_pred, from_logits=True)
        """),
        Invalid("""
            import jax
            import optax

            def loss_fn(params, x, y):
                probs = jax.nn.sigmoid(apply(params, x))
                return optax.sigmoid_binary_cross_entropy(probs, y).mean()
        """, "LL604", 6, "optax takes logits", fixed="""
            import jax
            import optax

            def loss_fn(params, x, y):
                probs = apply(params, x)
                return optax.sigmoid_binary_cross_entropy(probs, y).mean()
        """),
        Invalid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                probs = tf.nn.softmax(logits)
                xent = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=probs)
                entropy = -tf.reduce_sum(probs * tf.math.log(probs + 1e-7), axis=-1)
                return tf.reduce_mean(xent - 0.1 * entropy)
        """, "LL604", 5, "probabilities also used for an entropy bonus: the logits are passed at the loss", fixed="""
            import tensorflow as tf

            def loss_fn(labels, logits):
                probs = tf.nn.softmax(logits)
                xent = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                entropy = -tf.reduce_sum(probs * tf.math.log(probs + 1e-7), axis=-1)
                return tf.reduce_mean(xent - 0.1 * entropy)
        """),
        Invalid("""
            import tensorflow as tf

            def loss_fn(labels, logits):
                return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=tf.nn.softmax(logits, axis=1))
        """, "LL604", 4, "no fix: a softmax over axis 1, the loss's is the last"),
    ]
