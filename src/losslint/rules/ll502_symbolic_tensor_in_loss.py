"""LL502 symbolic-tensor-in-loss: a compiled Keras loss captures a Keras `Input` or a layer output."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.captures import SYMBOLIC_ATTRS, Captures, captures_for, chain_root
from losslint.analysis.calls import arg
from losslint.analysis.index import FuncInfo, StmtInfo
from losslint.analysis.names import dotted_name
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

_CONSEQUENCE = (
    "in TF2 / Keras 3 the loss runs on real batches inside the compiled train step, where a symbolic tensor cannot "
    "be evaluated (\"Cannot convert a symbolic Keras input/output\", \"A KerasTensor cannot be used as input to a "
    "TensorFlow function\"); compute this term with `model.add_loss(...)` / a layer that calls `add_loss`, pass the "
    "extra tensor as a model output, or override `train_step`/`compute_loss`"
)


class SymbolicTensorInLoss(ModuleFindingsRule):
    code = "LL502"
    name = "symbolic-tensor-in-loss"
    summary = "loss closure captures Keras Input / layer output tensors (fails under TF2 / Keras 3)"
    what_it_does = (
        "Finds a loss given to Keras `compile` (or a Keras `Loss` subclass's `call`, or a `tf.function`) that reads a "
        "symbolic Keras tensor from an enclosing scope: a `keras.Input(...)`, the output of a layer or model called "
        "on one (`z_mean = Dense(2)(h)`), `model.output` / `model.layers[i].output` / "
        "`model.get_layer(...).output`, or such a tensor passed to a loss factory (`penalized_loss(noise=h)`) or to "
        "a Loss subclass's constructor."
    )
    why_bad = (
        "In graph-mode Keras 2 the loss was built once on the same graph as the model, so closing over an "
        "intermediate tensor worked; the Keras 2 VAE example did exactly that. In TF2 and Keras 3 the loss is "
        "called on concrete batches inside `tf.function`, and a symbolic `KerasTensor` there raises (tensorflow/"
        "tensorflow#38056, #50678) with a message that does not mention the loss. Where it does not raise it "
        "silently reads a stale value."
    )
    example = """\
        inputs = keras.Input(shape=(784,))
        h = layers.Dense(256, activation="relu")(inputs)
        z_mean = layers.Dense(2)(h)
        z_log_var = layers.Dense(2)(h)
        ...
        def vae_loss(x, x_decoded):
            kl = -0.5 * K.sum(1 + z_log_var - K.square(z_mean) - K.exp(z_log_var), axis=-1)
            return K.mean(K.binary_crossentropy(x, x_decoded), axis=-1) + kl

        vae.compile(optimizer="adam", loss=vae_loss)
    """
    use_instead = """\
        class KLDivergence(layers.Layer):
            def call(self, z_mean, z_log_var):
                kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
                self.add_loss(ops.mean(kl))
                return z_mean

        z_mean = KLDivergence()(z_mean, z_log_var)
        vae.compile(optimizer="adam", loss="binary_crossentropy")
    """
    fix_safety = "No automatic fix: the term has to move into the model (add_loss, an extra output or train_step)."

    def _eligible(self, caps: Captures, func: FuncInfo) -> str | None:
        reason = caps.traced(func)
        scope = self.context.scopes.scope_of_func(func)
        if reason in ("compile", "keras-loss", "tf.function"):
            return reason
        if scope is not None and scope.kind == "compile":
            return "compile"
        if func.cls is not None and func.name == "call" and caps.class_is(func.cls, ("Loss", "LossFunctionWrapper")):
            return "keras-loss"
        return None

    def _compute(self) -> dict[int, str]:
        caps = captures_for(self.context.index, self.context.scopes)
        out: dict[int, str] = {}
        if not caps.uses_tf:
            return out
        for func in self.context.index.functions:
            if self._eligible(caps, func) is None:
                continue
            where = f"the loss `{func.qualname}`"
            for cap in caps.captures(func):
                what = self._symbolic_capture(caps, cap)
                if what:
                    out.setdefault(id(cap.first), f"`{cap.name}` is {what}, captured by {where}: {_CONSEQUENCE}")
            ctx_stmt = func.stmt
            reads = caps.reads(func)
            for attr in reads.attributes:
                root = chain_root(attr)
                if root is None or root.value == "self" or attr.attr.value not in SYMBOLIC_ATTRS:
                    continue
                if root.value in func.defs or root.value in reads.locals:
                    continue
                if caps.kind(attr, ctx_stmt) == "symbolic":
                    out.setdefault(id(attr), f"`{self.source_of(attr)}` is a symbolic Keras tensor of the model, "
                                             f"captured by {where}: {_CONSEQUENCE}")
            if func.cls is not None and func.parent is None:
                self._constructor_args(caps, func, where, out)
        self._partials(caps, out)
        return out

    def _partials(self, caps: Captures, out: dict[int, str]) -> None:
        """`compile(loss=partial(gp_loss, averaged_samples=avg))` with `avg` a layer output (the Keras WGAN-GP
        examples): the bound parameter is a symbolic tensor inside the compiled loss."""
        index = self.context.index
        for call, stmt in index.all_calls:
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "compile"):
                continue
            loss_arg = arg(call, "loss", 1)
            if loss_arg is None:
                continue
            for expr, estmt in _loss_exprs(caps, loss_arg, stmt, 0):
                if not (isinstance(expr, cst.Call) and expr.args
                        and (index.qualify(expr.func) or dotted_name(expr.func) or "").endswith("partial")):
                    continue
                target = caps.function_named(expr.args[0].value, estmt)
                if target is None:
                    continue
                bound: dict[str, cst.BaseExpression] = {}
                positional = [a for a in expr.args[1:] if a.keyword is None and not a.star]
                params = [p for p in target.params if p.position >= 0]
                for i, a in enumerate(positional):
                    if i < len(params):
                        bound[params[i].name] = a.value
                for a in expr.args:
                    if a.keyword is not None:
                        bound[a.keyword.value] = a.value
                for pname, val in bound.items():
                    if caps.kind(val, estmt) not in ("symbolic", "input"):
                        continue
                    reads = caps.reads(target).names.get(pname)
                    if reads:
                        out.setdefault(id(reads[0]), (
                            f"`{pname}` is bound by `partial(...)` to a symbolic Keras tensor "
                            f"(`{self.source_of(val)}`) and the partial is the compiled loss: {_CONSEQUENCE}"))

    def _symbolic_capture(self, caps: Captures, cap) -> str | None:  # type: ignore[no-untyped-def]
        for d in cap.defs:
            if d.kind == "param" and cap.owner is not None:
                # a loss factory's parameter: symbolic when a call of the factory passes a symbolic tensor
                param = next((p for p in cap.owner.params if p.name == cap.name), None)
                if param is None:
                    continue
                for call, stmt in self.context.index.all_calls:
                    if caps.function_named(call.func, stmt) is not cap.owner:
                        continue
                    passed = arg(call, param.name, param.position) if param.position >= 0 else arg(call, param.name, 99)
                    if passed is not None and caps.kind(passed, stmt) in ("symbolic", "input"):
                        return f"a symbolic Keras tensor (`{self.source_of(passed)}` passed to `{cap.owner.name}`)"
            elif d.kind == "assign":
                k = caps.kind(d.value, d.stmt)
                if k == "input":
                    return "a Keras `Input` (a symbolic tensor)"
                if k == "symbolic":
                    return "a symbolic Keras tensor (a layer output)"
        return None

    def _constructor_args(self, caps: Captures, func: FuncInfo, where: str, out: dict[int, str]) -> None:
        cls = func.cls
        init = cls.methods.get("__init__") if cls is not None else None
        if cls is None or init is None:
            return
        for attr in caps.reads(func).attributes:
            if not (isinstance(attr.value, cst.Name) and attr.value.value == "self"):
                continue
            for d in cls.self_attrs.get(attr.attr.value, []):
                if d.stmt is None or d.stmt.func is not init or not isinstance(d.value, cst.Name):
                    continue
                param = next((p for p in init.params if p.name == d.value.value), None)
                if param is None:
                    continue
                for call, stmt in self.context.index.all_calls:
                    if not (isinstance(call.func, cst.Name) and call.func.value == cls.name):
                        continue
                    passed = arg(call, param.name, param.position) if param.position >= 0 else arg(call, param.name, 99)
                    if passed is not None and caps.kind(passed, stmt) in ("symbolic", "input"):
                        out.setdefault(id(attr), (
                            f"`self.{attr.attr.value}` holds a symbolic Keras tensor (`{self.source_of(passed)}` passed "
                            f"to `{cls.name}`), read by {where}: {_CONSEQUENCE}"))

    def visit_Name(self, node: cst.Name) -> None:
        self._check(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import keras
            from keras import layers, ops

            inputs = keras.Input(shape=(784,))
            h = layers.Dense(256, activation="relu")(inputs)
            z_mean = layers.Dense(2)(h)
            z_log_var = layers.Dense(2)(h)
            outputs = layers.Dense(784, activation="sigmoid")(z_mean)
            vae = keras.Model(inputs, outputs)

            def kl_loss(z_mean, z_log_var):
                return -0.5 * ops.mean(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))

            vae.add_loss(kl_loss(z_mean, z_log_var))
            vae.compile(optimizer="adam", loss="binary_crossentropy")
        """, "add_loss on symbolic tensors, the loss itself takes them as arguments"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            class_weights = tf.constant(np.array([1.0, 5.0, 10.0]), dtype=tf.float32)

            def weighted_ce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0)
                return -tf.reduce_sum(class_weights * y_true * tf.math.log(y_pred), axis=-1)

            model.compile(optimizer="adam", loss=weighted_ce)
        """, "a captured concrete tensor (class weights)"),
        Valid("""
            import tensorflow as tf
            from tensorflow import keras

            vgg = keras.applications.VGG16(include_top=False, weights="imagenet")
            features = keras.Model(vgg.input, vgg.get_layer("block3_conv3").output)

            def perceptual_loss(y_true, y_pred):
                return tf.reduce_mean(tf.square(features(y_true) - features(y_pred)))

            model.compile(optimizer="adam", loss=perceptual_loss)
        """, "a captured model, called on y_true/y_pred: the model's symbolic output is used only to build it"),
        Valid("""
            import keras
            from keras import layers, ops

            class VAE(keras.Model):
                def train_step(self, data):
                    z_mean, z_log_var, z = self.encoder(data)
                    recon = self.decoder(z)
                    kl = -0.5 * ops.mean(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                    loss = ops.mean(ops.square(data - recon)) + kl
                    return {"loss": loss}

            inputs = keras.Input(shape=(784,))
            z_mean = layers.Dense(2)(inputs)
        """, "a custom train_step: tensors are concrete there"),
        Valid("""
            import tensorflow as tf
            from tensorflow.keras.layers import Dense, Input
            from tensorflow.keras.models import Model

            inp = Input(shape=(10,))
            out = Dense(1, activation="sigmoid")(inp)
            model = Model(inp, out)

            def bce(y_true, y_pred):
                y_pred = tf.clip_by_value(y_pred, 1e-7, 1 - 1e-7)
                return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))

            model.compile(optimizer="adam", loss=bce)
        """, "a functional model whose loss reads only its arguments"),
        Valid("""
            import torch
            import torch.nn as nn

            encoder = nn.Linear(10, 4)
            anchor = encoder(torch.randn(1, 10))

            def loss_fn(pred, target):
                return nn.functional.mse_loss(pred, target) + 0.1 * (pred - anchor.detach()).pow(2).mean()

            loss = loss_fn(model(x), y)
            loss.backward()
        """, "PyTorch is eager: a captured tensor is concrete"),
        Valid("""
            from tensorflow import keras
            from tensorflow.keras import layers

            class KLDivergence(layers.Layer):
                def call(self, z_mean, z_log_var):
                    kl = -0.5 * keras.backend.sum(1 + z_log_var - keras.backend.square(z_mean)
                                                  - keras.backend.exp(z_log_var), axis=-1)
                    self.add_loss(keras.backend.mean(kl))
                    return z_mean

            inputs = keras.Input(shape=(784,))
            z_mean = layers.Dense(2)(inputs)
            z_log_var = layers.Dense(2)(inputs)
            z_mean = KLDivergence()(z_mean, z_log_var)
        """, "an endpoint layer with add_loss (the recommended fix)"),
    ]
    INVALID = [
        Invalid("""
            from keras import backend as K
            from keras.layers import Dense, Input
            from keras.models import Model

            inp = Input((1,))
            out = Dense(1, activation="sigmoid")(inp)
            model = Model(inp, out)

            def loss(y_true, y_pred):
                return K.sum(-y_true * K.log(y_pred) * inp)

            model.compile(optimizer="adam", loss=loss)
        """, "LL502", 10, "a captured Input (tensorflow/tensorflow#38056)"),
        Invalid("""
            from tensorflow import keras
            from tensorflow.keras import backend as K
            from tensorflow.keras import layers

            inputs = keras.Input(shape=(784,))
            h = layers.Dense(256, activation="relu")(inputs)
            z_mean = layers.Dense(2)(h)
            z_log_var = layers.Dense(2)(h)
            outputs = layers.Dense(784, activation="sigmoid")(z_mean)
            vae = keras.Model(inputs, outputs)

            def vae_loss(x, x_decoded):
                kl = -0.5 * K.sum(1 + z_log_var - K.square(z_mean) - K.exp(z_log_var), axis=-1)
                return K.mean(K.binary_crossentropy(x, x_decoded), axis=-1) + kl

            vae.compile(optimizer="adam", loss=vae_loss)
        """, "LL502", 13, "the Keras 2 VAE example under TF2"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras.layers import Dense, Input
            from tensorflow.keras.models import Model

            inp = Input(shape=(20,))
            hidden = Dense(16, activation="relu")(inp)
            out = Dense(1)(hidden)
            model = Model(inp, out)

            def penalized_loss(noise):
                def loss(y_true, y_pred):
                    return tf.reduce_mean(tf.square(y_pred - y_true) - tf.square(y_true - noise), axis=-1)
                return loss

            model.compile(optimizer="adam", loss=penalized_loss(noise=hidden))
        """, "LL502", 12, "a loss factory given a layer output"),
        Invalid("""
            import keras
            from keras import layers, ops

            inputs = keras.Input(shape=(32,))
            emb = layers.Dense(8)(inputs)
            logits = layers.Dense(3)(emb)
            model = keras.Model(inputs, logits)

            def loss_fn(y_true, y_pred):
                ce = keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)
                return ce + 1e-3 * ops.sum(ops.square(emb), axis=-1)

            model.compile(optimizer="adam", loss=loss_fn)
        """, "LL502", 11, "Keras 3: a KerasTensor in the loss"),
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
            model.build((None, 32))

            def feature_loss(y_true, y_pred):
                feats = model.layers[0].output
                return tf.reduce_mean(tf.square(y_true - y_pred)) + 1e-4 * tf.reduce_mean(tf.square(feats))

            model.compile(optimizer="adam", loss=feature_loss)
        """, "LL502", 8, "model.layers[i].output read in the loss"),
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            class AuxLoss(keras.losses.Loss):
                def __init__(self, aux):
                    super().__init__()
                    self.aux = aux

                def call(self, y_true, y_pred):
                    return tf.reduce_mean(tf.square(y_true - y_pred)) + tf.reduce_mean(self.aux)

            inputs = keras.Input(shape=(8,))
            aux = keras.layers.Dense(1)(inputs)
            model = keras.Model(inputs, keras.layers.Dense(1)(aux))
            model.compile(optimizer="adam", loss=AuxLoss(aux))
        """, "LL502", 10, "a Loss subclass given a layer output"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def attention_loss(y_true, y_pred):
                att = model.get_layer("attention").output
                return K.mean(K.square(y_true - y_pred)) + 0.01 * K.mean(K.abs(att))

            model = tf.keras.models.load_model("base.h5")
            model.compile(optimizer="adam", loss=attention_loss)
        """, "LL502", 5, "model.get_layer(...).output"),
        Invalid("""
            from functools import partial

            from keras import backend as K
            from keras.layers import Input
            from keras.layers.merge import _Merge

            class RandomWeightedAverage(_Merge):
                def _merge_function(self, inputs):
                    weights = K.random_uniform((32, 1, 1, 1))
                    return (weights * inputs[0]) + ((1 - weights) * inputs[1])

            def gradient_penalty_loss(y_true, y_pred, averaged_samples, weight):
                gradients = K.gradients(y_pred, averaged_samples)[0]
                return K.mean(weight * K.square(1 - K.sqrt(K.sum(K.square(gradients), axis=[1, 2, 3]))))

            real = Input(shape=(28, 28, 1))
            fake = generator(Input(shape=(100,)))
            averaged = RandomWeightedAverage()([real, fake])
            gp_loss = partial(gradient_penalty_loss, averaged_samples=averaged, weight=10)
            critic_model.compile(optimizer="adam", loss=[wasserstein_loss, wasserstein_loss, gp_loss])
        """, "LL502", 13, "WGAN-GP: partial() binding a layer output (keras-contrib improved_wgan.py)"),
    ]


def _loss_exprs(caps: Captures, expr: cst.BaseExpression, stmt: StmtInfo | None,
                depth: int) -> list[tuple[cst.BaseExpression, StmtInfo | None]]:
    """The expressions a `loss=` argument stands for: list/dict elements, names followed to their assignments."""
    if depth > 3:
        return []
    if isinstance(expr, (cst.List, cst.Tuple)):
        return [x for el in expr.elements for x in _loss_exprs(caps, el.value, stmt, depth + 1)]
    if isinstance(expr, cst.Dict):
        return [x for el in expr.elements if isinstance(el, cst.DictElement)
                for x in _loss_exprs(caps, el.value, stmt, depth + 1)]
    if isinstance(expr, cst.Name):
        return [x for d in caps.defs_at(expr.value, stmt) if d.kind == "assign" and d.value is not None
                for x in _loss_exprs(caps, d.value, d.stmt, depth + 1)]
    return [(expr, stmt)]
