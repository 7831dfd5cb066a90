"""Real TensorFlow/Keras evidence for the claims of LL301, LL603 and LL604's docs (rank broadcasting, what compile's
loss wrapper squeezes, the clipped gradient of a probability BCE on a saturated sigmoid, double activation)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def tf():  # noqa: ANN201
    return pytest.importorskip("tensorflow")


def test_rank_1_against_rank_2_broadcasts_to_all_pairs(tf) -> None:  # noqa: ANN001
    import keras

    y = tf.constant([1.0, 2.0, 3.0, 4.0])  # (B,)
    p = tf.reshape(y, [-1, 1])  # (B, 1): perfect predictions
    assert (y - p).shape == (4, 4)
    direct = float(tf.reduce_mean(tf.square(y - p)))
    assert direct == pytest.approx(2.5)  # all pairs, not 0

    def mse(y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

    # compile wraps a loss function in LossFunctionWrapper, which squeezes/expands a rank difference of one first
    from keras.src.losses.losses import LossFunctionWrapper

    wrapped = LossFunctionWrapper(mse)
    assert float(wrapped(y, p)) == pytest.approx(0.0)
    # (B,) against (B, C) with B != C fails loudly
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        _ = tf.constant([1.0, 2.0, 3.0]) - tf.zeros([3, 10])


def test_probability_bce_on_a_saturated_sigmoid_loses_the_gradient_in_eager_mode(tf) -> None:  # noqa: ANN001
    import keras

    z = tf.Variable([[-30.0]])  # confidently wrong for label 1
    y = tf.constant([[1.0]])
    with tf.GradientTape(persistent=True) as tape:
        unfused = keras.losses.binary_crossentropy(y, tf.sigmoid(z))
        fused = keras.losses.binary_crossentropy(y, z, from_logits=True)
    g_unfused = float(tf.reshape(tape.gradient(unfused, z), [-1])[0])
    g_fused = float(tf.reshape(tape.gradient(fused, z), [-1])[0])
    assert g_unfused == 0.0  # clipped at 1e-7: no gradient at all
    assert g_fused == pytest.approx(-1.0, abs=1e-3)
    assert float(unfused[0]) == pytest.approx(16.118, abs=1e-2)  # capped at -log(1e-7)
    assert float(fused[0]) == pytest.approx(30.0, abs=1e-3)

    @tf.function
    def traced(z):  # noqa: ANN001, ANN202
        with tf.GradientTape() as t:
            t.watch(z)
            loss = keras.losses.binary_crossentropy(y, tf.sigmoid(z))
        return t.gradient(loss, z)

    # traced, Keras sees the Sigmoid op and switches to the fused loss: why LL603 is silent in graph mode
    assert float(tf.reshape(traced(tf.constant([[-30.0]])), [-1])[0]) == pytest.approx(-1.0, abs=1e-3)


def test_activation_before_with_logits_applies_it_twice(tf) -> None:  # noqa: ANN001
    z = tf.constant([50.0])
    y = tf.constant([1.0])
    right = float(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)[0])
    twice = float(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=tf.sigmoid(z))[0])
    assert right < 1e-6
    assert twice == pytest.approx(0.3133, abs=1e-3)  # -log(sigmoid(1)): the loss can never approach 0
    logits = tf.constant([[20.0, 0.0, 0.0]])
    onehot = tf.constant([[1.0, 0.0, 0.0]])
    ce_twice = float(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=tf.nn.softmax(logits))[0])
    assert ce_twice > 0.5  # softmax of probabilities stays within a factor e of uniform
