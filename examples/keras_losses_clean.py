"""The same losses written safely: losslint must stay silent on this file."""

import tensorflow as tf
from tensorflow.keras import backend as K


def categorical_crossentropy(y_true, y_pred):
    y_pred = tf.clip_by_value(y_pred, K.epsilon(), 1.0 - K.epsilon())
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)


def dice_loss(y_true, y_pred, smooth=1.0):
    intersection = tf.reduce_sum(y_true * y_pred)
    return 1.0 - (2.0 * intersection + smooth) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + smooth)


def softmax_xent(labels, logits):
    return -K.sum(labels * tf.nn.log_softmax(logits), axis=-1)


def log_cosh_like(y_true, y_pred):
    # log(1 + |d|) can never see 0: a seed post calls it unstable, it is not.
    return tf.reduce_mean(tf.math.log(1 + tf.abs(y_true - y_pred)))


model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss=categorical_crossentropy)
