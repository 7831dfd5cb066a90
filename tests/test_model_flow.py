"""model_flow's record of what is in force where a model is built, compiled and fit: the Keras dtype policy and the
`tf.distribute` strategy (with whether the statement runs inside its `scope()`)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint.analysis.index import ModuleIndex
from losslint.analysis.model_flow import ModelFlow, model_flow


def _flow(src: str) -> ModelFlow:
    return model_flow(ModuleIndex.build(cst.parse_module(textwrap.dedent(src).lstrip("\n")), "m.py"))


def _models(flow: ModelFlow) -> dict[str, tuple]:
    """name -> (policy name, line of the setting, definite, strategy class, built inside its scope)."""
    out = {}
    for m in flow.models():
        c = m.context
        out[m.name] = (c.policy_name, flow.line_of(c.policy.setting.call) if c.policy else None,
                       c.policy.definite if c.policy else None, c.strategy.cls if c.strategy else None, c.in_scope)
    return out


def _events(flow: ModelFlow, name: str) -> list[tuple]:
    rec = next(m for m in flow.models() if m.name == name)
    out = []
    for ev in rec.events:
        c = flow.event_context(ev)
        out.append((ev.kind, c.policy_name, c.strategy.cls if c.strategy else None, c.in_scope))
    return out


def test_sequential_built_and_compiled_inside_strategy_scope_under_mixed_policy() -> None:
    flow = _flow("""
        import tensorflow as tf
        from tensorflow import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            model = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=3)

        outside = keras.Sequential([keras.layers.Dense(1)])
        outside.compile(optimizer="adam", loss="mse")
    """)
    assert _models(flow) == {
        "model": ("mixed_float16", 4, True, "MirroredStrategy", True),
        "outside": ("mixed_float16", 4, True, "MirroredStrategy", False),
    }
    assert _events(flow, "model") == [("compile", "mixed_float16", "MirroredStrategy", True),
                                      ("fit", "mixed_float16", "MirroredStrategy", False)]
    assert _events(flow, "outside") == [("compile", "mixed_float16", "MirroredStrategy", False)]
    [strategy] = flow.strategies
    assert (strategy.var, strategy.replicas, flow.line_of(strategy.call)) == ("strategy", "many", 5)
    [scope] = flow.strategy_scopes
    assert scope.receiver == "strategy" and scope.strategies == [strategy]


def test_functional_models_built_before_and_after_the_policy() -> None:
    flow = _flow("""
        import tensorflow as tf

        inputs = tf.keras.Input(shape=(32,))
        early = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
        x = tf.keras.layers.Dense(64, activation="relu")(inputs)
        late = tf.keras.Model(inputs=inputs, outputs=tf.keras.layers.Dense(1, dtype="float32")(x))
        late.compile(optimizer="adam", loss="mse")
        tf.keras.mixed_precision.set_global_policy("float32")
        reset = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
        reset.fit(data)
    """)
    assert _models(flow) == {
        "early": (None, None, None, None, False),  # built before any setting: Keras' float32 default
        "late": ("mixed_float16", 5, True, None, False),
        "reset": ("float32", 9, True, None, False),
    }


def test_subclass_model_built_through_helpers_inside_a_tpu_scope() -> None:
    flow = _flow("""
        import tensorflow as tf
        from tensorflow.keras import mixed_precision

        class Classifier(tf.keras.Model):
            def __init__(self):
                super().__init__()
                self.head = tf.keras.layers.Dense(10)

            def call(self, x):
                return self.head(x)

        def enable_amp():
            policy = mixed_precision.Policy("mixed_bfloat16")
            mixed_precision.set_global_policy(policy)

        def build():
            return Classifier()

        def main(resolver):
            strategy = tf.distribute.TPUStrategy(resolver)
            enable_amp()
            with strategy.scope():
                model = build()
                model.compile(optimizer="adam", loss="mse")
            probe = Classifier()
            model.fit(ds)
    """)
    assert _models(flow) == {
        "model": ("mixed_bfloat16", 14, True, "TPUStrategy", True),  # set by enable_amp(), called before the build
        "probe": ("mixed_bfloat16", 14, True, "TPUStrategy", False),
    }
    assert _events(flow, "model") == [("compile", "mixed_bfloat16", "TPUStrategy", True),
                                      ("fit", "mixed_bfloat16", "TPUStrategy", False)]


def test_no_strategy_and_no_policy() -> None:
    flow = _flow("""
        import tensorflow as tf

        model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(x, y)
    """)
    assert flow.strategies == [] and flow.strategy_scopes == []
    assert _models(flow) == {"model": (None, None, None, None, False)}
    assert _events(flow, "model") == [("compile", None, None, False), ("fit", None, None, False)]


def test_torch_module_has_no_keras_policy_or_strategy() -> None:
    flow = _flow("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def forward(self, x):
                return self.fc(x)

        model = Net()
        seq = nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=1))
    """)
    assert _models(flow) == {"model": (None, None, None, None, False), "seq": (None, None, None, None, False)}


def test_policy_set_on_a_branch_is_not_definite() -> None:
    flow = _flow("""
        import keras

        if args.amp:
            keras.mixed_precision.set_global_policy("mixed_float16")
        model = keras.Sequential([keras.layers.Dense(1)])
        keras.config.set_dtype_policy(args.policy)
        other = keras.Sequential([keras.layers.Dense(1)])
    """)
    assert _models(flow) == {
        "model": ("mixed_float16", 4, False, None, False),
        "other": (None, 6, True, None, False),  # set, but the code does not say to what
    }
    assert next(m for m in flow.models() if m.name == "other").context.policy.dtype is None


def test_policy_in_force_in_a_step_function_follows_its_callers() -> None:
    src = """
        import tensorflow as tf

        def train_step(model, x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(y - model(x)))
            return tape.gradient(loss, model.trainable_variables)

        def main():
            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            for x, y in data:
                train_step(model, x, y)
    """
    flow = _flow(src)
    index = flow.index
    step_stmt = next(s for c, s in index.all_calls if isinstance(c.func, cst.Attribute) and c.func.attr.value
                     == "gradient")
    policy = flow.policy_at(step_stmt)
    assert (policy.name, policy.dtype, policy.definite, flow.line_of(policy.setting.call)) == (
        "mixed_float16", "float16", True, 9)
    # a function nobody calls sees what was set before its def, made indefinite by a later setting
    flow = _flow("""
        import tensorflow as tf

        tf.keras.mixed_precision.set_global_policy("mixed_float16")

        def step(model, x):
            return model(x)

        tf.keras.mixed_precision.set_global_policy("float32")
    """)
    stmt = next(s for c, s in flow.index.all_calls if s.func is not None)
    policy = flow.policy_at(stmt)
    assert (policy.name, policy.definite) == ("float32", False)


def test_strategy_kinds_and_receivers() -> None:
    flow = _flow("""
        import tensorflow as tf

        one = tf.distribute.OneDeviceStrategy("/gpu:0")
        pinned = tf.distribute.MirroredStrategy(devices=["/gpu:0"])
        multi = tf.distribute.experimental.MultiWorkerMirroredStrategy()
        current = tf.distribute.get_strategy()

        class Trainer:
            def __init__(self):
                self.strategy = multi

            def fit(self, ds):
                with self.strategy.scope():
                    self.model = build()
                return self.strategy.run(self.step, args=(ds,))

        def train(strategy, ds):
            with strategy.scope():
                model = build_model()
            model.fit(ds)
    """)
    kinds = {s.var: (s.cls, s.replicas) for s in flow.strategies}
    assert kinds == {"one": ("OneDeviceStrategy", "one"), "pinned": ("MirroredStrategy", "one"),
                     "multi": ("MultiWorkerMirroredStrategy", "many"), "current": ("get_strategy", "unknown")}
    scopes = {sc.receiver: [s.var for s in sc.strategies] for sc in flow.strategy_scopes}
    assert scopes == {"self.strategy": ["multi"], "strategy": []}  # a parameter: a scope of a strategy not built here
    run = next((c, s) for c, s in flow.index.all_calls if isinstance(c.func, cst.Attribute) and c.func.attr.value
               == "run")
    assert [s.var for s in flow.strategies_of(run[0].func.value, run[1])] == ["multi"]
    # the model built inside `with strategy.scope()` of a parameter: in scope, class unknown
    [rec] = [m for m in flow.models() if m.name == "model"]
    assert rec.context.in_scope and rec.context.scope is not None and rec.context.scope.strategies == []


@pytest.mark.tensorflow
def test_recorded_policy_matches_the_layers_keras_builds() -> None:
    """Keras reads the global policy in each layer's constructor: the policy model_flow records at the build is the
    one the real model computes in (float16 outputs only for the model built under mixed_float16)."""
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    src = textwrap.dedent("""
        import keras

        first = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
        keras.mixed_precision.set_global_policy("mixed_float16")
        second = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
        keras.mixed_precision.set_global_policy("float32")
        third = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    """).lstrip("\n")
    recorded = {name: v[0] or "float32" for name, v in _models(_flow(src)).items()}
    namespace: dict = {}
    try:
        exec(compile(src, "policies.py", "exec"), namespace)  # noqa: S102 - the module under analysis, run for real
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")
    x = np.ones((2, 4), "float32")
    real = {name: namespace[name].layers[0].dtype_policy.name for name in ("first", "second", "third")}
    assert recorded == real == {"first": "float32", "second": "mixed_float16", "third": "float32"}
    assert {name: namespace[name](x).dtype for name in real} == {
        "first": tf.float32, "second": tf.float16, "third": tf.float32}


def test_a_linear_activation_layer_keeps_the_output_it_casts() -> None:
    """The TensorFlow mixed-precision guide ends its model with `Activation('linear', dtype='float32')` after the
    softmax, to cast it: the model still outputs probabilities (a false LL601 "linear layer" on the guide)."""
    flow = _flow("""
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(784,))
        x = layers.Dense(10, name="dense_logits")(inputs)
        outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
        outputs = layers.Activation("linear", dtype="float32")(outputs)
        model = keras.Model(inputs=inputs, outputs=outputs)
        model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.RMSprop())
        logits = keras.Sequential([layers.Dense(10), layers.Activation("linear")])
        logits.compile(loss="mse")
    """)
    outputs = {}
    for rec in flow.models():
        [ev] = [e for e in rec.events if e.kind == "compile"]
        out = flow.model_output(rec.region, rec.name, ev.stmt)
        outputs[rec.name] = (out.activation, out.units)
    assert outputs == {"model": ("softmax", 10), "logits": ("linear", 10)}
