"""Keras 3 losses written safely with keras.ops: losslint must stay silent on this file."""

import keras
from keras import ops


class BinaryFocalLoss(keras.losses.Loss):
    def __init__(self, gamma=2.0, name="binary_focal_loss"):
        super().__init__(name=name)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        bce = ops.binary_crossentropy(y_true, y_pred)
        p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
        return ops.mean((1 - p_t) ** self.gamma * bce, axis=-1)


def sigmoid_bce(y_true, logits):
    return ops.mean(ops.binary_crossentropy(y_true, logits, from_logits=True), axis=-1)


def log_sigmoid_bce(y_true, logits):
    return -ops.mean(y_true * ops.log_sigmoid(logits) + (1 - y_true) * ops.log_sigmoid(-logits), axis=-1)


def clipped_bce(y_true, y_pred):
    y_pred = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred), axis=-1)


def masked_mae(y_true, y_pred):
    mask = ops.cast(ops.not_equal(y_true, 0.0), "float32")
    return ops.sum(ops.abs(y_true - y_pred) * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)


model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss=BinaryFocalLoss())
