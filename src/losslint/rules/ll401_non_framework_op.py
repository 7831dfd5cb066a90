"""LL401 non-framework-op: NumPy / SciPy / math / `.numpy()` / `float(t)` / `numpy_function` on a loss's tensors."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.dataflow import DataFlow
from losslint.rules.base import Invalid, Rule, Valid

_FRAMEWORK_OP = {"tensorflow": "the tf op", "keras": "the keras.ops op", "torch": "the torch op",
                 "jax": "the jax.numpy op"}


class NonFrameworkOp(Rule):
    code = "LL401"
    name = "non-framework-op"
    summary = "numpy / scipy / math / .numpy() / float() / numpy_function on tensors inside a loss"
    what_it_does = (
        "Finds NumPy, SciPy, `math` and scikit-learn calls, `.numpy()` (TensorFlow), `float(t)` / `int(t)`, "
        "`np.array(t)` and `tf.numpy_function` / `tf.py_function` / `jax.pure_callback` applied to a value derived "
        "from a TensorFlow, Keras, PyTorch or JAX loss's tensors, when that value reaches the loss. A loss written "
        "entirely in NumPy (NumPy as the framework), NumPy on Python constants (`np.log(2.0)`, `np.finfo`, "
        "`math.pi`), static shapes, metrics and data pipelines are not reported; neither is a `tf.py_function` "
        "whose function runs TensorFlow ops."
    )
    why_bad = (
        "NumPy computes on concrete arrays, outside the framework's graph. In graph mode (`compile`/`fit`, "
        "`tf.function`, TF1) a symbolic tensor cannot be converted: \"Cannot convert a symbolic Tensor to a numpy "
        "array\"; under `jax.grad`/`jit` the same is a TracerArrayConversionError; PyTorch refuses to call numpy() on "
        "a tensor that requires grad. Where it does run (eager TensorFlow, `float(t)` in PyTorch), the value is a "
        "constant to autodiff: that part of the loss gets no gradient. `tf.numpy_function` has no gradient at all "
        "(tensorflow/tensorflow#35713)."
    )
    example = """\
        def spearman_loss(y_true, y_pred):
            ranks = tf.numpy_function(scipy.stats.rankdata, [y_pred], tf.float32)
            return 1.0 - tfp.stats.correlation(ranks, y_true)
    """
    use_instead = """\
        def log_cosh_loss(y_true, y_pred):
            d = y_pred - y_true
            return tf.reduce_mean(d + tf.math.softplus(-2.0 * d) - tf.math.log(2.0), axis=-1)   # tf ops throughout
    """
    fix_safety = (
        "No automatic fix: most NumPy calls have a same-named framework op (`np.mean` -> `tf.reduce_mean` / "
        "`torch.mean` / `jnp.mean`), but argument names and defaults differ (axis/dim, keepdims), and some (rank, "
        "sort-based statistics) need a differentiable surrogate."
    )

    def _check(self, node: cst.CSTNode) -> None:
        df = DataFlow.of(self.context.index, self.context.scopes, self.context.facts)
        finding = df.finding(node, "host")
        if finding is None:
            return
        c = finding.culprit
        stmt = self.stmt
        fws = df.frameworks(stmt.func if stmt is not None else None)
        fw = next((f for f in ("tensorflow", "keras", "torch", "jax") if f in fws), "tensorflow")
        instead = _FRAMEWORK_OP[fw]
        shown = self.source_of(node, 50)
        if c.on_label:
            self.report(node, f"{c.what} in `{shown}` converts a symbolic tensor of the loss: in graph mode "
                              f"(compile/fit, tf.function) this raises \"Cannot convert a symbolic Tensor to a numpy "
                              f"array\"; use {instead}")
        elif finding.reason == "term":
            self.report(node, f"{c.what} in `{shown}` takes a value derived from the prediction out of {fw}: this "
                              f"term of the loss is a constant to autodiff and contributes no gradient; use {instead}")
        elif "callback" in c.what or "numpy_function" in c.what or "py_func" in c.what:
            self.report(node, f"{c.what} runs the prediction through Python/NumPy: no gradient flows back through "
                              f"it, so the model gets none from this loss; write the loss with {fw} ops")
        else:
            self.report(node, f"{c.what} in `{shown}` takes a value derived from the prediction out of {fw}: no "
                              f"gradient flows back through it (in graph mode or under jax tracing it raises "
                              f"instead); use {instead}")

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import numpy as np
            import tensorflow as tf

            def binary_crossentropy(y_true, y_pred):
                y_pred = np.clip(y_pred, 1e-7, 1 - 1e-7)
                return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
        """, "a NumPy-only loss in a TensorFlow project: NumPy is the framework here"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            def log_cosh(y_true, y_pred):
                d = y_pred - y_true
                return tf.reduce_mean(d + tf.math.softplus(-2.0 * d) - np.log(2.0), axis=-1)
        """, "NumPy on a Python constant"),
        Valid("""
            import math
            import torch

            def scaled_dot_loss(q, k, target):
                logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
                return torch.nn.functional.cross_entropy(logits, target)
        """, "math on a static shape"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            CLASS_WEIGHTS = np.array([1.0, 5.0], dtype=np.float32)

            def weighted_ce(y_true, y_pred):
                w = tf.reduce_sum(y_true * CLASS_WEIGHTS, axis=-1)
                return w * tf.keras.losses.categorical_crossentropy(y_true, y_pred)
        """, "a NumPy constant built at module level"),
        Valid("""
            import numpy as np
            import torch
            import torch.nn.functional as F

            def train(model, loader, optimizer):
                for x, y in loader:
                    out = model(x)
                    loss = F.cross_entropy(out, y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    preds = np.argmax(out.detach().cpu().numpy(), axis=1)
                    acc = float(np.mean(preds == y.numpy()))
        """, "NumPy for an accuracy after backward(), not on the loss path"),
        Valid("""
            import numpy as np
            import tensorflow as tf

            def dice_loss(y_true, y_pred, smooth=1.0):
                eps = np.finfo(np.float32).eps
                inter = tf.reduce_sum(y_true * y_pred, axis=-1)
                return 1 - (2 * inter + smooth) / (tf.reduce_sum(y_true + y_pred, axis=-1) + smooth + eps)
        """, "np.finfo: a dtype query"),
        Valid("""
            import numpy as np
            import torch

            def focal_weighted_loss(logits, target, gamma=2.0):
                p = torch.sigmoid(logits)
                w = torch.from_numpy(np.power(1 - p.detach().cpu().numpy(), gamma)).to(logits.device)
                return (w * torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")).mean()
        """, "NumPy on a detached value used as a weight (deliberately no gradient)"),
        Valid("""
            import tensorflow as tf

            def tf_only(y):
                return tf.math.log1p(tf.abs(y))

            def robust_loss(y_true, y_pred):
                return tf.reduce_mean(tf.py_function(tf_only, [y_pred - y_true], tf.float32))
        """, "tf.py_function of a function that runs TensorFlow ops is differentiable"),
        Valid("""
            import numpy as np
            from keras.src import backend

            def categorical_crossentropy(target, output, from_logits=False, axis=-1):
                output = np.array(output)
                output = output / np.sum(output, axis, keepdims=True)
                output = np.clip(output, backend.epsilon(), 1.0 - backend.epsilon())
                return -np.sum(target * np.log(output), axis=axis)
        """, "Keras' NumPy backend: NumPy is the framework; backend.epsilon() is configuration (keras 3.15)"),
        Valid("""
            import numpy as np
            import torch

            def to_tensor(x, dtype=None):
                if isinstance(x, (list, tuple)):
                    x = torch.from_numpy(np.array(x))
                return x.type(dtype) if dtype is not None else x

            def weighted_dice_loss(y_pred, y_true, class_weights=(1.0, 2.0)):
                w = to_tensor(class_weights, dtype=torch.float)
                inter = (y_pred * y_true).sum(dim=(0, 2))
                return (w * (1 - 2 * inter / (y_pred.sum(dim=(0, 2)) + y_true.sum(dim=(0, 2)) + 1))).mean()
        """, "NumPy on a list of class weights (smp 0.6)"),
        Valid("""
            import functools
            import tensorflow as tf

            def contrastive_loss(y_true, y_pred, margin):
                m = float(margin)
                return tf.reduce_mean(y_true * tf.square(y_pred)
                                      + (1 - y_true) * tf.square(tf.maximum(m - y_pred, 0.0)), axis=-1)

            model.compile(optimizer="adam", loss=functools.partial(contrastive_loss, margin=1.0))
        """, "float() of a hyper-parameter bound by functools.partial"),
        Valid("""
            import torch

            def _redistribute_cost_sort_key(cost) -> float:
                if isinstance(cost, torch.SymFloat):
                    return float(cost.node.expr)
                return float(cost)
        """, "a cost-named function returning a Python float: a sort key, not a loss (torch 2.13)"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf
            import numpy as np

            def numpy_loss(y_true, y_pred):
                return tf.numpy_function(binary_crossentropy, [y_true, y_pred], tf.float32)
        """, "LL401", 5, "tf.numpy_function has no gradient"),
        Invalid("""
            import numpy as np
            import tensorflow as tf

            def mixed_loss(y_true, y_pred):
                err = tf.abs(y_true - y_pred)
                return tf.reduce_mean(err, axis=-1) + np.mean(np.square(err))

            model.compile(optimizer="adam", loss=mixed_loss)
        """, "LL401", 6, "NumPy on a symbolic tensor of a compiled Keras loss"),
        Invalid("""
            import tensorflow as tf
            import scipy.stats

            def spearman_loss(y_true, y_pred):
                ranks = tf.py_function(scipy.stats.rankdata, [y_pred], tf.float32)
                return 1.0 - tf.reduce_mean(ranks * y_true)
        """, "LL401", 5, "tf.py_function of scipy (tensorflow/tensorflow#35713)"),
        Invalid("""
            import tensorflow as tf

            def train_step(model, x, y, optimizer):
                with tf.GradientTape() as tape:
                    pred = model(x, training=True)
                    loss = tf.reduce_mean(tf.square(y - pred)) + 0.1 * pred.numpy().std()
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "LL401", 6, ".numpy() in a GradientTape: the penalty gets no gradient"),
        Invalid("""
            import jax
            import jax.numpy as jnp
            import numpy as np

            def loss_fn(params, x, y):
                pred = x @ params["w"]
                return np.mean((pred - y) ** 2)

            grads = jax.grad(loss_fn)(params, x, y)
        """, "LL401", 7, "np on a jax tracer"),
        Invalid("""
            import math
            import torch

            class LogCoshLoss(torch.nn.Module):
                def forward(self, pred, target):
                    return sum(math.log(math.cosh(float(d))) for d in (pred - target).flatten()) / pred.numel()
        """, "LL401", 6, "float() and math on each element of a PyTorch prediction"),
        Invalid("""
            from keras import backend as K
            import numpy as np

            def weighted_loss(y_true, y_pred):
                w = np.sum(y_true, axis=0)
                return K.mean(K.square(y_true - y_pred) / (w + 1.0), axis=-1)

            model.compile(optimizer="adam", loss=weighted_loss)
        """, "LL401", 5, "NumPy on y_true of a compiled loss: fails in graph mode"),
    ]
