"""LL202 distributed-loss-scaling: a custom training step run by a `tf.distribute` strategy that averages the loss over
the per-replica batch instead of the global batch."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import arg, positional
from losslint.analysis.index import FuncInfo, StmtInfo, function_named
from losslint.analysis.model_flow import model_flow, strategy_like
from losslint.analysis.reductions import reductions_of
from losslint.analysis.scopes import Scope
from losslint.rules.base import Invalid, Rule, Valid

_RUN_METHODS = ("run", "experimental_run_v2", "experimental_run")


class DistributedLossScaling(Rule):
    code = "LL202"
    name = "distributed-loss-scaling"
    summary = "custom loop under tf.distribute that averages the per-replica batch instead of the global batch"
    what_it_does = (
        "In a module that builds a `tf.distribute` strategy (`MirroredStrategy`, `MultiWorkerMirroredStrategy`, "
        "`TPUStrategy`, ...), follows the step functions given to `strategy.run(...)` (or `experimental_run_v2`) to "
        "the value their `GradientTape` differentiates, and reports a `reduce_mean` / `K.mean` / `ops.mean` over the "
        "batch on the way (a mean of the per-example losses, or of a loss object's output). A loss made with "
        "`tf.nn.compute_average_loss(per_example, global_batch_size=...)`, or a sum divided by the global batch "
        "size, or divided by `strategy.num_replicas_in_sync`, is not reported. The strategies are model_flow's: a "
        "`.run` counts when its receiver is a strategy the module builds (or `get_strategy()`, or a strategy held "
        "under a name that says so, such as `self.strategy`), and a module whose only strategy is a "
        "`OneDeviceStrategy` or a one-device `MirroredStrategy(devices=[...])` is not reported (one replica: its "
        "batch is the global batch). PyTorch DDP is not reported: DDP averages gradients across processes, so the "
        "per-process mean is the right loss there."
    )
    why_bad = (
        "Under `strategy.run` every replica computes its loss on its own slice of the global batch, and when the "
        "optimizer applies the gradients the replicas' gradients are summed (all-reduce SUM). A per-replica mean "
        "therefore gives gradients num_replicas times the global-batch mean: with 8 GPUs the model trains with 8x "
        "the learning rate, and results change with the number of devices (tensorflow/tensorflow#28956, #45923)."
    )
    example = """\
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_object(y, model(x)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        strategy.run(train_step, args=(x, y))
    """
    use_instead = """\
        loss_object = tf.keras.losses.SparseCategoricalCrossentropy(reduction="none")

        def train_step(x, y):
            with tf.GradientTape() as tape:
                per_example = loss_object(y, model(x))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH_SIZE)
            ...
    """
    fix_safety = "No automatic fix yet: the fix needs the global batch size, which only the author knows."
    frameworks = ("tensorflow", "keras")
    scoped = False

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._findings: dict[int, tuple[str, Scope]] | None = None

    def _has_strategy(self) -> bool:
        """The module builds a strategy with several replicas (model_flow's strategies; `OneDeviceStrategy` and a
        one-device `MirroredStrategy` run one replica, whose batch is the global batch)."""
        return any(s.replicas == "many" for s in model_flow(self.context.index).strategies)

    def _runs_on_replicas(self, receiver: cst.BaseExpression, stmt: StmtInfo) -> bool:
        """Is `receiver.run(...)` a strategy's run: a name bound to a strategy the module builds (not a one-replica
        one), `get_strategy()`, or a strategy it does not build whose name says so (`self.strategy`, a parameter)?"""
        found = model_flow(self.context.index).strategies_of(receiver, stmt)
        if found:
            return any(s.replicas != "one" for s in found)
        return self.context.index.qualify(receiver) is None and strategy_like(self.source_of(receiver, 60))

    def _step_functions(self) -> list[FuncInfo]:
        index = self.context.index
        out: list[FuncInfo] = []
        for call, stmt in index.all_calls:
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value in _RUN_METHODS):
                continue
            if (index.qualify(func) or "").startswith(("torch", "jax")):
                continue
            if not self._runs_on_replicas(func.value, stmt):
                continue
            target = arg(call, "fn", 0)
            if target is None:
                continue
            f = function_named(index, target, stmt)
            if f is not None and f not in out:
                out.append(f)
        return out

    def _compute(self) -> dict[int, tuple[str, Scope]]:
        out: dict[int, tuple[str, Scope]] = {}
        if not self._has_strategy():
            return out
        index = self.context.index
        for step in self._step_functions():
            code = self.context.code_for(step.node)
            if "num_replicas_in_sync" in code or "compute_average_loss" in code:
                continue
            for call, stmt in step.calls:
                if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "gradient"):
                    continue
                target = arg(call, "target", 0)
                if target is None or not positional(call):
                    continue
                for red in reductions_of(index, target, stmt):
                    if red.op.name != "mean":
                        continue
                    self._add(out, red.call, red.stmt, step)
        return out

    def _add(self, out: dict[int, tuple[str, Scope]], node: cst.Call, stmt: StmtInfo, step: FuncInfo) -> None:
        msg = (f"`{self.source_of(node.func, 30)}` averages the loss over this replica's batch only, and "
               f"`{step.name}` runs on every replica of the strategy, whose gradients are summed when applied: the "
               f"update is num_replicas times the global-batch mean (with 8 GPUs, 8x the learning rate); use "
               f"tf.nn.compute_average_loss(per_example_loss, global_batch_size=GLOBAL_BATCH_SIZE)")
        out[id(node)] = (msg, Scope("gradient-tape", f"step function `{step.qualname}` (run by strategy.run)"))

    def visit_Call(self, node: cst.Call) -> None:
        if self._findings is None:
            self._findings = self._compute()
        found = self._findings.get(id(node))
        if found is None:
            return
        msg, scope = found
        self.report(node, msg, fallback_scope=scope)

    VALID = [
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            GLOBAL_BATCH_SIZE = 64 * strategy.num_replicas_in_sync
            with strategy.scope():
                loss_object = tf.keras.losses.SparseCategoricalCrossentropy(reduction="none")

            def train_step(inputs):
                images, labels = inputs
                with tf.GradientTape() as tape:
                    per_example = loss_object(labels, model(images, training=True))
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH_SIZE)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss

            strategy.run(train_step, args=(batch,))
        """, "the TensorFlow tutorial recipe"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            GLOBAL_BATCH_SIZE = 256

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    per_example = tf.square(y - model(x))
                    loss = tf.reduce_sum(per_example) / GLOBAL_BATCH_SIZE
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "a sum divided by the global batch size"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x))) / strategy.num_replicas_in_sync
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "the per-replica mean divided by the number of replicas"),
        Valid("""
            import tensorflow as tf

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            for x, y in dataset:
                train_step(x, y)
        """, "no distribution strategy: a mean over the batch is right"),
        Valid("""
            import torch
            import torch.nn.functional as F
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(net, device_ids=[rank])
            for x, y in loader:
                loss = F.mse_loss(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """, "DDP averages gradients across processes: the per-process mean is right"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            with strategy.scope():
                model = build_model()
                model.compile(optimizer="adam", loss="mse")
            model.fit(dataset, epochs=5)
        """, "compile/fit: Keras scales the loss for the replicas itself"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            def eval_step(x, y):
                pred = model(x, training=False)
                acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, -1), y), tf.float32))
                return acc

            strategy.run(eval_step, args=(x, y))
        """, "an evaluation step: no gradients are applied"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.OneDeviceStrategy("/gpu:0")
            with strategy.scope():
                model = build_model()
                optimizer = tf.keras.optimizers.Adam()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "OneDeviceStrategy runs one replica: its batch is the global batch"),
        Valid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
            with strategy.scope():
                model = build_model()
                model.compile(optimizer="adam", loss="mse")
            model.fit(dataset, epochs=5)

            def finetune_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            runner = StepTimer(warmup=10)
            runner.run(finetune_step, args=(x, y))
        """, "a `.run` that is not the strategy's: the step runs once, on the whole batch"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(loss_object(y, model(x)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "LL202", 7, "a per-replica mean of a loss object's output"),
        Invalid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            @tf.function
            def distributed_step(inputs):
                def step_fn(inputs):
                    images, labels = inputs
                    with tf.GradientTape() as tape:
                        logits = model(images, training=True)
                        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                        loss = tf.reduce_mean(xent)
                    grads = tape.gradient(loss, model.trainable_variables)
                    optimizer.apply_gradients(zip(grads, model.trainable_variables))
                    return loss
                per_replica = strategy.run(step_fn, args=(inputs,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        """, "LL202", 12, "nested step function, tuple-unpacked inputs"),
        Invalid("""
            import tensorflow as tf

            strategy = tf.distribute.TPUStrategy(resolver)

            def compute_loss(labels, predictions):
                return tf.reduce_mean(tf.keras.losses.mean_squared_error(labels, predictions))

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = compute_loss(y, model(x))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "LL202", 6, "the mean in a helper, TPUStrategy"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import backend as K

            strategy = tf.distribute.MultiWorkerMirroredStrategy()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = K.mean(K.binary_crossentropy(y, model(x)))
                grads = tape.gradient(loss, model.trainable_weights)
                optimizer.apply_gradients(zip(grads, model.trainable_weights))

            strategy.run(train_step, args=(x, y))
        """, "LL202", 8, "Keras backend K.mean, multi-worker"),
        Invalid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    pred = model(x)
                    loss = tf.reduce_mean(tf.square(y - pred)) + 0.01 * tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.experimental_run_v2(train_step, args=(x, y))
        """, "LL202", 8, "TF 2.0 experimental_run_v2, with a regulariser term"),
        Invalid("""
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    per_example = tf.keras.losses.categorical_crossentropy(y, model(x), from_logits=True)
                    loss = tf.math.reduce_mean(per_example)
                tape_grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(tape_grads, model.trainable_variables))

            for x, y in dist_dataset:
                strategy.run(train_step, args=(x, y))
        """, "LL202", 8, "tf.math.reduce_mean of the per-example losses"),
        Invalid("""
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            if len(gpus) > 1:
                strategy = tf.distribute.MirroredStrategy()
            else:
                strategy = tf.distribute.OneDeviceStrategy("/gpu:0")

            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(train_step, args=(x, y))
        """, "LL202", 11, "one device or several: with several GPUs the update is multiplied"),
        Invalid("""
            import tensorflow as tf

            class Trainer:
                def __init__(self, strategy, model, optimizer):
                    self.strategy = strategy
                    self.model = model
                    self.optimizer = optimizer

                def train_step(self, x, y):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(y - self.model(x, training=True)))
                    grads = tape.gradient(loss, self.model.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))

                def fit(self, dataset):
                    for x, y in dataset:
                        self.strategy.run(self.train_step, args=(x, y))

            trainer = Trainer(tf.distribute.MirroredStrategy(), build_model(), tf.keras.optimizers.Adam())
        """, "LL202", 11, "the strategy held on self, built at module level"),
    ]
