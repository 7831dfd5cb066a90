"""LL702 recompile-resets-optimizer: compile() again after fit() on the same model."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.model_flow import TRAINING, _prefix, call_text, model_flow, same_args
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid


def _fresh_optimizer(call: cst.Call) -> bool:
    """A string, a constructor call or the default: compile() builds a new optimizer with empty state."""
    opt = kwarg(call, "optimizer")
    if opt is None:
        pos = positional(call)
        opt = pos[0] if pos else None
    return opt is None or isinstance(opt, (cst.SimpleString, cst.Call))


def _all_keywords(a: cst.Call, b: cst.Call) -> tuple[str, ...]:
    """A recompile that changes anything (metrics, loss weights, jit_compile) is deliberate: compare every keyword."""
    return tuple(sorted({x.keyword.value for c in (a, b) for x in c.args if x.keyword is not None}))


class RecompileResetsOptimizer(ModuleFindingsRule):
    code = "LL702"
    name = "recompile-resets-optimizer"
    summary = "compile() again, unchanged, after fit() on the same model: a fresh optimizer, but the weights stay"
    what_it_does = (
        "Finds `model.compile(...)` repeated with the same optimizer and loss after `model.fit(...)` on the same "
        "model, followed by another `fit()`, in straight-line code of one module or function. It is not reported "
        "when anything between the fit and the recompile mentions `trainable` (the fine-tuning recipe, where "
        "compile() must be called again), when the optimizer or loss changes, or when the optimizer is an existing "
        "object (its state survives the compile)."
    )
    why_bad = (
        "compile() builds a new optimizer: Adam's moment estimates, the step count and any learning-rate schedule "
        "restart from zero. It does NOT reset the weights, which is what the code usually means by recompiling: the "
        "second fit() starts from the already trained model, so comparing the two runs (batch sizes, learning "
        "rates) compares a fresh model with a pre-trained one restarted by an optimizer warm-up."
    )
    example = """\
        model.compile(optimizer="adam", loss="mse")
        history_small = model.fit(X, y, batch_size=10)
        model.compile(optimizer="adam", loss="mse")
        history_large = model.fit(X, y, batch_size=100)
    """
    use_instead = """\
        def make_model():
            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            return model

        history_small = make_model().fit(X, y, batch_size=10)
        history_large = make_model().fit(X, y, batch_size=100)
    """
    fix_safety = "No automatic fix yet: a fresh model or keeping the optimizer are different intentions."
    scoped = False
    outside_scope = "model training sequence"

    def _compute(self) -> dict[int, str]:
        flow = model_flow(self.context.index)
        found: dict[int, str] = {}
        for region in list(flow.regions.values()):
            evs = region.events
            for i, c2 in enumerate(evs):
                if c2.kind != "compile" or not _fresh_optimizer(c2.call):
                    continue
                m = c2.model
                fits = [e for e in evs[:i] if e.model == m and e.kind in TRAINING and e.stmt.index < c2.stmt.index
                        and _prefix(e.stmt.path, c2.stmt.path)]
                if not fits:
                    continue
                fit = fits[-1]
                firsts = [e for e in evs if e.model == m and e.kind == "compile" and e.stmt.index < fit.stmt.index]
                if not firsts or not same_args(firsts[-1].call, c2.call, _all_keywords(firsts[-1].call, c2.call)):
                    continue
                c1 = firsts[-1]
                if flow.defined_between(region, m, c1.stmt.index, c2.stmt.index):
                    continue
                between = flow.stmts_between(region, fit.stmt.index, c2.stmt.index)
                if any("trainable" in self.context.code_for(s.node) for s in between):
                    continue
                later = [e for e in evs[i + 1:] if e.model == m and e.kind in TRAINING
                         and e.stmt.index > c2.stmt.index and _prefix(c2.stmt.path, e.stmt.path)
                         and not flow.defined_between(region, m, c2.stmt.index, e.stmt.index)]
                if not later:
                    continue
                found[id(c2.call)] = (
                    f"`{m}.compile()` again after `{call_text(fit.call, 40)}` only gives `{m}` a fresh optimizer "
                    f"(its moments and step count restart from zero); the weights are NOT reset, so the next "
                    f"`fit()` continues from the trained model: build a new model to start over, or drop this "
                    f"compile() to keep training")
        return found

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            base = tf.keras.applications.MobileNetV2(include_top=False, weights="imagenet")
            base.trainable = False
            model = tf.keras.Sequential([base, tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(1)])
            model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
            model.fit(train_ds, epochs=5)
            base.trainable = True
            model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
            model.fit(train_ds, epochs=5)
        """, "the fine-tuning recipe: compile() must follow a trainable change"),
        Valid("""
            import tensorflow as tf

            def make_model():
                model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
                model.compile(optimizer="adam", loss="mse")
                return model

            history_small = make_model().fit(X, y, batch_size=10)
            history_large = make_model().fit(X, y, batch_size=100)
        """, "a fresh model per run"),
        Valid("""
            import keras

            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y, epochs=10)
            model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
            model.fit(X, y, epochs=10)
        """, "a deliberate change of optimizer for a second phase"),
        Valid("""
            import keras

            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y, epochs=10)
            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y, epochs=10)
        """, "a new model under the same name"),
        Valid("""
            import tensorflow as tf

            opt = tf.keras.optimizers.Adam()
            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer=opt, loss="mse")
            model.fit(X, y)
            model.compile(optimizer=opt, loss="mse", metrics=["mae"])
            model.fit(X, y)
        """, "the same optimizer object keeps its state"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y)
            model.compile(optimizer="adam", loss="mse", metrics=["mae"])
            print(model.evaluate(X, y))
        """, "recompiled only to evaluate with another metric: no training follows"),
        Valid("""
            import tensorflow as tf

            for bs in (10, 100):
                model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
                model.compile(optimizer="adam", loss="mse")
                model.fit(X, y, batch_size=bs)
        """, "a fresh model in each iteration"),
    ]
    VALID.append(Valid("""
        import keras

        model = keras.Sequential([keras.layers.Dense(3)])
        model.compile(optimizer="sgd", loss="mse", metrics=["mean_squared_error"])
        history_1 = model.fit(x, y).history
        model.compile(optimizer="sgd", loss="mse", metrics=["mean_absolute_error"])
        history_2 = model.fit(x, y).history
    """, "recompiled to change the metrics (keras trainer_test.py test_recompile)"))
    INVALID = [
        Invalid("""
            import tensorflow as tf

            model = tf.keras.models.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            history_small = model.fit(X_train, y_train, epochs=10, batch_size=10)
            model.compile(optimizer="adam", loss="mse")
            history_large = model.fit(X_train, y_train, epochs=10, batch_size=100)
        """, "LL702", 6, "the seed: comparing batch sizes on an already trained model"),
        Invalid("""
            import keras

            model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
            model.fit(x, y, epochs=5)
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
            model.fit(x, y, epochs=5)
        """, "LL702", 6, "Keras 3, optimizer constructed inline twice"),
        Invalid("""
            from keras.models import Sequential
            from keras.layers import Dense

            model = Sequential()
            model.add(Dense(1, input_dim=4))
            model.compile("sgd", "mse")
            model.fit(X, y, epochs=3)
            model.compile("sgd", "mse")
            model.fit(X, y, epochs=30)
        """, "LL702", 8, "Keras 2, positional arguments"),
        Invalid("""
            import tensorflow as tf

            def run(X, y):
                model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
                model.compile(loss="mse")
                model.fit(X, y)
                model.compile(loss="mse")
                return model.fit(X, y, epochs=100)
        """, "LL702", 7, "inside a function, default optimizer"),
        Invalid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y)
            print("phase 2")
            model.compile(optimizer="adam", loss="mse")
            if retrain:
                model.fit(X, y)
        """, "LL702", 7, "the second fit in a branch after the recompile"),
        Invalid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="rmsprop", loss="mae")
            model.train_on_batch(xb, yb)
            model.compile(optimizer="rmsprop", loss="mae")
            model.train_on_batch(xb, yb)
        """, "LL702", 6, "train_on_batch counts as training"),
    ]
