"""LL403 print-in-traced-loss: Python `print` of a tensor inside a tf.function or a Keras loss (runs once, at trace)."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.dataflow import DataFlow
from losslint.analysis.names import dotted_name
from losslint.analysis.scopes import Scope
from losslint.analysis.spelling import tf_alias
from losslint.analysis.walk import walk
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid


class PrintInTracedLoss(Rule):
    code = "LL403"
    name = "print-in-traced-loss"
    summary = "Python print of a tensor inside a tf.function / Keras loss (runs once at trace)"
    what_it_does = (
        "Finds Python `print(...)` of a tensor value inside a function that TensorFlow traces: one decorated with "
        "`@tf.function` (or wrapped by `tf.function(f)`), a loss function passed to Keras `compile()`, or the `call` "
        "of a Keras `Loss` subclass, and functions nested in those. Prints of constant text and of static shapes or "
        "dtypes, eager code (`run_eagerly=True`, `tf.config.run_functions_eagerly(True)`) and PyTorch are not "
        "reported."
    )
    why_bad = (
        "Python side effects run while TensorFlow traces the function into a graph, usually once, not at every step. "
        "The print shows a symbolic tensor (`Tensor(\"sub:0\", shape=(None, 1), dtype=float32)`) instead of values, "
        "and then never prints again, which looks like the loss is not being called or the values are missing."
    )
    example = """\
        def custom_loss(y_true, y_pred):
            err = y_true - y_pred
            print("error:", err)
            return tf.reduce_mean(tf.square(err), axis=-1)
    """
    use_instead = """\
        def custom_loss(y_true, y_pred):
            err = y_true - y_pred
            tf.print("error:", err)                    # runs at every step, prints values
            return tf.reduce_mean(tf.square(err), axis=-1)
    """
    fix_safety = (
        "`print(...)` becomes `tf.print(...)` with the file's own TensorFlow name, the arguments unchanged. It prints "
        "the same arguments (their values) at every step instead of a symbolic tensor once, and changes no value of "
        "the loss. `sep=` and `end=` mean the same for tf.print, and `file=sys.stderr` / `sys.stdout` becomes "
        "`output_stream=`. XLA has no kernel for tf.print (compiling it fails with `No registered 'StringFormat' "
        "OpKernel`), so the fix is safe inside a plain `tf.function` and unsafe in a Keras-traced loss (`compile()`, "
        "`Loss.call`): Keras 3 compiles the train step with XLA by default (`jit_compile=\"auto\"`) on a GPU. No fix "
        "is offered when the module passes `jit_compile=` (other than False) anywhere, when the file does not import "
        "TensorFlow (Keras 3 has no print op), inside a training step that records a GradientTape (no loss to "
        "isolate, so the rewrite cannot be confirmed), when print gets `flush=` or a `file=` other than sys.stdout / "
        "sys.stderr, or when a tensor is formatted into a string (an f-string, `%`, `.format`, `str()`): that string "
        "is built once, at trace time, and tf.print would keep printing the symbolic tensor."
    )
    frameworks = ("tensorflow", "keras")
    # A tf.function is often a training step, not a loss scope: the rule looks at every function itself.
    scoped = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Name) and func.value == "print"):
            return
        index = self.context.index
        if index.imports.is_module_alias("print") or "print" in index.module_functions:
            return
        stmt = self.stmt
        if stmt is None or stmt.func is None:
            return
        df = DataFlow.of(index, self.context.scopes, self.context.facts)
        why = df.traced(stmt.func)
        if why is None or df.is_torch(stmt):
            return
        if not any(_is_tensor(df.dep(a.value, stmt)) for a in node.args if a.keyword is None):
            return
        message = (f"print() inside {why} runs once, while TensorFlow traces it: it shows a symbolic tensor, not "
                   f"the values at each step; use tf.print")
        fix = self._fix(node, why) if not _training_step(stmt.func.node) else None
        f = stmt.func
        self.report(node, message, fix, fallback_scope=Scope("traced", f"`{f.qualname}` (traced by tf.function)", f))

    def _fix(self, node: cst.Call, why: str) -> FixSpec | None:
        # tf.print takes the same positional arguments, sep and end, and output_stream for sys.stdout / sys.stderr;
        # it only prints, so the loss is unchanged. But XLA has no kernel for it: under jit_compile it fails.
        tf = tf_alias(self.context.index)
        if tf is None or self._jit_compiled():
            return None
        new_args = []
        for a in node.args:
            if _formats_a_string(a.value):
                return None
            if a.keyword is None or a.keyword.value in ("sep", "end"):
                new_args.append(a)
            elif a.keyword.value == "file" and dotted_name(a.value) in ("sys.stdout", "sys.stderr") \
                    and self.context.index.imports.bindings.get("sys") == "sys":
                new_args.append(a.with_changes(keyword=cst.Name("output_stream")))
            else:
                return None
        new = node.with_changes(func=cst.parse_expression(f"{tf}.print"), args=new_args)
        # A Keras-traced loss may be XLA-compiled without the code saying so (Keras 3 `jit_compile="auto"` on a GPU).
        applicability = "unsafe" if why.startswith("a Keras") else "safe"
        return FixSpec("use tf.print (prints at every step)", applicability, (Replacement(node, new),))

    def _jit_compiled(self) -> bool:
        """Does the module ask for XLA anywhere (`jit_compile=` not False, on tf.function or compile)?"""
        found = False

        def enter(n: cst.CSTNode) -> None:
            nonlocal found
            if isinstance(n, cst.Arg) and n.keyword is not None and n.keyword.value == "jit_compile" \
                    and not (isinstance(n.value, cst.Name) and n.value.value == "False"):
                found = True

        walk(self.context.module, enter)
        return found

    VALID = [
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                err = y_true - y_pred
                tf.print("error:", err)
                return tf.reduce_mean(tf.square(err), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "tf.print"),
        Valid("""
            import tensorflow as tf

            @tf.function
            def train_step(x, y):
                print("tracing train_step")
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x))
                return loss
        """, "a constant message: deliberate trace-time logging"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                print("y_pred shape:", y_pred.shape)
                return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "a static shape is known at trace time"),
        Valid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                err = y_true - y_pred
                print("error:", err)
                return tf.reduce_mean(tf.square(err), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss, run_eagerly=True)
        """, "run_eagerly=True: the loss runs eagerly"),
        Valid("""
            import torch

            class DebugLoss(torch.nn.Module):
                def forward(self, pred, target):
                    err = pred - target
                    print("error", err.abs().max())
                    return (err ** 2).mean()
        """, "PyTorch is eager"),
        Valid("""
            import tensorflow as tf

            def train(model, dataset, optimizer):
                for x, y in dataset:
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(y - model(x)))
                    print("loss", loss)
                    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                                  model.trainable_variables))
        """, "an eager custom loop"),
        Valid("""
            import tensorflow as tf

            def make_loss(weight):
                def loss(y_true, y_pred):
                    print("building the loss with weight", weight)
                    return weight * tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)
                return loss

            model.compile(optimizer="adam", loss=make_loss(0.5))
        """, "a Python hyper-parameter from the factory is a constant, known at trace time"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                err = y_true - y_pred
                print("error:", err)
                return tf.reduce_mean(tf.square(err), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss)
        """, "LL403", 5, "a compiled Keras loss", fixed="""
            import tensorflow as tf

            def custom_loss(y_true, y_pred):
                err = y_true - y_pred
                tf.print("error:", err)
                return tf.reduce_mean(tf.square(err), axis=-1)

            model.compile(optimizer="adam", loss=custom_loss)
        """),
        Invalid("""
            import tensorflow as tf

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x, training=True)))
                    print("loss:", loss)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "LL403", 7, "a @tf.function training step (GradientTape): no fix, it cannot be confirmed"),
        Invalid("""
            import keras
            from keras import ops

            class WeightedMSE(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    loss = ops.mean(ops.square(y_true - y_pred), axis=-1)
                    print(f"batch loss {loss}")
                    return loss
        """, "LL403", 7, "an f-string in a Keras 3 Loss.call"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def dice_loss(y_true, y_pred):
                inter = K.sum(y_true * y_pred)
                print("intersection", inter)
                return 1 - (2 * inter + 1) / (K.sum(y_true) + K.sum(y_pred) + 1)

            model.compile(optimizer="adam", loss=dice_loss)
        """, "LL403", 6, "Keras 2 backend loss", fixed="""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            def dice_loss(y_true, y_pred):
                inter = K.sum(y_true * y_pred)
                tf.print("intersection", inter)
                return 1 - (2 * inter + 1) / (K.sum(y_true) + K.sum(y_pred) + 1)

            model.compile(optimizer="adam", loss=dice_loss)
        """),
        Invalid("""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                print("pred:", y_pred)
                return tf.reduce_mean(tf.keras.losses.mse(y_true, y_pred))

            train_step = tf.function(loss_fn)
        """, "LL403", 4, "wrapped by tf.function(f)", fixed="""
            import tensorflow as tf

            def loss_fn(y_true, y_pred):
                tf.print("pred:", y_pred)
                return tf.reduce_mean(tf.keras.losses.mse(y_true, y_pred))

            train_step = tf.function(loss_fn)
        """),
        Invalid("""
            import tensorflow as tf

            @tf.function(jit_compile=True)
            def compute_loss(labels, logits):
                per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                print("per-example loss", per_example)
                return tf.nn.compute_average_loss(per_example, global_batch_size=64)
        """, "LL403", 6, "@tf.function(jit_compile=True): no fix, XLA has no print kernel"),
        Invalid("""
            import sys

            import tensorflow as tf

            @tf.function
            def compute_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.square(y_true - y_pred))
                print("loss", loss, sep="=", file=sys.stderr)
                return loss
        """, "LL403", 8, "sep= kept, file=sys.stderr becomes output_stream=", fixed="""
            import sys

            import tensorflow as tf

            @tf.function
            def compute_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.square(y_true - y_pred))
                tf.print("loss", loss, sep="=", output_stream=sys.stderr)
                return loss
        """),
        Invalid("""
            import tensorflow as tf

            @tf.function
            def compute_loss(y_true, y_pred):
                loss = tf.reduce_mean(tf.square(y_true - y_pred))
                print("loss = %s" % loss)
                return loss
        """, "LL403", 6, "a tensor formatted into a string at trace time: tf.print would print that string, no fix"),
    ]


def _training_step(func: cst.CSTNode) -> bool:
    """A function that records gradients itself (a GradientTape): a training step, not a loss. The confirmation
    harness cannot isolate a loss in it, so a fix there could never be confirmed (and applied)."""
    found = False

    def enter(n: cst.CSTNode) -> None:
        nonlocal found
        if isinstance(n, cst.Name) and n.value == "GradientTape":
            found = True

    walk(func, enter)
    return found


def _formats_a_string(expr: cst.BaseExpression) -> bool:
    """Does the argument build a string out of values (f-string, `%`, `+` with a string, `.format`, str/repr)?"""
    found = False

    def enter(n: cst.CSTNode) -> None:
        nonlocal found
        if isinstance(n, cst.FormattedString):
            found = True
        elif isinstance(n, cst.BinaryOperation) and isinstance(n.operator, (cst.Modulo, cst.Add)) and any(
                isinstance(side, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))
                for side in (n.left, n.right)):
            found = True
        elif isinstance(n, cst.Call):
            name = dotted_name(n.func) or ""
            if name in ("str", "repr", "format") or name.endswith(".format") or (
                    isinstance(n.func, cst.Attribute) and n.func.attr.value == "format"):
                found = True

    walk(expr, enter)
    return found


def _is_tensor(dep) -> bool:  # type: ignore[no-untyped-def]
    """A value the trace only knows symbolically (not a constant, a shape or a dtype)."""
    return dep.tensor or dep.grad
