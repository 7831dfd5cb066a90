"""LL701 train-eval-preprocessing-mismatch: fit on transformed inputs, evaluate/predict on untransformed ones."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg
from losslint.analysis.model_flow import INFERENCE, TRAINING, call_text, first_input, model_flow
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

_WORDS = (("normalised", "unnormalised"), ("centred", "uncentred"), ("scaled", "unscaled"),
          ("preprocessed", "unpreprocessed"))


def _words(desc: str) -> tuple[str, str]:
    for done, undone in _WORDS:
        if desc.startswith(done):
            return done, undone
    return "transformed", "untransformed"


class TrainEvalPreprocessingMismatch(ModuleFindingsRule):
    code = "LL701"
    name = "train-eval-preprocessing-mismatch"
    summary = "model fit on normalised/scaled inputs, evaluated or predicted on untransformed ones"
    what_it_does = (
        "Follows the input of `model.fit(X_t, ...)` back to a preprocessing assignment in the same module or "
        "function (`(X - mean) / std`, `X - X.mean()`, `X / 255.`, `scaler.transform(X)` / `fit_transform`, "
        "`preprocess_input(X)`, sklearn `scale`/`normalize`) and reports `evaluate`/`predict` calls on the same "
        "model, and `validation_data`, whose input never went through a transform: the raw source itself, a sibling "
        "unpacked by the same statement (`load_data()`, `train_test_split`), or data made by the same call "
        "(`np.random.rand`, `np.load`)."
    )
    why_bad = (
        "The network learned weights for inputs of the transformed range; fed raw ones (pixel values up to 255 "
        "instead of 1, features off by their mean and scale) it sees data unlike anything it trained on. "
        "evaluate() then reports a loss that says nothing about the model, and predict() returns garbage; nothing "
        "raises."
    )
    example = """\
        X_train_n = (X_train - X_train.mean(axis=0)) / X_train.std(axis=0)
        model.fit(X_train_n, y_train)
        loss = model.evaluate(X_test, y_test)
    """
    use_instead = """\
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        model.fit((X_train - mean) / std, y_train)
        loss = model.evaluate((X_test - mean) / std, y_test)
    """
    fix_safety = "No automatic fix yet: the transform must reuse the training statistics."
    scoped = False
    outside_scope = "model train/evaluate data flow"

    def _compute(self) -> dict[int, str]:
        flow = model_flow(self.context.index)
        found: dict[int, str] = {}
        for region in list(flow.regions.values()):
            for f in region.events:
                if f.kind not in TRAINING:
                    continue
                x = first_input(f.call)
                if not isinstance(x, cst.Name):
                    continue
                d = flow.reaching(region, x.value, f.stmt)
                if d is None or d.kind != "assign" or d.value is None or d.stmt is None:
                    continue
                t = flow.transform_of(d.value)
                if t is None or not isinstance(t[1], cst.Name):
                    continue
                desc, src = t[0], t[1].value
                sd = flow.reaching(region, src, d.stmt)
                targets: list[tuple[cst.Name, str, object]] = []
                vd = kwarg(f.call, "validation_data")
                if isinstance(vd, cst.Tuple) and vd.elements and isinstance(vd.elements[0].value, cst.Name):
                    targets.append((vd.elements[0].value, "fit(validation_data=...)", f))
                for g in region.events:
                    if g.model != f.model or g.kind not in INFERENCE or g.stmt.index <= f.stmt.index:
                        continue
                    if flow.defined_between(region, f.model, f.stmt.index, g.stmt.index):
                        continue
                    z = first_input(g.call)
                    if isinstance(z, cst.Name):
                        targets.append((z, f"{g.kind}()", g))
                for z, kind, g in targets:
                    if z.value == x.value or not self._raw_sibling(flow, region, z, g.stmt, src, sd):  # type: ignore
                        continue
                    done, undone = _words(desc)
                    found[id(z)] = (
                        f"{kind} sees {undone} inputs while fit() saw {done} ones: `{f.model}` was trained on "
                        f"`{x.value}` = `{call_text(d.value, 45)}`, but `{z.value}` never goes through that "
                        f"transform, so the results describe inputs unlike any the model trained on; apply the same "
                        f"transform (with the training statistics) to `{z.value}`")
        return found

    @staticmethod
    def _raw_sibling(flow, region, z: cst.Name, stmt, src: str, sd) -> bool:  # type: ignore[no-untyped-def]
        defs = [d for d in region.defs.get(z.value, ()) if d.stmt is not None and d.index < stmt.index]
        for d in defs:
            if d.kind in ("aug", "store") or (d.value is not None and flow.transform_of(d.value) is not None):
                return False
        zd = flow.reaching(region, z.value, stmt)
        if z.value == src:
            return zd is sd
        if zd is None or sd is None or zd.stmt is None or sd.stmt is None:
            return False
        if zd.stmt is sd.stmt:
            return zd.kind == "unknown" and sd.kind == "unknown"  # unpacked by the same statement
        if zd.kind == "assign" and sd.kind == "assign" and isinstance(zd.value, cst.Call) \
                and isinstance(sd.value, cst.Call):
            qz, qs = flow.index.qualify(zd.value.func), flow.index.qualify(sd.value.func)
            return qz is not None and qz == qs
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import numpy as np
            import tensorflow as tf

            X_train = np.random.rand(100, 2)
            X_test = np.random.rand(50, 2)
            mean, std = X_train.mean(axis=0), X_train.std(axis=0)
            X_train_n = (X_train - mean) / std
            X_test_n = (X_test - mean) / std
            model.fit(X_train_n, y_train)
            model.evaluate(X_test_n, y_test)
        """, "both normalised with the training statistics"),
        Valid("""
            import tensorflow as tf

            (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
            x_train, x_test = x_train / 255.0, x_test / 255.0
            model.fit(x_train, y_train, epochs=5)
            model.evaluate(x_test, y_test, verbose=2)
        """, "the TensorFlow quickstart: both scaled in one statement"),
        Valid("""
            from sklearn.preprocessing import StandardScaler
            import keras

            scaler = StandardScaler()
            X_tr = scaler.fit_transform(X_train)
            X_te = scaler.transform(X_test)
            model.fit(X_tr, y_train)
            preds = model.predict(X_te)
        """, "the scaler applied to both"),
        Valid("""
            import tensorflow as tf

            (x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
            x_train = x_train / 255.0
            x_test /= 255.0
            model.fit(x_train, y_train)
            model.evaluate(x_test, y_test)
        """, "the test set scaled in place"),
        Valid("""
            import tensorflow as tf

            x_train = x_train.astype("float32") / 255
            model.fit(x_train, y_train)
            model.evaluate(x_eval, y_eval)
        """, "evaluation data of unknown origin (not reported)"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            X_train = np.random.rand(100, 2)
            X_train_n = (X_train - X_train.mean(0)) / X_train.std(0)
            model.fit(X_train_n, y_train)
            print(model.evaluate(X_train_n, y_train))
        """, "evaluated on the same transformed data"),
    ]
    INVALID = [
        Invalid("""
            import numpy as np
            import tensorflow as tf

            X_train = np.random.rand(100, 2)
            X_train_normalized = (X_train - np.mean(X_train, axis=0)) / np.std(X_train, axis=0)
            model.fit(X_train_normalized, y_train, epochs=100, verbose=0)
            X_test = np.random.rand(50, 2)
            loss = model.evaluate(X_test, y_test)
        """, "LL701", 8, "the seed"),
        Invalid("""
            import tensorflow as tf

            (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
            x_train = x_train / 255.0
            model.fit(x_train, y_train, epochs=5)
            model.evaluate(x_test, y_test)
        """, "LL701", 6, "MNIST: only the training images scaled"),
        Invalid("""
            from sklearn.model_selection import train_test_split
            from sklearn.preprocessing import StandardScaler
            import keras

            X_train, X_test, y_train, y_test = train_test_split(X, y)
            scaler = StandardScaler()
            X_train = scaler.fit_transform(X_train)
            model.fit(X_train, y_train)
            y_hat = model.predict(X_test)
        """, "LL701", 9, "scaler fitted and applied to the training split only"),
        Invalid("""
            import tensorflow as tf

            (x_train, y_train), (x_val, y_val) = tf.keras.datasets.fashion_mnist.load_data()
            x_train_s = x_train.astype("float32") / 255.
            model.fit(x_train_s, y_train, validation_data=(x_val, y_val))
        """, "LL701", 5, "raw validation data"),
        Invalid("""
            import numpy as np
            import keras

            feats = np.load("features.npy")
            feats_n = (feats - feats.mean(axis=0)) / feats.std(axis=0)
            model.fit(feats_n, labels)
            print(model.predict(feats[:5]))
            print(model.predict(feats))
        """, "LL701", 8, "predict on the raw source array"),
        Invalid("""
            import tensorflow as tf

            def train(model, X, y, X_new):
                Xc = X - X.mean(axis=0)
                model.fit(Xc, y)
                return model.predict(X)
        """, "LL701", 6, "inside a function, centred inputs"),
    ]
