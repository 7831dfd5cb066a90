"""LL201's documented claims, checked with a real (tiny) Keras model.

The docs say: a compiled loss that returns `reduce_sum` over the batch reports a loss that grows with the batch size
(batch_size=b gives b times the per-sample mean); a loss that returns one scalar per batch (`reduce_mean` with no
axis) gives the same number as the per-sample form when no sample weights are used, but with `sample_weight` Keras
can only scale that scalar by mean(sample_weight) instead of weighting each sample. These numbers are asserted here.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.tensorflow

tf = pytest.importorskip("tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")


def per_sample(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)


def summed(y_true, y_pred):
    return tf.reduce_sum(tf.square(y_true - y_pred))


def meaned(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))


def _model(loss):
    # A zero-initialised linear model predicts 0: the per-sample losses are exactly y**2.
    m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    m.compile(optimizer="sgd", loss=loss)
    return m


X = np.ones((8, 1), "float32")
Y = np.arange(1, 9, dtype="float32").reshape(8, 1)  # per-sample losses 1, 4, ..., 64; their mean is 25.5
MEAN = float(np.mean(Y[:, 0] ** 2))


def test_reduce_sum_loss_scales_with_batch_size():
    ref = _model(per_sample)
    bad = _model(summed)
    for b in (2, 4, 8):
        assert ref.evaluate(X, Y, batch_size=b, verbose=0) == pytest.approx(MEAN)
        # the reported loss is batch_size times the per-sample mean
        assert bad.evaluate(X, Y, batch_size=b, verbose=0) == pytest.approx(b * MEAN)


def test_scalar_loss_defeats_sample_weight():
    ref = _model(per_sample)
    bad = _model(meaned)
    # without sample weights the batch mean is the same number as the per-sample form (so LL201 stays silent on it)
    assert bad.evaluate(X, Y, batch_size=8, verbose=0) == pytest.approx(ref.evaluate(X, Y, batch_size=8, verbose=0))
    w = np.zeros(8, "float32")
    w[0] = 1.0  # weight only the first sample (loss 1)
    weighted_ref = ref.evaluate(X, Y, batch_size=8, sample_weight=w, verbose=0)
    weighted_bad = bad.evaluate(X, Y, batch_size=8, sample_weight=w, verbose=0)
    # per-sample return: sum(w * loss) / batch_size = 1 / 8
    assert weighted_ref == pytest.approx(1.0 / 8)
    # scalar return: Keras can only scale the batch mean by mean(w); the weighted sample no longer matters
    assert weighted_bad == pytest.approx(MEAN * float(np.mean(w)))
    assert weighted_bad == pytest.approx(25.5 / 8)


# ---- LL303: what a traced Keras loss may not assume -----------------------------------------------------------------

def _fit_error(loss):
    # 10 samples in batches of 4: the last batch has 2, so Keras traces the step with an unknown batch dimension
    m = _model(loss)
    x = np.ones((10, 1), "float32")
    try:
        m.fit(x, x, batch_size=4, epochs=1, verbose=0)
    except Exception as err:  # noqa: BLE001 - the type differs between Keras versions; the point is that it raises
        return err
    return None


def test_shape0_len_and_python_if_fail_in_a_compiled_loss():
    def shape_loss(y_true, y_pred):
        n = y_pred.shape[0]
        return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) / n

    def len_loss(y_true, y_pred):
        n = len(y_true)
        return tf.reduce_sum(tf.square(y_true - y_pred), axis=-1) / n

    def if_loss(y_true, y_pred):
        if tf.reduce_sum(y_true) > 0:
            return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)
        return tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)

    assert _fit_error(shape_loss) is not None
    assert _fit_error(len_loss) is not None
    err = _fit_error(if_loss)
    assert err is not None and "bool" in str(err)
    assert _fit_error(per_sample) is None
    # when every batch has the same size, Keras may trace with the concrete batch size and shape[0] works: the
    # failure waits for the first dataset whose size is not a multiple of the batch size
    m = _model(shape_loss)
    m.fit(X, Y, batch_size=4, epochs=1, verbose=0)


def test_hard_coded_batch_size_is_wrong_on_other_batch_sizes():
    batch = 4

    def const_loss(y_true, y_pred):
        return tf.reduce_sum(tf.square(y_true - y_pred)) / batch

    m = _model(const_loss)
    assert m.evaluate(X, Y, batch_size=4, verbose=0) == pytest.approx(MEAN)
    # with batch_size=8 every batch holds 8 samples but is divided by 4: twice the per-sample mean
    assert m.evaluate(X, Y, batch_size=8, verbose=0) == pytest.approx(2 * MEAN)
