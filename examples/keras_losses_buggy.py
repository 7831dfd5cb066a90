"""Keras losses with the bugs losslint exists for. Each `# BUG LLxxx` comment marks a line it must report."""

import tensorflow as tf
from tensorflow.keras import backend as K


def categorical_crossentropy(y_true, y_pred):
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)  # BUG LL101: y_pred can be exactly 0


def dice_loss(y_true, y_pred):
    intersection = tf.reduce_sum(y_true * y_pred)
    return 1.0 - 2.0 * intersection / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred))  # BUG LL103: empty masks


def softmax_xent(labels, logits):
    probs = K.softmax(logits)
    return -K.sum(labels * K.log(probs), axis=-1)  # BUG LL102: use log_softmax


model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss=categorical_crossentropy)
