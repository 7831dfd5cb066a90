"""LL405 frozen-python-scalar: a Python number read by a traced loss and reassigned later (the change never lands)."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.captures import Capture, Captures, captures_for
from losslint.analysis.index import FuncInfo
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

_TRACED_BY = {
    "compile": "Keras traces the loss `{f}` once (model.compile/fit)",
    "keras-loss": "Keras traces `{f}` once inside its compiled train step",
    "tf.function": "`{f}` is traced once by tf.function",
    "jax.jit": "`{f}` is traced once by jax.jit",
}


class FrozenPythonScalar(ModuleFindingsRule):
    code = "LL405"
    name = "frozen-python-scalar"
    summary = "Python float loss weight read by a traced loss and changed later (callback, schedule): never takes effect"
    what_it_does = (
        "Finds a Python number (`alpha = 0.5`, `self.weight = weight` with a numeric default) read by a traced loss "
        "(a loss passed to Keras `compile`, a Keras `Loss.call`, a `tf.function`, a `jax.jit` function, or a helper "
        "they call) from module scope, an enclosing function or the loss object, when the code assigns it a new "
        "value later: `global alpha; alpha = ...` in a Callback's `on_epoch_end` or a schedule function, a "
        "module-level loop around `fit`/the training step, `loss_obj.alpha = ...`, or a method that sets "
        "`self.alpha`. Values that are `tf.Variable`/`K.variable`/`keras.Variable` are not reported (their "
        "`.assign` reaches the graph), nor are numbers that are never reassigned, nor PyTorch code (eager)."
    )
    why_bad = (
        "Tracing turns a Python number into a constant of the graph. Keras compiles the train step (and the loss in "
        "it) once; a later `alpha = 0.9` rebinds the Python name but the graph keeps the first value, so a KL "
        "annealing or loss-weight schedule silently never happens (keras-team/keras#13826, "
        "clovaai/stargan-v2-tensorflow#15). Nothing raises and the logs look normal."
    )
    example = """\
        kl_weight = 0.0

        def vae_loss(y_true, y_pred):
            return reconstruction(y_true, y_pred) + kl_weight * kl_term(y_pred)

        class KLAnnealing(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                global kl_weight
                kl_weight = min(1.0, epoch / 10)

        model.compile(optimizer="adam", loss=vae_loss)
    """
    use_instead = """\
        kl_weight = tf.Variable(0.0, trainable=False)

        def vae_loss(y_true, y_pred):
            return reconstruction(y_true, y_pred) + kl_weight * kl_term(y_pred)

        class KLAnnealing(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                kl_weight.assign(min(1.0, epoch / 10))
    """
    fix_safety = (
        "No automatic fix: turning the number into a variable changes every place that reads or rebinds it "
        "(`.assign(...)` instead of `=`, `global` declarations to remove)."
    )

    def _compute(self) -> dict[int, str]:
        caps = captures_for(self.context.index, self.context.scopes)
        out: dict[int, str] = {}
        for func in self.context.index.functions:
            reason = caps.traced(func)
            if reason is None:
                continue
            traced = _TRACED_BY[reason].format(f=func.qualname)
            fix = ("pass it as an argument of the jitted function instead" if reason == "jax.jit" else
                   "make it a `tf.Variable(..., trainable=False)` (or `keras.Variable`) and `.assign()` new values")
            for cap in caps.captures(func):
                if not _scalar(caps, cap):
                    continue
                rebound = caps.rebindings(cap)
                if rebound:
                    out.setdefault(id(cap.first), (
                        f"`{cap.name}` is a Python number and {traced}, which freezes its first value: the "
                        f"reassignment {rebound[0].where} never reaches the traced loss, so the schedule has no "
                        f"effect; {fix}"))
            self._attributes(caps, func, reason, traced, fix, out)
        return out

    def _attributes(self, caps: Captures, func: FuncInfo, reason: str, traced: str, fix: str,
                    out: dict[int, str]) -> None:
        cls = func.cls
        if cls is None or func.parent is not None or reason == "jax.jit":
            return
        seen: set[str] = set()
        for attr in caps.reads(func).attributes:
            if not (isinstance(attr.value, cst.Name) and attr.value.value == "self"):
                continue
            name = attr.attr.value
            if name in seen or not caps.scalar_attr(cls, name):
                continue
            seen.add(name)
            rebound = caps.attribute_rebindings(cls, name)
            if rebound:
                out.setdefault(id(attr), (
                    f"`self.{name}` is a Python number and {traced}, which freezes its first value: the "
                    f"reassignment {rebound[0].where} never reaches the traced loss, so the change has no effect; "
                    f"{fix}"))

    def visit_Name(self, node: cst.Name) -> None:
        self._check(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf
            from tensorflow import keras

            kl_weight = tf.Variable(0.0, trainable=False)

            def vae_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + kl_weight * tf.reduce_mean(y_pred)

            class KLAnnealing(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    kl_weight.assign(min(1.0, epoch / 10))

            model.compile(optimizer="adam", loss=vae_loss)
        """, "a tf.Variable updated with assign"),
        Valid("""
            from keras import backend as K
            import keras

            alpha = K.variable(0.5)

            def weighted_loss(y_true, y_pred):
                return alpha * K.mean(K.square(y_true - y_pred))

            class Schedule(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    K.set_value(alpha, 0.5 * 0.9 ** epoch)

            model.compile(optimizer="adam", loss=weighted_loss)
        """, "K.variable + K.set_value (keras-team/keras#13826)"),
        Valid("""
            import tensorflow as tf

            LAMBDA = 0.01

            def loss_fn(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + LAMBDA * tf.reduce_mean(tf.abs(y_pred))

            model.compile(optimizer="adam", loss=loss_fn)
        """, "a constant loss weight, never reassigned"),
        Valid("""
            import torch

            alpha = 0.1

            def loss_fn(pred, target):
                return torch.nn.functional.mse_loss(pred, target) + alpha * pred.abs().mean()

            for epoch in range(10):
                alpha = 0.1 * (epoch + 1)
                for x, y in loader:
                    loss = loss_fn(model(x), y)
                    loss.backward()
        """, "PyTorch runs eagerly: the new value is read on every call"),
        Valid("""
            import tensorflow as tf

            margin = 1.0
            margin = 0.5

            def hinge_loss(y_true, y_pred):
                return tf.reduce_mean(tf.maximum(0.0, margin - y_true * y_pred))

            model.compile(optimizer="sgd", loss=hinge_loss)
            model.fit(x, y, epochs=5)
        """, "reassigned before compile, not during training"),
        Valid("""
            import keras
            from keras import ops

            class WeightedMSE(keras.losses.Loss):
                def __init__(self, weight=1.0):
                    super().__init__()
                    self.weight = keras.Variable(weight, trainable=False)

                def call(self, y_true, y_pred):
                    return self.weight * ops.mean(ops.square(y_true - y_pred), axis=-1)

            loss_obj = WeightedMSE()
            model.compile(optimizer="adam", loss=loss_obj)

            class Decay(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    loss_obj.weight.assign(0.9 ** epoch)
        """, "Keras 3 Loss with a keras.Variable weight"),
        Valid("""
            import tensorflow as tf

            alpha = 0.5

            def loss_fn(y_true, y_pred):
                return alpha * tf.reduce_mean(tf.square(y_true - y_pred))

            model.compile(optimizer="adam", loss=loss_fn, run_eagerly=True)

            for epoch in range(10):
                alpha = 0.5 + epoch * 0.05
                model.fit(x, y, epochs=1)
        """, "run_eagerly=True: the loss runs as Python on every step"),
        Valid("""
            import jax
            import jax.numpy as jnp

            @jax.jit
            def loss_fn(params, x, y, temperature):
                return jnp.mean((x @ params / temperature - y) ** 2)

            temperature = 1.0
            for step in range(100):
                temperature = max(0.1, temperature * 0.99)
                g = jax.grad(loss_fn)(params, x, y, temperature)
        """, "JAX: the changing value is an argument of the jitted function"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            kl_weight = 0.0

            def vae_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + kl_weight * tf.reduce_mean(y_pred)

            class KLAnnealing(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    global kl_weight
                    kl_weight = min(1.0, epoch / 10)

            model.compile(optimizer="adam", loss=vae_loss)
        """, "LL405", 7, "KL annealing through a global in a Callback (clovaai/stargan-v2-tensorflow#15)"),
        Invalid("""
            import keras
            from keras import ops

            class WeightedMSE(keras.losses.Loss):
                def __init__(self, weight=1.0):
                    super().__init__()
                    self.weight = weight

                def call(self, y_true, y_pred):
                    return self.weight * ops.mean(ops.square(y_true - y_pred), axis=-1)

            loss_obj = WeightedMSE()
            model.compile(optimizer="adam", loss=loss_obj)

            class Decay(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    loss_obj.weight = 0.9 ** epoch
        """, "LL405", 10, "Keras 3 Loss attribute changed after compile"),
        Invalid("""
            import tensorflow as tf

            beta = 0.0

            def loss_fn(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + beta * tf.reduce_mean(tf.abs(y_pred))

            model.compile(optimizer="adam", loss=loss_fn)
            for epoch in range(20):
                beta = epoch / 20
                model.fit(x, y, epochs=1)
        """, "LL405", 6, "rebinding in a module-level loop around fit"),
        Invalid("""
            import tensorflow as tf

            lam = 1.0

            def set_lambda(epoch):
                global lam
                lam = 1.0 / (1 + epoch)

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    pred = model(x, training=True)
                    loss = tf.reduce_mean(tf.square(y - pred)) + lam * tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss
        """, "LL405", 13, "tf.function train step reading a global changed by a schedule function"),
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            class FocalLoss(keras.losses.Loss):
                def __init__(self, gamma=2.0):
                    super().__init__()
                    self.gamma = gamma

                def call(self, y_true, y_pred):
                    p = tf.clip_by_value(y_pred, 1e-7, 1.0 - 1e-7)
                    return -tf.reduce_sum(y_true * (1 - p) ** self.gamma * tf.math.log(p), axis=-1)

                def anneal(self, epoch):
                    self.gamma = max(0.5, 2.0 - 0.1 * epoch)
        """, "LL405", 11, "a loss method that rebinds self.gamma"),
        Invalid("""
            from keras import backend as K
            import keras

            def make_loss():
                def loss(y_true, y_pred):
                    return w_rec * K.mean(K.square(y_true - y_pred))
                return loss

            w_rec = 1.0

            class Warmup(keras.callbacks.Callback):
                def on_batch_end(self, batch, logs=None):
                    global w_rec
                    w_rec = min(10.0, w_rec * 1.01)

            model.compile(optimizer="adam", loss=make_loss())
        """, "LL405", 6, "a factory's inner loss reading a global changed on_batch_end"),
        Invalid("""
            import jax
            import jax.numpy as jnp

            temperature = 1.0

            @jax.jit
            def loss_fn(params, x, y):
                return jnp.mean((x @ params / temperature - y) ** 2)

            for step in range(100):
                temperature = max(0.1, temperature * 0.99)
                params = params - 0.01 * jax.grad(loss_fn)(params, x, y)
        """, "LL405", 8, "jax.jit captures the global at trace time"),
    ]


def _scalar(caps: Captures, cap: Capture) -> bool:
    """The captured name starts as a Python number and is never a Variable."""
    defs = [d for d in cap.defs if d.kind in ("assign", "aug", "param", "unknown")]
    if not defs:
        return False
    first = min(defs, key=lambda d: d.index)
    if first.kind not in ("assign", "param") or caps.kind(first.value, first.stmt) != "scalar":
        return False
    return not any(d.kind == "assign" and caps.kind(d.value, d.stmt) == "variable" for d in defs)
