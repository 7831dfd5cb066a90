"""LL601 from-logits-mismatch: a Keras loss's from_logits flag contradicts the model's final activation."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.model_flow import LossInfo, ModelFlow, Output, Region, model_flow
from losslint.analysis.spelling import code, keras_loss_class, name_count, with_keyword
from losslint.rules.base import FixSpec, Invalid, ModuleFindingsRule, Replacement, Valid

_CLASS_OF = {  # canonical probability loss -> its Keras class
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
}


def _code(node: cst.CSTNode, limit: int = 40) -> str:
    text = " ".join(cst.Module(body=[]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FromLogitsMismatch(ModuleFindingsRule):
    code = "LL601"
    name = "from-logits-mismatch"
    summary = "compile() loss's from_logits contradicts the model's final activation (softmax + True, linear + False)"
    what_it_does = (
        "Links each `model.compile(loss=...)` to the model it is called on, built in the same module or function "
        "(`Sequential([...])` and `.add(...)`, the functional `Model(inputs, outputs)`, a same-module `keras.Model` "
        "subclass's `call`, a same-module builder function), and compares the model's final activation with the "
        "loss: a softmax or sigmoid output with `from_logits=True`, or a linear output (`Dense(n)` with no "
        "activation) with a probability loss that assumes probabilities: `from_logits=False`, the default of "
        "`CategoricalCrossentropy()` and friends, and every string loss such as `\"categorical_crossentropy\"`, "
        "`\"sparse_categorical_crossentropy\"` and `\"binary_crossentropy\"`."
    )
    why_bad = (
        "With `from_logits=False` Keras treats the outputs as probabilities: it clips them to [1e-7, 1 - 1e-7] and "
        "renormalises, so logits give a wrong loss and every negative logit is clipped to eps and gets no gradient "
        "(a measured CE of 0.549 instead of 0.145). With `from_logits=True` on probabilities the softmax/sigmoid is "
        "applied twice (0.642 instead of 0.145), the loss cannot approach 0 and gradients are squashed. The "
        "TensorFlow backend of Keras rescues the second case when the probabilities come from a Keras activation "
        "(it uses the cached logits and warns); the JAX and PyTorch backends, and `tf.nn.softmax` outputs, do not."
    )
    example = """\
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    """
    use_instead = """\
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    """
    fix_safety = (
        "Unsafe: the fix changes the loss by design (it makes the loss read the outputs as what they are), so it is "
        "applied only with `--unsafe-fixes`. It changes the loss, never the model: a linear output gets the loss "
        "class with `from_logits=True` (a string such as `\"sparse_categorical_crossentropy\"` or a functional loss "
        "becomes `SparseCategoricalCrossentropy(from_logits=True)`, spelled with the file's own Keras imports; an "
        "explicit `from_logits=False` is flipped), a softmax or sigmoid output gets `from_logits=False`. A loss "
        "object bound to a name first is changed where it is built only when this `compile` is its only use; no fix "
        "when `from_logits` could be passed positionally. Removing the final activation instead is equally valid "
        "but changes what `predict` returns, so it is left to the user. Confirmation runs compile's loss before and "
        "after the fix as a function of (y_true, model output), on outputs shaped like the model's (logits for a "
        "linear last layer, the activation of logits otherwise): the fixed loss must run, change the value and stay "
        "finite; for a `from_logits` flip it also checks, as evidence, that the loss with `from_logits=True` on the "
        "logits equals the probability loss on their softmax/sigmoid (what the user meant)."
    )
    scoped = False
    outside_scope = "model compile()"

    def _compute(self) -> dict[int, str]:
        flow = model_flow(self.context.index)
        found: dict[int, str] = {}
        self._fixes: dict[int, FixSpec] = {}
        for region in list(flow.regions.values()):
            for ev in region.events:
                if ev.kind != "compile":
                    continue
                loss = flow.compile_loss(ev, region)
                if loss is None:
                    continue
                out = flow.model_output(region, ev.model, ev.stmt)
                if out is None:
                    continue
                built, _, alone = self._built(flow, region, ev.stmt, loss.node)
                if isinstance(built, cst.Call) and (positional(built) or any(a.star for a in built.args)):
                    continue  # CategoricalCrossentropy(True): from_logits may be passed positionally
                layer = _code(out.node)
                shown = _code(loss.node)
                if out.activation in ("softmax", "sigmoid") and loss.from_logits:
                    found[id(loss.node)] = (
                        f"`{ev.model}` already ends in a {out.activation} (`{layer}`) but `{shown}` is told "
                        f"from_logits=True: the {out.activation} is applied a second time, so the loss cannot "
                        f"approach 0 and its gradients are squashed (Keras' TensorFlow backend silently uses the "
                        f"cached logits instead, the JAX and PyTorch backends do not); drop from_logits=True or the "
                        f"final activation")
                elif out.activation == "linear" and not loss.from_logits:
                    how = "from_logits=False" if loss.explicit else "from_logits=False by default"
                    found[id(loss.node)] = (
                        f"`{ev.model}` ends in a linear layer (`{layer}`) that outputs logits, but `{shown}` "
                        f"expects probabilities ({how}): Keras clips the logits to [1e-7, 1 - 1e-7] and "
                        f"renormalises them, so the reported loss is wrong and negative logits get no gradient; use "
                        f"the loss class with from_logits=True")
                if id(loss.node) in found and alone:
                    fix = self._fix(built, loss, out)
                    if fix is not None:
                        self._fixes[id(loss.node)] = fix
        return found

    def _check(self, node: cst.CSTNode) -> None:
        if self._findings is None:
            self._findings = self._compute()
        msg = self._findings.get(id(node))
        if msg is not None:
            self.report(node, msg, self._fixes.get(id(node)))

    def _built(self, flow: ModelFlow, region: Region, stmt, expr: cst.BaseExpression,  # noqa: ANN001
               ) -> tuple[cst.BaseExpression, object, bool]:
        """Where the compile loss is built: through names assigned once (as `loss_info` follows them), with whether
        each of those names is used only on the way here (then the loss can be changed where it is built)."""
        index = self.context.index
        chain = flow.assignment_chain(region, expr, stmt, 4)
        scope = region.func.node if region.func is not None else index.module
        alone = all(len(region.defs.get(name.value, ())) == 1 and name_count(scope, name.value) == 2
                    for name, _ in chain[:-1] if isinstance(name, cst.Name))
        expr, stmt = chain[-1]
        return expr, stmt, alone

    def _fix(self, expr: cst.BaseExpression, loss: LossInfo, out: Output) -> FixSpec | None:
        """The loss made to read the outputs as they are: from_logits=True for logits, False for probabilities."""
        index = self.context.index
        want = "True" if out.activation == "linear" else "False"
        title = f"set from_logits={want}"
        if isinstance(expr, cst.Call):  # a loss class: set the flag
            flag = kwarg(expr, "from_logits")
            if flag is not None and not (isinstance(flag, cst.Name) and flag.value in ("True", "False")):
                return None
            new = code(with_keyword(expr, "from_logits", want))
        elif want == "True" and loss.name in _CLASS_OF:  # a string or a functional loss: the class, with the flag
            cls = _CLASS_OF[loss.name]
            q = index.qualify(expr) if isinstance(expr, (cst.Name, cst.Attribute)) else None
            if isinstance(expr, cst.Attribute) and q is not None and q.rsplit(".", 1)[0].endswith(".losses"):
                func = f"{code(expr.value)}.{cls}"  # keras.losses.categorical_crossentropy -> keras.losses.Categ...
            else:
                like = q or (index.qualify(out.node.func) if isinstance(out.node, cst.Call) else None)
                func = keras_loss_class(index, cls, like)
            if func is None:
                return None
            new = f"{func}(from_logits=True)"
            title = f"use {cls}(from_logits=True)"
        else:
            return None
        return FixSpec(title, "unsafe", (Replacement(expr, new),), expect="changed")

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._visit(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._visit(node)

    def visit_Name(self, node: cst.Name) -> None:
        self._visit(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._visit(node)

    def _visit(self, node: cst.CSTNode) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(64, activation="relu"),
                tf.keras.layers.Dense(10),
            ])
            model.compile(optimizer="adam",
                          loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
        """, "the TensorFlow tutorial: logits with from_logits=True"),
        Valid("""
            from keras import layers, models

            model = models.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
            model.compile(optimizer="adam", loss="categorical_crossentropy")
        """, "softmax output with a string loss (probabilities)"),
        Valid("""
            import keras
            from keras import layers

            inputs = keras.Input(shape=(16,))
            x = layers.Dense(32, activation="relu")(inputs)
            outputs = layers.Dense(1, activation="sigmoid")(x)
            model = keras.Model(inputs, outputs)
            model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy())
        """, "functional sigmoid output, default from_logits=False"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
        """, "a regression: linear output and mse"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential()
            model.add(tf.keras.layers.Dense(10))
            model.add(tf.keras.layers.Activation("softmax"))
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        """, "a softmax layer added after the logits"),
        Valid("""
            import tensorflow as tf

            base = tf.keras.applications.MobileNetV2(include_top=False)
            model = tf.keras.Sequential([base, tf.keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss="categorical_crossentropy")
        """, "a model whose layers are not all known is not judged"),
        Valid("""
            import tensorflow as tf

            def build(n):
                model = tf.keras.Sequential([tf.keras.layers.Dense(n, activation="softmax")])
                model.compile(loss=tf.keras.losses.CategoricalCrossentropy(from_logits=False))
                return model
        """, "explicit from_logits=False with a softmax output"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(5)])
            model.compile(optimizer="adam", loss=tf.keras.losses.CategoricalCrossentropy(True))
        """, "from_logits=True passed positionally"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Flatten(input_shape=(28, 28)),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10),
            ])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        """, "LL601", 8, "linear Dense(10) with a string probability loss", fixed="""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Flatten(input_shape=(28, 28)),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10),
            ])
            model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        """),
        Invalid("""
            from keras.models import Sequential
            from keras.layers import Dense
            from keras.losses import SparseCategoricalCrossentropy

            model = Sequential()
            model.add(Dense(64, activation="relu"))
            model.add(Dense(10, activation="softmax"))
            model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True))
        """, "LL601", 8, "softmax output with from_logits=True (Keras 2 .add)", fixed="""
            from keras.models import Sequential
            from keras.layers import Dense
            from keras.losses import SparseCategoricalCrossentropy

            model = Sequential()
            model.add(Dense(64, activation="relu"))
            model.add(Dense(10, activation="softmax"))
            model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=False))
        """),
        Invalid("""
            import keras
            from keras import layers

            inputs = keras.Input(shape=(16,))
            x = layers.Dense(32, activation="relu")(inputs)
            outputs = layers.Dense(1, activation="sigmoid")(x)
            model = keras.Model(inputs=inputs, outputs=outputs)
            model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        """, "LL601", 8, "Keras 3 functional sigmoid output with from_logits=True", fixed="""
            import keras
            from keras import layers

            inputs = keras.Input(shape=(16,))
            x = layers.Dense(32, activation="relu")(inputs)
            outputs = layers.Dense(1, activation="sigmoid")(x)
            model = keras.Model(inputs=inputs, outputs=outputs)
            model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=False))
        """),
        Invalid("""
            import tensorflow as tf

            loss_fn = tf.keras.losses.CategoricalCrossentropy()
            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(5)])
            model.compile(optimizer="adam", loss=loss_fn)
        """, "LL601", 5, "a loss object bound to a name first, default from_logits=False", fixed="""
            import tensorflow as tf

            loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True)
            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(5)])
            model.compile(optimizer="adam", loss=loss_fn)
        """),
        Invalid("""
            import tensorflow as tf

            class Classifier(tf.keras.Model):
                def __init__(self):
                    super().__init__()
                    self.hidden = tf.keras.layers.Dense(64, activation="relu")
                    self.out = tf.keras.layers.Dense(10)

                def call(self, x):
                    return self.out(self.hidden(x))

            model = Classifier()
            model.compile(optimizer="adam", loss="categorical_crossentropy")
        """, "LL601", 13, "subclassed model whose call returns logits", fixed="""
            import tensorflow as tf

            class Classifier(tf.keras.Model):
                def __init__(self):
                    super().__init__()
                    self.hidden = tf.keras.layers.Dense(64, activation="relu")
                    self.out = tf.keras.layers.Dense(10)

                def call(self, x):
                    return self.out(self.hidden(x))

            model = Classifier()
            model.compile(optimizer="adam", loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True))
        """),
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            def build_model():
                model = keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
                return model

            model = build_model()
            model.compile("adam", keras.losses.categorical_crossentropy)
        """, "LL601", 9, "a builder function; the functional loss positional", fixed="""
            import tensorflow as tf
            from tensorflow import keras

            def build_model():
                model = keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
                return model

            model = build_model()
            model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
        """),
        Invalid("""
            import tensorflow as tf

            inp = tf.keras.Input((8,))
            logits = tf.keras.layers.Dense(4)(inp)
            probs = tf.nn.softmax(logits)
            model = tf.keras.Model(inp, probs)
            model.compile(loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True), optimizer="adam")
        """, "LL601", 7, "tf.nn.softmax output (no Keras rescue) with from_logits=True", fixed="""
            import tensorflow as tf

            inp = tf.keras.Input((8,))
            logits = tf.keras.layers.Dense(4)(inp)
            probs = tf.nn.softmax(logits)
            model = tf.keras.Model(inp, probs)
            model.compile(loss=tf.keras.losses.CategoricalCrossentropy(from_logits=False), optimizer="adam")
        """),
        Invalid("""
            import tensorflow as tf

            loss_fn = tf.keras.losses.CategoricalCrossentropy()
            model = tf.keras.Sequential([tf.keras.layers.Dense(5)])
            model.compile(optimizer="adam", loss=loss_fn)
            probe = tf.keras.Sequential([tf.keras.layers.Dense(5, activation="softmax")])
            probe.compile(optimizer="adam", loss=loss_fn)
        """, "LL601", 5, "no fix: the loss object also serves a softmax model"),
    ]
