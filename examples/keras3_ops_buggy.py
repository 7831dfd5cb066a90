"""Keras 3 losses written with keras.ops. Each `# BUG LLxxx` comment marks a line losslint must report."""

import keras
from keras import ops


class BinaryFocalLoss(keras.losses.Loss):
    def __init__(self, gamma=2.0, name="binary_focal_loss"):
        super().__init__(name=name)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
        return -ops.mean((1 - p_t) ** self.gamma * ops.log(p_t), axis=-1)  # BUG LL101: p_t is 0 when confidently wrong


def sigmoid_bce(y_true, logits):
    p = ops.sigmoid(logits)
    return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)  # BUG LL102: use log_sigmoid


def masked_mae(y_true, y_pred):
    mask = ops.cast(ops.not_equal(y_true, 0.0), "float32")
    return ops.sum(ops.abs(y_true - y_pred) * mask, axis=-1) / ops.sum(mask, axis=-1)  # BUG LL103: all-padding row


model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss=BinaryFocalLoss())
