"""LL201 batch-reduced-loss: a loss Keras calls (compile / Loss.call / LossFunctionWrapper) that reduces over the
batch axis itself."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.reductions import batch_reductions, fit_batch_size, keras_called_losses, weights_samples
from losslint.rules.base import Invalid, Rule, Valid

_HOW = {"compile": "passed to compile()", "loss-class": "the `call` of a Keras Loss",
        "wrapper": "wrapped by LossFunctionWrapper"}


class BatchReducedLoss(Rule):
    code = "LL201"
    name = "batch-reduced-loss"
    summary = "a loss given to compile()/Loss.call that reduces over the batch axis (sum: scales with batch size)"
    what_it_does = (
        "Finds a loss that Keras itself calls - a function passed to `compile(loss=...)`, the `call` of a "
        "`keras.losses.Loss` subclass, a function wrapped by `LossFunctionWrapper` - whose returned value is a "
        "reduction over the batch axis: `reduce_sum` / `K.sum` / `ops.sum` with no axis (or an axis that includes 0) "
        "always; `reduce_mean` / `K.mean` / `ops.mean` over all axes when the module weights samples "
        "(`sample_weight=`, `class_weight=`). It follows the returned value through assignments, scalar "
        "arithmetic and same-module helpers. Losses of custom training loops, `GradientTape` blocks and PyTorch "
        "code are never reported: there a scalar is what is wanted."
    )
    why_bad = (
        "Keras expects one loss value per sample: it applies `sample_weight`/`class_weight` to that "
        "vector and then averages it over the batch. A `reduce_sum` over the batch makes the reported loss and the "
        "gradients grow with the batch size - with batch_size=32 the loss is 32x the per-sample mean, so changing "
        "the batch size silently changes the effective learning rate, and the smaller last batch counts less. A "
        "`reduce_mean` over everything gives the same number as long as no sample is weighted, but with weights "
        "Keras can only scale the batch mean by mean(sample_weight): with weights [1, 0, 0, 0] the loss is a "
        "quarter of the mean of all four samples instead of the first sample's loss divided by four. "
        "This is a convention warning: a sum can be deliberate (keras-cv defended it for learning-rate "
        "invariance), but the number Keras reports is then not the per-sample mean."
    )
    example = """\
        def custom_loss(y_true, y_pred):
            return tf.reduce_sum(tf.square(y_true - y_pred))

        model.compile(optimizer="adam", loss=custom_loss)
    """
    use_instead = """\
        def custom_loss(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)   # one value per sample

        model.compile(optimizer="adam", loss=custom_loss)
    """
    fix_safety = ("No automatic fix yet: reducing over the non-batch axes changes the scale of a `reduce_sum` loss "
                  "(by the batch size), so the change must be made, and the learning rate reviewed, by hand.")
    frameworks = ("tensorflow", "keras")
    scoped = True

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._findings: dict[int, str] | None = None

    def _compute(self) -> dict[int, str]:
        index = self.context.index
        out: dict[int, str] = {}
        losses = keras_called_losses(index, self.context.scopes)
        if not losses:
            return out
        weighted = None
        batch = fit_batch_size(index)
        for func, how in losses.values():
            for red in batch_reductions(index, func):
                spelled = self.source_of(red.call.func, 30)
                where = f"`{func.qualname}` ({_HOW[how]})"
                if red.kind == "sum":
                    b = batch or 32
                    shown = f"batch_size={b}" if batch else "the default batch_size=32"
                    out[id(red.call)] = (
                        f"`{spelled}` sums the loss of {where} over the batch: the reported loss and its gradients "
                        f"grow with the batch size (with {shown} they are {b}x the per-sample mean) and the last, "
                        f"smaller batch counts less; reduce over the non-batch axes only (e.g. axis=-1) and let "
                        f"Keras average over the batch")
                else:
                    if weighted is None:
                        weighted = weights_samples(index)
                    if not weighted:
                        continue
                    out[id(red.call)] = (
                        f"`{spelled}` averages the loss of {where} over the whole batch, and this module weights "
                        f"samples: Keras applies sample_weight/class_weight to the per-sample values a loss returns, "
                        f"so on one scalar it can only scale the batch mean by mean(sample_weight) and the weights "
                        f"no longer pick out samples; reduce over the non-batch axes only (e.g. axis=-1)")
        return out

    def visit_Call(self, node: cst.Call) -> None:
        if self._findings is None:
            self._findings = self._compute()
        msg = self._findings.get(id(node))
        if msg is not None:
            self.report(node, msg)

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss=custom_loss)
        """, "per-sample reduction over the last axis: the correct form"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.keras.losses.mean_squared_error(y_true, y_pred))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
            model.fit(x_train, y_train, batch_size=32, epochs=10)
        """, "a batch mean with no sample weights anywhere: Keras reports the same number as for the per-sample "
             "form (seed s001 'corrected' version)"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            optimizer = tf.keras.optimizers.Adam()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(y - model(x))) / tf.cast(tf.shape(x)[0], tf.float32)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "a custom training loop must reduce to a scalar"),
        Valid("""
            import torch

            class DiceLoss(torch.nn.Module):
                def forward(self, pred, target):
                    inter = (pred * target).sum()
                    return 1 - 2 * inter / (pred.sum() + target.sum() + 1)
        """, "PyTorch losses reduce themselves"),
        Valid("""
            import keras
            from keras import ops

            class Kld(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    y_true = ops.clip(y_true, 1e-7, 1.0)
                    y_pred = ops.clip(y_pred, 1e-7, 1.0)
                    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)
        """, "a Keras Loss subclass reducing over the class axis"),
        Valid("""
            from tensorflow.keras import backend as K

            def dice_loss(y_true, y_pred, smooth=1.0):
                inter = K.sum(y_true * y_pred, axis=[1, 2, 3])
                union = K.sum(y_true, axis=[1, 2, 3]) + K.sum(y_pred, axis=[1, 2, 3])
                return 1 - (2.0 * inter + smooth) / (union + smooth)

            model.compile(optimizer="adam", loss=dice_loss)
        """, "per-image Dice: sums over the spatial axes only"),
        Valid("""
            import tensorflow as tf

            def sum_loss(y_true, y_pred):
                return tf.reduce_sum(tf.square(y_true - y_pred))

            @tf.function
            def step(x, y):
                with tf.GradientTape() as tape:
                    loss = sum_loss(y, model(x))
                return tape.gradient(loss, model.trainable_variables)
        """, "a summed loss used only in a custom loop"),
        Valid("""
            import jax.numpy as jnp

            def loss_fn(params, x, y):
                return jnp.sum((apply(params, x) - y) ** 2)
        """, "JAX: the loss of jax.grad is a scalar"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                loss = tf.reduce_sum(tf.keras.losses.mean_squared_error(y_true, y_pred))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
            model.fit(x_train, y_train, batch_size=32, epochs=10)
        """, "LL201", 4, "reduce_sum with no axis, passed to compile (seed s001)"),
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                return tf.reduce_mean(tf.abs(y_true - y_pred))

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss=custom_loss)
            model.fit(x, y, sample_weight=w, epochs=5)
        """, "LL201", 4, "reduce_mean over everything while fit() weights samples"),
        Invalid("""
            import keras
            from keras import ops

            class SumSquaredError(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.sum(ops.square(y_true - y_pred))
        """, "LL201", 6, "Keras 3 Loss subclass summing over the batch"),
        Invalid("""
            from tensorflow.keras import backend as K

            def weighted_bce(y_true, y_pred):
                bce = K.binary_crossentropy(y_true, y_pred)
                return K.sum(bce * 0.7)

            model.compile(optimizer="adam", loss=weighted_bce)
        """, "LL201", 5, "Keras 2 backend K.sum with no axis"),
        Invalid("""
            import tensorflow as tf

            def _sse(y_true, y_pred):
                return tf.reduce_sum(tf.square(y_true - y_pred), axis=0)

            model.compile(optimizer="adam", loss=lambda yt, yp: 0.5 * _sse(yt, yp))
        """, "LL201", 4, "axis=0 in a helper of a lambda loss"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras.losses import LossFunctionWrapper

            def total_error(y_true, y_pred):
                return -tf.reduce_sum(y_true * tf.math.log_sigmoid(y_pred))

            loss_obj = LossFunctionWrapper(total_error, name="total_error")
        """, "LL201", 5, "wrapped by LossFunctionWrapper"),
        Invalid("""
            import tensorflow as tf

            def per_batch_loss(y_true, y_pred):
                return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred))

            model.compile(optimizer="adam", loss=per_batch_loss)
            model.fit(x, y, class_weight={0: 1.0, 1: 10.0})
        """, "LL201", 4, "class_weight cannot up-weight the rare class of a batch mean"),
    ]
