"""LL501 model-weights-in-loss: a Keras/TF loss reads model or layer weights from an enclosing scope (information)."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.captures import captures_for, chain_attrs, chain_root
from losslint.model import Severity
from losslint.rules.base import Invalid, ModuleFindingsRule, Rule, Valid

# Attributes that are a model's or layer's variables. `weights`/`kernel`/`bias` count only on something that is a
# Keras model or layer (or reached through `.layers[...]` / `.get_layer(...)`); the trainable_* lists always do.
_ALWAYS = frozenset({"trainable_weights", "trainable_variables", "non_trainable_weights"})
_ON_LAYER = frozenset({"weights", "variables", "kernel", "bias", "recurrent_kernel", "depthwise_kernel",
                       "pointwise_kernel", "embeddings", "gamma", "beta"})


class ModelWeightsInLoss(ModuleFindingsRule):
    code = "LL501"
    name = "model-weights-in-loss"
    severity = Severity.INFORMATION
    summary = "loss reads model / layer weights from an enclosing scope (works; kernel_regularizer / add_loss is the idiom)"
    what_it_does = (
        "Finds a TensorFlow/Keras loss function that reads a model's or layer's weights from outside its "
        "arguments: `model.trainable_weights`, `model.trainable_variables`, `model.layers[0].weights`, "
        "`layer.kernel`, `model.get_layer(...).kernel`. Reported as information only: it works."
    )
    why_bad = (
        "It is not a bug. The variables are watched and the penalty is differentiated (the evidence for harm is "
        "weak, keras-team/keras#11135). But the penalty is computed per batch inside the loss, so the loss Keras "
        "reports mixes the data term and the penalty, a `reduce_sum` loss or a distribution strategy rescales it, "
        "and it is easy to count twice with a `kernel_regularizer` on the same layer. The idiom is a "
        "`kernel_regularizer` on the layer or `model.add_loss(...)`; both appear in `model.losses`, separately from "
        "the data loss. PyTorch's `sum(p.pow(2).sum() for p in model.parameters())` in a training loop is that "
        "framework's normal idiom and is not reported."
    )
    example = """\
        def custom_loss(y_true, y_pred):
            mse = tf.keras.losses.mean_squared_error(y_true, y_pred)
            reg = tf.reduce_sum(tf.abs(model.layers[0].weights[0]))
            return mse + 0.01 * reg
    """
    use_instead = """\
        model = tf.keras.Sequential([
            tf.keras.layers.Dense(64, kernel_regularizer=tf.keras.regularizers.l1(0.01)),
            ...
        ])
        model.compile(optimizer="adam", loss="mse")
    """
    fix_safety = "No automatic fix: moving the penalty into the model is a design change."

    def _compute(self) -> dict[int, str]:
        caps = captures_for(self.context.index, self.context.scopes)
        out: dict[int, str] = {}
        if not caps.uses_tf:
            return out
        for func in self.context.index.functions:
            if self.context.scopes.scope_of_func(func) is None or caps.is_training_step(func):
                continue  # a train step passes trainable_weights to tape.gradient: that is not a penalty
            reads = caps.reads(func)
            seen: set[str] = set()
            for attr in reads.attributes:
                root = chain_root(attr)
                if root is None or root.value in ("self", "cls") or root.value in seen:
                    continue
                if root.value in func.defs or root.value in reads.locals:
                    continue  # a parameter or a local: not captured
                _, defs = caps.resolve(func, root.value)
                if not defs:
                    continue
                name = attr.attr.value
                attrs = chain_attrs(attr)
                via_layers = any(a in ("layers", "get_layer") for a in attrs[:-1])
                if name in _ALWAYS:
                    pass
                elif name in _ON_LAYER:
                    kinds = {caps.kind(d.value, d.stmt) for d in defs if d.kind == "assign"}
                    if not via_layers and not kinds & {"model", "layer"}:
                        continue
                else:
                    continue
                if any(caps.kind(d.value, d.stmt) == "other" and _is_torch(self, d.value) for d in defs):
                    continue
                seen.add(root.value)
                out[id(attr)] = (
                    f"the loss `{func.qualname}` reads `{self.source_of(attr)}` from the enclosing scope: this works, "
                    f"but the reported loss then mixes the data term with a weight penalty; the idiom is a "
                    f"`kernel_regularizer` on the layer or `model.add_loss(...)`")
        return out

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(64, activation="relu", kernel_regularizer=tf.keras.regularizers.l1(0.01)),
                tf.keras.layers.Dense(1),
            ])
            model.compile(optimizer="adam", loss="mse")
        """, "kernel_regularizer: the idiom"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(64), tf.keras.layers.Dense(1)])
            model.add_loss(lambda: 1e-4 * tf.reduce_sum(tf.square(model.layers[0].kernel)))
            model.compile(optimizer="adam", loss="mse")
        """, "add_loss with a zero-argument callable"),
        Valid("""
            import torch

            def loss_fn(pred, target):
                l2 = sum(p.pow(2).sum() for p in model.parameters())
                return torch.nn.functional.mse_loss(pred, target) + 1e-4 * l2

            for x, y in loader:
                loss = loss_fn(model(x), y)
                loss.backward()
        """, "PyTorch: model.parameters() in the loss is the normal idiom"),
        Valid("""
            import tensorflow as tf

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x, training=True))) + tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "a custom loop passing trainable_variables to tape.gradient"),
        Valid("""
            import tensorflow as tf

            def train_step(inputs, targets):
                with tf.GradientTape() as tape:
                    predictions = model(inputs, training=True)
                    loss = loss_fn(targets, predictions)
                gradients = tape.gradient(loss, model.trainable_weights)
                optimizer.apply_gradients(zip(gradients, model.trainable_weights))
                return loss

            model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
        """, "a train step with a (inputs, targets) signature (Deep Learning with Python, chapter 7)"),
        Valid("""
            import keras
            from keras import ops

            class RegularizedModel(keras.Model):
                def compute_loss(self, x, y, y_pred, sample_weight=None):
                    l2 = ops.sum([ops.sum(ops.square(w)) for w in self.trainable_weights])
                    return ops.mean(ops.square(y - y_pred)) + 1e-4 * l2
        """, "a Model's own compute_loss reading self.trainable_weights"),
        Valid("""
            import tensorflow as tf

            def l2_loss(y_true, y_pred, weights):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + 1e-4 * tf.add_n([tf.nn.l2_loss(w) for w in weights])

            loss = l2_loss(y, model(x), model.trainable_weights)
        """, "the weights are an argument, not a capture"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                mse = tf.keras.losses.mean_squared_error(y_true, y_pred)
                reg = tf.reduce_sum(tf.abs(model.layers[0].weights[0]))
                return mse + 0.01 * reg

            model = tf.keras.Sequential([tf.keras.layers.Dense(64), tf.keras.layers.Dense(1)])
            model.compile(loss=custom_loss, optimizer="adam")
        """, "LL501", 5, "L1 penalty on the first layer's weights (the seed example)"),
        Invalid("""
            from keras import backend as K
            from keras.models import load_model

            model = load_model("pretrained.h5")

            def loss(y_true, y_pred):
                penalty = K.sum([K.sum(K.square(w)) for w in model.trainable_weights])
                return K.mean(K.square(y_true - y_pred)) + 1e-4 * penalty

            model.compile(optimizer="adam", loss=loss)
        """, "LL501", 7, "an L2 penalty over trainable_weights"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import layers

            dense = layers.Dense(32)

            def loss_fn(y_true, y_pred):
                return tf.reduce_mean(tf.square(y_true - y_pred)) + 1e-3 * tf.reduce_sum(tf.square(dense.kernel))

            model.compile(optimizer="adam", loss=loss_fn)
        """, "LL501", 7, "a layer's kernel"),
        Invalid("""
            import tensorflow as tf

            def make_loss(model):
                def loss(y_true, y_pred):
                    k = model.get_layer("embedding").embeddings
                    return tf.reduce_mean(tf.square(y_true - y_pred)) + 1e-5 * tf.reduce_sum(tf.square(k))
                return loss

            model.compile(optimizer="adam", loss=make_loss(model))
        """, "LL501", 5, "a factory's model, get_layer(...).embeddings"),
        Invalid("""
            import keras
            from keras import ops

            model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(1)])

            def smooth_loss(y_true, y_pred):
                w = model.trainable_variables[0]
                return ops.mean(ops.square(y_true - y_pred)) + 1e-3 * ops.sum(ops.abs(w[1:] - w[:-1]))

            model.compile(optimizer="adam", loss=smooth_loss)
        """, "LL501", 7, "Keras 3: trainable_variables in the loss"),
        Invalid("""
            import tensorflow as tf

            encoder = tf.keras.Sequential([tf.keras.layers.Dense(16)])

            def orthogonality_loss(y_true, y_pred):
                w = encoder.layers[0].kernel
                gram = tf.matmul(w, w, transpose_a=True)
                return tf.reduce_mean(tf.square(y_true - y_pred)) + tf.reduce_sum(tf.square(gram - tf.eye(16)))

            model.compile(optimizer="adam", loss=orthogonality_loss)
        """, "LL501", 6, "an orthogonality penalty on a layer kernel"),
    ]


def _is_torch(rule: Rule, value: cst.BaseExpression | None) -> bool:
    if not isinstance(value, cst.Call):
        return False
    q = rule.context.index.qualify(value.func) or ""
    return q.startswith("torch.")
