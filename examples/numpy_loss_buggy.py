"""NumPy inside losses of a TensorFlow project. Each `# BUG LLxxx` comment marks a line losslint must report."""

import numpy as np
import tensorflow as tf


def binary_crossentropy(y_true, y_pred):
    return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))  # BUG LL101: y_pred can be 0 or 1


def kl_divergence_loss(p, q):
    return np.sum(p * np.log(p / q))  # BUG LL101, LL103: p can be 0 (log 0), q can be 0 (x / 0)


def dice_loss(y_true, y_pred):
    inter = np.sum(y_true * y_pred)
    return 1.0 - 2.0 * inter / (np.sum(y_true) + np.sum(y_pred))  # BUG LL103: both empty


def numpy_loss(y_true, y_pred):
    return tf.numpy_function(binary_crossentropy, [y_true, y_pred], tf.float32)  # BUG LL401: no gradient flows through numpy_function
