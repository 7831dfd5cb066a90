"""LL302 swapped-loss-arguments: (y_pred, y_true) where a Keras loss or a criterion expects the other order."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.contracts import loss_call
from losslint.analysis.names import dotted_name
from losslint.analysis.walk import walk
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid

# Names that say "this is the label" / "this is the prediction"; ambiguous ones (`input`, `x`, `p`, `q`) are left out.
_TRUE = frozenset({"y_true", "ytrue", "labels", "label", "target", "targets", "y", "gt", "ground_truth", "truth",
                   "y_gt", "onehot_labels", "one_hot_labels", "y_batch", "batch_y", "true_labels", "gt_labels"})
_PRED = frozenset({"y_pred", "ypred", "pred", "preds", "prediction", "predictions", "output", "outputs", "y_hat",
                   "yhat", "logits", "logit", "y_logits", "pred_logits", "scores", "probs", "y_prob", "y_probs",
                   "pred_probs", "out"})
_MODEL_NAMES = frozenset({"model", "net", "network", "classifier"})


def _role_name(expr: cst.BaseExpression) -> str | None:
    """The name an argument is known by: `y_true`, `self.labels` -> labels, `out.squeeze(1)` -> out."""
    for _ in range(6):
        if isinstance(expr, cst.Name):
            return expr.value
        if isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name) and expr.value.value != "self":
                return expr.attr.value if expr.attr.value in _TRUE | _PRED else None
            return expr.attr.value
        if isinstance(expr, cst.Subscript):
            expr = expr.value
            continue
        if isinstance(expr, cst.Call):
            head = dotted_name(expr.func)
            if head is not None and head.rsplit(".", 1)[-1] in _MODEL_NAMES:
                return "outputs"  # model(x)
            if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in (
                    "float", "long", "squeeze", "unsqueeze", "view", "reshape", "to", "flatten", "type", "double"):
                expr = expr.func.value
                continue
            if head is not None and head.rsplit(".", 1)[-1] in ("softmax", "log_softmax", "sigmoid", "log_sigmoid") \
                    and expr.args and expr.args[0].keyword is None:
                expr = expr.args[0].value  # F.log_softmax(logits, dim=1) is still the prediction
                continue
        return None
    return None


def _role(expr: cst.BaseExpression) -> str | None:
    name = _role_name(expr)
    if name is None:
        return None
    name = name.lower()
    if name in _TRUE:
        return "true"
    if name in _PRED:
        return "pred"
    return None


def _symmetric_body(func: cst.FunctionDef, a: str, b: str) -> bool:
    """Is every use of `a` and `b` an operand of `a - b` / `b - a` (MSE, MAE, Huber on the difference)?"""
    uses = 0
    covered = 0

    def enter(node: cst.CSTNode) -> None:
        nonlocal uses, covered
        if isinstance(node, cst.Name) and node.value in (a, b):
            uses += 1
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract) \
                and isinstance(node.left, cst.Name) and isinstance(node.right, cst.Name) \
                and {node.left.value, node.right.value} == {a, b}:
            covered += 2

    walk(func.body, enter, lambda n: None)
    return uses > 0 and uses == covered


class SwappedLossArguments(Rule):
    code = "LL302"
    name = "swapped-loss-arguments"
    summary = "(y_pred, y_true) order in a Keras loss signature, or swapped arguments to a built-in loss / criterion"
    what_it_does = (
        "Finds a loss function passed to `compile` (or a Keras `Loss.call`) whose first two parameters are named "
        "prediction-first (`def loss(y_pred, y_true)`), and calls of asymmetric built-in losses whose positional "
        "arguments are named the wrong way round: Keras/TF losses take `(y_true, y_pred)` "
        "(`tf.keras.losses.categorical_crossentropy(y_pred, y_true)`, `loss_obj(predictions, labels)`), PyTorch "
        "criteria and optax take `(input, target)` (`criterion(target, output)`, `F.cross_entropy(labels, logits)`). "
        "Symmetric losses (MSE, MAE, Huber) and bodies that only use the difference are not reported."
    )
    why_bad = (
        "Keras always calls `loss(y_true, y_pred)` positionally, whatever the parameters are named, and built-in "
        "losses read their arguments by position. With the order swapped an asymmetric loss computes another "
        "objective: a cross-entropy takes the log of the labels (zeros give -inf or are clipped) and weights it by "
        "the predictions, a KL divergence is reversed, a focal or Dice weight lands on the wrong tensor. The loss is "
        "usually finite and training runs, just toward the wrong thing (keras-team/keras#8993, "
        "tensorflow/tensorflow#38067). Symmetric losses hide the bug, which is why it survives."
    )
    example = """\
        def my_loss(y_pred, y_true):
            return tf.keras.losses.categorical_crossentropy(y_true, y_pred)
        model.compile(loss=my_loss)
    """
    use_instead = """\
        def my_loss(y_true, y_pred):
            return tf.keras.losses.categorical_crossentropy(y_true, y_pred)
    """
    fix_safety = (
        "Unsafe: swapping the arguments changes the loss (that is the point), so the fix is applied only with "
        "`--unsafe-fixes`. Offered for PyTorch criteria and optax losses, where the argument order is fixed by the "
        "signature. Confirmation (under PyTorch/JAX) checks a deliberate change: the swapped call must run, give a "
        "different value and stay finite, and add no NaN/Inf on edge inputs."
    )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.context
        func = ctx.index.func_of_node.get(id(node))
        scope = ctx.scopes.scope_of_func(func)
        if func is None or scope is None:
            return
        keras_class = scope.kind == "loss-class" and func.name == "call" and func.cls is not None \
            and any("keras" in b or "tensorflow" in b for b in func.cls.bases)
        if scope.kind != "compile" and not keras_class:
            return
        names = [p.name for p in func.params if p.position >= 0]
        if len(names) < 2:
            return
        a, b = names[0], names[1]
        if a.lower() not in _PRED or b.lower() not in _TRUE:
            return
        if _symmetric_body(node, a, b):
            return
        params = list(node.params.posonly_params) + list(node.params.params)
        target = next((p for p in params if p.name.value == a), node)
        self.report(target, f"Keras calls this loss as loss(y_true, y_pred): the parameter `{a}` receives the labels "
                            f"and `{b}` the predictions, so the loss computes a different objective (name them "
                            f"(y_true, y_pred))")

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.context
        lc = loss_call(ctx.index, ctx.facts, node, self.stmt)
        if lc is None or not lc.positional_pair or lc.spec.symmetric or lc.pred is None or lc.target is None:
            return
        if _role(lc.pred) != "true" or _role(lc.target) != "pred":
            return
        order = "(input, target)" if lc.spec.pred_first else "(y_true, y_pred)"
        fix = None
        if lc.spec.framework in ("torch", "optax"):
            fix = FixSpec("swap the prediction and the target", "unsafe",
                          (Replacement(lc.pred, ctx.code_for(lc.target)), Replacement(lc.target, ctx.code_for(lc.pred))),
                          expect="changed")  # a different objective on purpose: confirmed if it runs and stays finite
        self.report(node, f"{lc.via} takes {order}, but `{self.source_of(lc.pred, 30)}` (the labels) is passed as the "
                          f"prediction and `{self.source_of(lc.target, 30)}` as the target: the loss computes a "
                          f"different objective", fix)

    VALID = [
        Valid("""
            import tensorflow as tf

            def my_loss(y_true, y_pred):
                return tf.keras.losses.categorical_crossentropy(y_true, y_pred)

            model.compile(optimizer="adam", loss=my_loss)
        """, "the Keras order"),
        Valid("""
            import tensorflow as tf

            def rmse(y_pred, y_true):
                return tf.sqrt(tf.reduce_mean(tf.square(y_pred - y_true)))

            model.compile(optimizer="adam", loss=rmse)
        """, "swapped names, but the body is symmetric in them"),
        Valid("""
            import torch.nn as nn

            criterion = nn.CrossEntropyLoss()

            def train_step(model, x, labels):
                outputs = model(x)
                loss = criterion(outputs, labels)
                loss.backward()
        """, "torch (input, target)"),
        Valid("""
            import torch.nn.functional as F

            def loss_fn(output, target):
                return F.mse_loss(target, output)
        """, "MSE is symmetric"),
        Valid("""
            import tensorflow as tf

            loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

            def train_step(images, labels):
                with tf.GradientTape() as tape:
                    predictions = model(images, training=True)
                    loss = loss_object(labels, predictions)
                return tape.gradient(loss, model.trainable_variables)
        """, "the TF tutorial order"),
        Valid("""
            import torch.nn.functional as F

            def loss_fn(logits, labels):
                return F.cross_entropy(input=logits, target=labels)
        """, "keywords"),
        Valid("""
            import optax

            def loss_fn(params, x, labels):
                logits = apply(params, x)
                return optax.softmax_cross_entropy(logits, labels).mean()
        """, "optax (logits, labels)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def my_loss(y_pred, y_true):
                return tf.keras.losses.categorical_crossentropy(y_true, y_pred)

            model.compile(optimizer="adam", loss=my_loss)
        """, "LL302", 3, "(y_pred, y_true) signature passed to compile"),
        Invalid("""
            import keras
            from keras import ops

            class FocalLoss(keras.losses.Loss):
                def call(self, y_pred, y_true):
                    p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
                    return -ops.mean(y_true * (1 - p) ** 2 * ops.log(p))
        """, "LL302", 5, "Keras 3 Loss.call with the prediction first"),
        Invalid("""
            from tensorflow.keras import backend as K

            def cce(y_true, y_pred):
                return K.mean(K.categorical_crossentropy(y_pred, y_true))
        """, "LL302", 4, "backend signature is (target, output)"),
        Invalid("""
            import tensorflow as tf

            loss_object = tf.keras.losses.CategoricalCrossentropy()

            def train_step(images, labels):
                with tf.GradientTape() as tape:
                    predictions = model(images, training=True)
                    loss = loss_object(predictions, labels)
                return tape.gradient(loss, model.trainable_variables)
        """, "LL302", 8, "loss object called (predictions, labels)"),
        Invalid("""
            import torch.nn as nn

            criterion = nn.BCEWithLogitsLoss()

            def train_step(model, x, target):
                output = model(x)
                loss = criterion(target, output)
                loss.backward()
        """, "LL302", 7, "torch criterion called (target, output)", fixed="""
            import torch.nn as nn

            criterion = nn.BCEWithLogitsLoss()

            def train_step(model, x, target):
                output = model(x)
                loss = criterion(output, target)
                loss.backward()
        """),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, labels):
                return F.kl_div(labels, F.log_softmax(logits, dim=1))
        """, "LL302", 4, "F.kl_div(target, input)", fixed="""
            import torch.nn.functional as F

            def loss_fn(logits, labels):
                return F.kl_div(F.log_softmax(logits, dim=1), labels)
        """),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, labels):
                return F.cross_entropy(labels, logits)
        """, "LL302", 4, "F.cross_entropy(target, logits)", fixed="""
            import torch.nn.functional as F

            def loss_fn(logits, labels):
                return F.cross_entropy(logits, labels)
        """),
    ]
