"""NumPy losses written safely: losslint must stay silent on this file."""

import numpy as np
import tensorflow as tf

EPS = 1e-7


def binary_crossentropy(y_true, y_pred):
    y_pred = np.clip(y_pred, EPS, 1 - EPS)
    return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))


def kl_divergence_loss(p, q):
    p = np.clip(p, EPS, 1.0)
    q = np.clip(q, EPS, 1.0)
    return np.sum(p * np.log(p / q))


def dice_loss(y_true, y_pred, smooth=1.0):
    inter = np.sum(y_true * y_pred)
    return 1.0 - (2.0 * inter + smooth) / (np.sum(y_true) + np.sum(y_pred) + smooth)


def log_error_loss(y_true, y_pred):
    return np.mean(np.log1p(np.abs(y_true - y_pred)))
