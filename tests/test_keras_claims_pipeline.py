"""Real TensorFlow/Keras checks of what the LL202, LL302, LL304 and LL601 pages claim, so the docs state facts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tensorflow


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")  # Keras warns about the very bug shown here
def test_ll304_single_unit_softmax_is_always_one_and_has_no_gradient():
    layer = tf.keras.layers.Dense(1, activation="softmax")
    x = tf.random.normal((16, 4), seed=1)
    with tf.GradientTape(persistent=True) as tape:
        out = layer(x)
        mse = tf.reduce_mean(tf.square(out - 0.3))
        bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(tf.zeros((16, 1)), out))
    assert np.all(out.numpy() == 1.0)
    assert all(np.all(g.numpy() == 0.0) for g in tape.gradient(mse, layer.trainable_variables))
    # the exception the page names: Keras' BCE reads the cached logits, so it moves while predictions stay 1.0
    assert any(np.any(g.numpy() != 0.0) for g in tape.gradient(bce, layer.trainable_variables))


def test_ll601_from_logits_false_on_logits_and_true_on_probabilities_give_other_losses():
    y = tf.constant([[0.0, 1.0, 0.0]])
    logits = tf.constant([[-2.0, 3.0, 0.5]])
    right = tf.keras.losses.CategoricalCrossentropy(from_logits=True)(y, logits).numpy()
    wrong_flag = tf.keras.losses.CategoricalCrossentropy(from_logits=False)(y, logits).numpy()
    probs = tf.nn.softmax(logits)
    twice = tf.keras.losses.CategoricalCrossentropy(from_logits=True)(y, probs).numpy()
    assert not np.isclose(wrong_flag, right, rtol=0.05) and not np.isclose(twice, right, rtol=0.05)
    # softmax applied twice cannot reach 0 even for a perfect prediction: the loss is bounded below
    perfect = tf.constant([[0.0, 1.0, 0.0]])
    assert tf.keras.losses.CategoricalCrossentropy(from_logits=True)(y, perfect).numpy() > 0.5


def test_ll302_swapped_arguments_change_an_asymmetric_loss_but_not_a_symmetric_one():
    y_true = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    y_pred = tf.constant([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    cce = tf.keras.losses.categorical_crossentropy
    assert not np.allclose(cce(y_true, y_pred).numpy(), cce(y_pred, y_true).numpy())
    mse = tf.keras.losses.MeanSquaredError()
    assert np.allclose(mse(y_true, y_pred).numpy(), mse(y_pred, y_true).numpy())
    kld = tf.keras.losses.KLDivergence()
    assert not np.allclose(kld(y_true, y_pred).numpy(), kld(y_pred, y_true).numpy())


def test_ll202_a_per_replica_mean_scales_gradients_with_the_number_of_replicas():
    # Two logical CPU devices must be configured before TensorFlow initialises: run in a fresh interpreter.
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            w = tf.Variable(1.0)
        x = tf.constant(np.arange(8, dtype=np.float32))
        ds = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(8))
        def grads(batch, average):
            def step(b):
                with tf.GradientTape() as tape:
                    per = tf.square(w * b)
                    loss = tf.nn.compute_average_loss(per, global_batch_size=8) if average else tf.reduce_mean(per)
                return tape.gradient(loss, w)
            return strategy.reduce("SUM", strategy.run(step, args=(batch,)), axis=None)
        batch = next(iter(ds))
        print(float(grads(batch, False)) / float(grads(batch, True)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(2.0)
