"""LL304 single-unit-softmax: a softmax over a last axis of size 1 is identically 1."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.model_flow import model_flow
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid


class SingleUnitSoftmax(ModuleFindingsRule):
    code = "LL304"
    name = "single-unit-softmax"
    summary = "softmax over a last axis of size 1 (Dense(1, activation=\"softmax\")): the output is always 1.0"
    what_it_does = (
        "Finds a softmax applied over a last axis whose size is literally 1: `Dense(1, activation=\"softmax\")`, a "
        "`Dense(1)` followed by an `Activation(\"softmax\")` / `Softmax()` layer in a `Sequential` list, in later "
        "`.add(...)` calls or in the functional API, `tf.nn.softmax` / `keras.ops.softmax` of such an output, "
        "`nn.Linear(k, 1)` followed by `nn.Softmax` in an `nn.Sequential`, and `F.softmax(self.fc(x), dim=-1)` "
        "with `self.fc = nn.Linear(k, 1)`. A softmax over another axis (`axis=1` over a sequence, attention "
        "pooling) is not reported."
    )
    why_bad = (
        "Softmax normalises over the axis: over a single value it is exp(z) / exp(z) = 1 for every input. The model "
        "predicts 1.0 for every sample, so predictions, metrics and accuracy are useless (accuracy stays at the share "
        "of the positive class), and a loss computed from the output gets exactly 0 gradient through it, so the "
        "network never learns (keras-team/keras#500, #1261). One exception hides the bug: Keras' TensorFlow backend "
        "computes `binary_crossentropy` from the cached pre-activation logits, so training shows a moving loss while "
        "every prediction is still 1.0."
    )
    example = """\
        model = keras.Sequential([layers.Dense(32, activation="relu"), layers.Dense(1, activation="softmax")])
        model.compile(loss="binary_crossentropy", optimizer="adam")
    """
    use_instead = """\
        model = keras.Sequential([layers.Dense(32, activation="relu"), layers.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", optimizer="adam")
        # or: Dense(2, activation="softmax") with sparse_categorical_crossentropy
    """
    fix_safety = "No automatic fix yet: sigmoid + binary cross-entropy or two softmax units both change the model."
    scoped = False
    outside_scope = "model definition"

    def _compute(self) -> dict[int, str]:
        out = {}
        for key, what in model_flow(self.context.index).single_unit_softmaxes().items():
            out[key] = (f"softmax over {what} is always exactly 1.0: the prediction is constant, the loss cannot "
                        f"change and every gradient through it is 0 (use a sigmoid for one unit, or 2 softmax units)")
        return out

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(32, activation="relu"),
                tf.keras.layers.Dense(1, activation="sigmoid"),
            ])
            model.compile(optimizer="adam", loss="binary_crossentropy")
        """, "one unit with a sigmoid"),
        Valid("""
            from keras import layers, models

            model = models.Sequential([layers.Dense(64, activation="relu"), layers.Dense(2, activation="softmax")])
        """, "two softmax units"),
        Valid("""
            import keras
            from keras import layers

            inputs = keras.Input(shape=(20, 16))
            scores = layers.Dense(1)(inputs)
            weights = keras.ops.softmax(scores, axis=1)
        """, "attention pooling: softmax over the sequence axis of (B, T, 1) scores"),
        Valid("""
            import torch
            from torch import nn
            import torch.nn.functional as F

            class AttentionPool(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.score = nn.Linear(d, 1)

                def forward(self, x):
                    w = F.softmax(self.score(x), dim=1)
                    return (w * x).sum(dim=1)
        """, "torch attention pooling over dim=1 of (B, T, 1)"),
        Valid("""
            import torch.nn as nn

            head = nn.Sequential(nn.Linear(128, 1), nn.Sigmoid())
        """, "torch binary head with a sigmoid"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential()
            model.add(tf.keras.layers.Dense(10))
            model.add(tf.keras.layers.Activation("softmax"))
        """, "ten units then a softmax layer"),
        Valid("""
            from tensorflow.keras.layers import Dense

            n_classes = 1
            out = Dense(n_classes, activation="softmax")
        """, "a width from a variable is not provably 1 here (not reported)"),
        Valid("""
            import torch.nn as nn

            neurons = 64
            attentionMechanism = nn.Sequential(
                nn.Linear(neurons, neurons),
                nn.LeakyReLU(),
                nn.Linear(neurons, 1),  # (B, T, 1)
                nn.Softmax(dim=1),
            )
        """, "an attention-scoring nn.Sequential: Softmax(dim=1) runs over the sequence axis of (B, T, 1) "
             "(Inside Deep Learning, chapter 10)"),
    ]
    INVALID = [
        Invalid("""
            from keras.models import Sequential
            from keras.layers import Dense

            model = Sequential()
            model.add(Dense(12, input_dim=8, activation="relu"))
            model.add(Dense(1, activation="softmax"))
            model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        """, "LL304", 6, "Keras 2 Dense(1, activation='softmax')"),
        Invalid("""
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(16, activation="relu"),
                tf.keras.layers.Dense(1),
                tf.keras.layers.Activation("softmax"),
            ])
        """, "LL304", 6, "a trailing Activation('softmax') after Dense(1)"),
        Invalid("""
            import keras
            from keras import layers

            model = keras.Sequential()
            model.add(layers.Dense(1))
            model.add(layers.Softmax())
        """, "LL304", 6, "Keras 3 Softmax layer added after Dense(1)"),
        Invalid("""
            import tensorflow as tf

            inputs = tf.keras.Input(shape=(8,))
            logit = tf.keras.layers.Dense(1)(inputs)
            prob = tf.nn.softmax(logit)
            model = tf.keras.Model(inputs, prob)
        """, "LL304", 5, "functional API: tf.nn.softmax of a Dense(1) output"),
        Invalid("""
            import torch.nn as nn

            classifier = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1), nn.Softmax(dim=1))
        """, "LL304", 3, "torch nn.Sequential head"),
        Invalid("""
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 1)

                def forward(self, x):
                    return torch.softmax(self.fc(x), dim=-1)
        """, "LL304", 10, "torch forward returning softmax over the 1-unit last axis"),
        Invalid("""
            from tensorflow.keras import layers

            out_layer = layers.Dense(units=1, activation="softmax")
        """, "LL304", 3, "units= keyword"),
    ]
