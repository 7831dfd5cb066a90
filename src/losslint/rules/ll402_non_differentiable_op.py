"""LL402 non-differentiable-op: argmax / round / comparisons / int casts on the only path from y_pred to the loss."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.dataflow import DataFlow
from losslint.rules.base import Invalid, Rule, Valid


class NonDifferentiableOp(Rule):
    code = "LL402"
    name = "non-differentiable-op"
    summary = "argmax, round, floor, sign, comparisons, int/bool casts, count_nonzero on the path from y_pred to the loss"
    what_it_does = (
        "Finds an op with no gradient (`argmax`/`argmin`, `round`, `floor`, `ceil`, `sign`, a comparison or "
        "`tf.equal`/`greater`/`torch.eq`..., a cast to an integer or boolean type, `count_nonzero`) applied to a value "
        "derived from the prediction, when the loss - or one additive term of it - depends on the prediction only "
        "through that op. A non-differentiable value that only selects or weights a differentiable term "
        "(`where(y_pred > 0.5, a, b)`, `mask * loss`, hard-example mining), `stop_gradient`, labels-only masks and "
        "metrics are not reported. It follows assignments and same-module helpers, in TensorFlow 1/2, Keras "
        "backend and `keras.ops`, PyTorch and JAX code."
    )
    why_bad = (
        "These ops have a zero or missing gradient. When the whole loss goes through one, Keras stops with "
        "\"ValueError: No gradients provided for any variable\" (and its message lists `K.argmax`, `K.round` as the "
        "usual culprits), and TensorFlow, PyTorch and JAX return None or zero gradients. When only one term of a sum "
        "goes through one, training runs but that term silently contributes nothing: the penalty it was meant to add "
        "never acts (keras-team/keras#10321, tensorflow/tensorflow#58614)."
    )
    example = """\
        def accuracy_loss(y_true, y_pred):
            hits = tf.math.count_nonzero(tf.equal(tf.round(y_pred), y_true))
            return 1.0 - tf.cast(hits, tf.float32) / tf.cast(tf.size(y_true), tf.float32)
    """
    use_instead = """\
        def soft_dice_loss(y_true, y_pred, smooth=1.0):
            inter = tf.reduce_sum(y_true * y_pred, axis=-1)         # probabilities, not thresholded masks
            union = tf.reduce_sum(y_true + y_pred, axis=-1)
            return 1.0 - (2.0 * inter + smooth) / (union + smooth)
        # report thresholded accuracy / IoU as a metric, not a loss
    """
    fix_safety = (
        "No automatic fix: a differentiable surrogate (softmax instead of argmax, sigmoid with a temperature instead "
        "of round or a threshold, soft Dice instead of thresholded IoU) changes the loss, so it is a suggestion."
    )

    def _check(self, node: cst.CSTNode) -> None:
        df = DataFlow.of(self.context.index, self.context.scopes, self.context.facts)
        finding = df.finding(node, "nondiff")
        if finding is None:
            return
        consequence = finding.consequence("the loss depends on the prediction only through it, so no gradient "
                                          "reaches the model (Keras: \"No gradients provided for any variable\")")
        self.report(node, f"{finding.culprit.what} in `{self.source_of(node, 50)}` has no gradient: {consequence}; "
                          f"use a differentiable surrogate (softmax/sigmoid instead of argmax/round/thresholds) or "
                          f"make it a metric")

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            def soft_dice_loss(y_true, y_pred, smooth=1.0):
                inter = tf.reduce_sum(y_true * y_pred, axis=-1)
                union = tf.reduce_sum(y_true + y_pred, axis=-1)
                return 1.0 - (2.0 * inter + smooth) / (union + smooth)
        """, "soft Dice on probabilities"),
        Valid("""
            import tensorflow as tf

            def masked_mse(y_true, y_pred):
                mask = tf.cast(tf.not_equal(y_true, -1.0), tf.float32)
                return tf.reduce_sum(mask * tf.square(y_true - y_pred), axis=-1) / tf.maximum(tf.reduce_sum(mask, -1), 1.0)
        """, "a mask built from labels only"),
        Valid("""
            import tensorflow as tf

            def asymmetric_loss(y_true, y_pred):
                err = y_true - y_pred
                return tf.reduce_mean(tf.where(err > 0, 2.0 * err, -err), axis=-1)
        """, "a comparison of the prediction that only selects between differentiable branches"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def ohem_loss(logits, target, keep=0.7):
                losses = F.cross_entropy(logits, target, reduction="none")
                hard = (losses > losses.median()).float()
                return (losses * hard).sum() / hard.sum().clamp(min=1)
        """, "hard-example mining: a threshold on the loss weights differentiable terms"),
        Valid("""
            import torch

            def focal_loss(logits, target, gamma=2.0):
                p = torch.sigmoid(logits)
                correct = (p.round() == target).float()
                weight = (1 - p).pow(gamma) * (1 - correct) + correct
                return (weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")).mean()
        """, "a rounded prediction used as a weight of a differentiable term"),
        Valid("""
            import tensorflow as tf

            def ste_round_loss(y_true, y_pred):
                y_hard = y_pred + tf.stop_gradient(tf.round(y_pred) - y_pred)
                return tf.reduce_mean(tf.square(y_true - y_hard), axis=-1)
        """, "straight-through estimator: round inside stop_gradient"),
        Valid("""
            import tensorflow as tf

            def accuracy(y_true, y_pred):
                return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y_true, -1), tf.argmax(y_pred, -1)), tf.float32))

            model.compile(loss="categorical_crossentropy", metrics=[accuracy])
        """, "a metric, not a loss"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def train(model, loader, optimizer):
                for x, y in loader:
                    out = model(x)
                    loss = F.cross_entropy(out, y)
                    acc = (out.argmax(dim=1) == y).float().mean()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        """, "argmax for an accuracy that never reaches backward()"),
        Valid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, labels):
                logits = x @ params["w"]
                onehot = jax.nn.one_hot(labels, logits.shape[-1])
                pred_class = jnp.argmax(jax.lax.stop_gradient(logits), -1)
                return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), -1))

            grads = jax.grad(loss_fn)(params, x, labels)
        """, "argmax of a stopped value that is not returned"),
        Valid("""
            import torch

            def lovasz_hinge_flat(logits, labels):
                signs = 2.0 * labels.float() - 1.0
                errors = 1.0 - logits * signs
                errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
                gt_sorted = labels[perm]
                grad = 1.0 - gt_sorted.cumsum(0) / (gt_sorted.sum() + (1 - gt_sorted).cumsum(0))
                return torch.dot(torch.relu(errors_sorted), grad)
        """, "sorting indices select labels; the errors keep the gradient (smp, kornia)"),
        Valid("""
            import torch

            def _robust_loss(r2, loss, scale2):
                if loss == "cauchy":
                    return 1.0 / (1.0 + r2 / scale2), torch.log1p(r2 / scale2)
                return (r2 < scale2).to(r2.dtype), torch.fmin(r2, torch.as_tensor(scale2, dtype=r2.dtype))
        """, "returns (IRLS weights, costs), not (loss, aux): the costs keep the gradient (kornia 0.9)"),
        Valid("""
            import torch

            def _use_fused_loss(pred):
                return pred.device.type == "cpu" and torch.autograd.forward_ad.unpack_dual(pred).tangent is None
        """, "a predicate that decides a code path, not a loss (kornia 0.9)"),
        Valid("""
            import torch

            def convert_to_triplets(indices_tuple, labels, ref_labels=None):
                if ref_labels is None:
                    ref_labels = labels
                matches = (labels.unsqueeze(1) == ref_labels.unsqueeze(0)).byte()
                return torch.where(matches.unsqueeze(2) * (matches ^ 1).unsqueeze(1))
        """, "label comparisons in a loss-named helper; `ref_labels=None` is a label (pytorch-metric-learning 2.9)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def accuracy_loss(y_true, y_pred):
                hits = tf.math.count_nonzero(tf.equal(tf.round(y_pred), y_true))
                return 1.0 - tf.cast(hits, tf.float32) / tf.cast(tf.size(y_true), tf.float32)
        """, "LL402", 4, "round -> equal -> count_nonzero (tensorflow/tensorflow#58614): reported once, at the round"),
        Invalid("""
            from keras import backend as K

            def class_loss(y_true, y_pred):
                return K.mean(K.cast(K.not_equal(K.argmax(y_true), K.argmax(y_pred)), "float32"))

            model.compile(optimizer="adam", loss=class_loss)
        """, "LL402", 4, "Keras backend argmax (keras-team/keras#10321)"),
        Invalid("""
            import tensorflow as tf

            def iou_loss(y_true, y_pred):
                y_bin = tf.cast(y_pred > 0.5, tf.float32)
                inter = tf.reduce_sum(y_true * y_bin)
                return 1.0 - inter / (tf.reduce_sum(y_true) + tf.reduce_sum(y_bin) - inter + 1.0)
        """, "LL402", 4, "a thresholded mask of the prediction"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            class CountPenaltyLoss(torch.nn.Module):
                def forward(self, logits, target):
                    ce = F.cross_entropy(logits, target)
                    wrong = (logits.argmax(dim=1) != target).float().sum()
                    return ce + 0.1 * wrong
        """, "LL402", 7, "a penalty term that contributes no gradient"),
        Invalid("""
            import jax
            import jax.numpy as jnp

            def loss_fn(params, x, y):
                pred = x @ params["w"]
                return jnp.mean((jnp.round(pred) - y) ** 2)

            grads = jax.grad(loss_fn)(params, x, y)
        """, "LL402", 6, "jnp.round in a jax.grad target"),
        Invalid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 784])
            y_ = tf.placeholder(tf.int64, [None])
            W = tf.Variable(tf.zeros([784, 10]))
            logits = tf.matmul(x, W)
            errors = tf.cast(tf.not_equal(tf.argmax(logits, 1), y_), tf.float32)
            train_step = tf.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_mean(errors))
        """, "LL402", 7, "TF1: argmax of the logits reaches minimize()"),
        Invalid("""
            import keras
            from keras import ops

            class HammingLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    return ops.mean(ops.cast(ops.sign(y_pred) != y_true, "float32"), axis=-1)
        """, "LL402", 6, "keras.ops.sign in a Loss.call"),
        Invalid("""
            import torch

            def hard_dice_loss(pred, target):
                mask = (pred > 0.5).float()
                inter = (mask * target).sum()
                return 1 - 2 * inter / (mask.sum() + target.sum() + 1e-6)
        """, "LL402", 4, "PyTorch: a thresholded prediction"),
    ]
