"""LL801 fp16-loss-without-scaling: float16 training without loss scaling, or a loss summed in float16."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import kwarg, positional
from losslint.analysis.dtypes import FLOAT16, dtype_named, dtypes_of, reaching_values
from losslint.analysis.index import FuncInfo, StmtInfo, function_named
from losslint.analysis.names import dotted_name, names_in
from losslint.analysis.scopes import Scope, is_loss_name
from losslint.analysis.walk import walk
from losslint.analysis.model_flow import model_flow
from losslint.analysis.training_loops import (
    GradientStep,
    autocast_regions,
    backward_steps,
    gradient_steps,
    mentions_method,
)
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

# Keras 2 LossScaleOptimizer.get_scaled_loss, Keras 3 LossScaleOptimizer.scale_loss
_TF_SCALE = frozenset({"get_scaled_loss", "scale_loss"})
_TF_SCALE_ANY = _TF_SCALE | {"get_unscaled_gradients"}
_UNDERFLOW = (
    "gradients below 6e-8 flush to zero in float16 (and lose precision below 6e-5): without loss scaling small "
    "gradients vanish and training stalls"
)


def _weight_owners(gradient_call: cst.Call) -> list[str]:
    """The names whose weights `tape.gradient(loss, model.trainable_variables)` differentiates (`model`; none for
    `self.trainable_variables` or a list of variables)."""
    args = positional(gradient_call)
    sources = args[1] if len(args) > 1 else kwarg(gradient_call, "sources")
    owners: list[str] = []

    def enter(n: cst.CSTNode) -> bool:
        if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Name) and n.value.value != "self" \
                and n.attr.value in ("trainable_variables", "trainable_weights", "weights", "variables"):
            owners.append(n.value.value)
        return True

    if sources is not None:
        walk(sources, enter)
    return owners


class Fp16LossWithoutScaling(ModuleFindingsRule):
    code = "LL801"
    name = "fp16-loss-without-scaling"
    summary = "float16 mixed precision in a hand-written training loop with no loss scaling, or a loss summed in float16"
    scoped = False
    frameworks = ("tensorflow", "keras", "torch")
    what_it_does = (
        "Finds hand-written training steps that run in float16 without loss scaling: under a `mixed_float16` policy "
        "(`keras.mixed_precision.set_global_policy`, `Policy('mixed_float16')`), a `tape.gradient(loss, "
        "model.trainable_variables)` whose `loss` did not go through `optimizer.get_scaled_loss` (Keras 2) / "
        "`optimizer.scale_loss` (Keras 3) of a `LossScaleOptimizer`; and in PyTorch, a `loss.backward()` on a loss "
        "computed inside `torch.autocast('cuda', dtype=torch.float16)` / `torch.cuda.amp.autocast()` with no "
        "`GradScaler` (`scaler.scale(loss).backward()`). It also finds a loss summed in float16: under "
        "`mixed_float16` (without a float32 output layer), a `tf.reduce_sum` with no axis over a direct model output "
        "in a GradientTape step, or in a loss function such a step calls, with no cast to float32. `model.compile` + "
        "`fit` (which wrap the optimizer and scale the loss for you), bfloat16 (same exponent range as float32), and "
        "`optimizer.minimize(loss, tape=tape)` are not reported. The policy is the one in force (model_flow) where "
        "the model whose weights the step differentiates was built - Keras layers read the global policy when they "
        "are constructed - or, for a model passed in, where the step runs (through its callers): a model built "
        "before `set_global_policy('mixed_float16')`, or after a reset to float32, computes in float32 and is not "
        "reported."
    )
    why_bad = (
        "float16 has 5 exponent bits: its smallest subnormal is about 6e-8 and its smallest normal number about "
        "6e-5. Many weight gradients are smaller than that, so computed in float16 they are flushed to 0 and those "
        "weights stop learning; loss scaling multiplies the loss (by 32768 by default) before differentiating and "
        "divides the gradients back in float32 (the TensorFlow mixed-precision guide, PyTorch's AMP recipe). "
        "`compile`/`fit` does this automatically; a custom loop must do it itself. Keras 3's `LossScaleOptimizer` "
        "also divides every gradient by the loss scale in `apply_gradients`, so with an unscaled loss the updates "
        "are 32768 times too small. The largest float16 value is 65504: a sum of per-pixel losses over one 512x512 "
        "image of ones is already inf (qubvel-org/segmentation_models.pytorch#463), and per-sample losses below "
        "6e-8 are 0."
    )
    example = """\
        keras.mixed_precision.set_global_policy("mixed_float16")
        optimizer = keras.optimizers.Adam()

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    """
    use_instead = """\
        keras.mixed_precision.set_global_policy("mixed_float16")
        optimizer = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam())

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            scaled_loss = optimizer.scale_loss(loss)  # Keras 2: optimizer.get_scaled_loss(loss)
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        # Keras 2 only: grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

        # PyTorch: scaler = torch.amp.GradScaler("cuda"); scaler.scale(loss).backward();
        #          scaler.step(optimizer); scaler.update()
    """
    fix_safety = (
        "No automatic fix: loss scaling needs an optimizer wrapper (or a GradScaler), a scaled loss and unscaled "
        "gradients at three places of the loop."
    )

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    def report(self, node: cst.CSTNode, message: str, fix=None) -> None:  # type: ignore[no-untyped-def]
        """A training step is not a loss function: when the walk is outside every loss scope, name the step."""
        stmt = self.stmt
        where = f"`{stmt.func.qualname}`" if stmt is not None and stmt.func is not None else "module level"
        super().report(node, message, fix, fallback_scope=Scope("training-step", f"training step at {where}"))

    # ---- analysis ---------------------------------------------------------------------------------------------
    def _compute(self) -> dict[int, str]:
        out: dict[int, str] = {}
        self._tensorflow(out)
        self._torch(out)
        return out

    def _tensorflow(self, out: dict[int, str]) -> None:
        index = self.context.index
        dt = dtypes_of(index)
        if not any(p.dtype == FLOAT16 for p in dt.policy_settings) and (dt.mixed is None or dt.mixed.dtype != FLOAT16):
            return
        steps = gradient_steps(index)
        if not steps:
            return
        source = index.module.code
        module_scales = any(isinstance(c.func, cst.Attribute) and c.func.attr.value in _TF_SCALE_ANY
                            for c, _ in index.all_calls)
        wrapped = "LossScaleOptimizer" in source
        for step in steps:
            if not self._float16_step(step):
                continue
            if not mentions_method(index, step.target, step.stmt, _TF_SCALE) and not module_scales:
                out[id(step.call)] = self._tf_message(step.call, step.stmt, wrapped)
            if step.tape is not None and not dt.float32_output:
                self._fp16_sums(step.tape, step.stmt, out)

    def _float16_step(self, step: GradientStep) -> bool:
        """Does the step differentiate a model that computes in float16? The policy in force where the model whose
        weights are differentiated was built (Keras layers read the global policy when constructed), else where
        the step runs (model_flow); a policy given to layers without a global setting counts everywhere."""
        index = self.context.index
        dt = dtypes_of(index)
        if not dt.policy_settings:
            return dt.mixed is not None and dt.mixed.dtype == FLOAT16
        flow = model_flow(index)
        contexts = [flow.model_context(name, step.stmt) for name in _weight_owners(step.call)]
        known = [c for c in contexts if c is not None]
        if known and len(known) == len(contexts):
            return any(c.policy is not None and c.policy.dtype == FLOAT16 for c in known)
        policy = flow.policy_at(step.stmt)
        return policy is not None and policy.dtype == FLOAT16

    def _tf_message(self, call: cst.Call, stmt: StmtInfo, wrapped: bool) -> str:
        quoted = self.source_of(call, 50)
        in_train_step = stmt.func is not None and stmt.func.name == "train_step" and stmt.func.cls is not None
        if wrapped or in_train_step:
            how = ("the optimizer is a LossScaleOptimizer" if wrapped else
                   "compile() wraps the optimizer in a LossScaleOptimizer")
            return (f"`{quoted}` differentiates the unscaled loss under the mixed_float16 policy, although {how}: "
                    f"{_UNDERFLOW}, and Keras 3's LossScaleOptimizer then divides these gradients by the loss scale "
                    f"(32768 at first); differentiate `optimizer.scale_loss(loss)` (Keras 2: `get_scaled_loss`, "
                    f"then `get_unscaled_gradients`)")
        return (f"`{quoted}` runs under the mixed_float16 policy with no loss scaling: {_UNDERFLOW}; wrap the "
                f"optimizer in `keras.mixed_precision.LossScaleOptimizer` and differentiate "
                f"`optimizer.scale_loss(loss)` (Keras 2: `get_scaled_loss`, then `get_unscaled_gradients`)")

    # ---- the loss itself summed in float16 ---------------------------------------------------------------------
    def _model_call(self, value: cst.BaseExpression, stmt: StmtInfo) -> bool:
        """Is `value` a direct call of a model (`model(x)`, `self(x, training=True)`, `self.generator(z)`)?"""
        if not isinstance(value, cst.Call):
            return False
        index = self.context.index
        if index.qualify(value.func) is not None or index.op_of(value) is not None:
            return False
        if function_named(index, value.func, stmt) is not None:
            return False
        name = dotted_name(value.func)
        if name is None:
            return False
        leaf = name.rsplit(".", 1)[-1]
        return not is_loss_name(leaf) and leaf not in ("cast", "float", "float32", "astype")

    def _model_outputs(self, tape_body: int, stmt: StmtInfo) -> set[str]:
        index = self.context.index
        func = stmt.func
        defs = func.defs if func is not None else index.module_defs
        out = set()
        for name, ds in defs.items():
            inside = [d for d in ds if d.stmt is not None and tape_body in d.path]
            if inside and all(d.kind == "assign" and d.value is not None and self._model_call(d.value, d.stmt)
                              for d in ds if d.stmt is not None):
                out.add(name)
        return out

    def _is_full_sum(self, call: cst.Call) -> bool:
        op = self.op_of(call)
        if op is None or op.name != "sum" or op.framework not in ("tensorflow", "keras"):
            return False
        return len(positional(call)) < 2 and kwarg(call, "axis") is None

    def _fp16_sums(self, tape, step_stmt: StmtInfo, out: dict[int, str]) -> None:  # type: ignore[no-untyped-def]
        index = self.context.index
        body = id(tape.node.body)
        outputs = self._model_outputs(body, step_stmt)
        calls = step_stmt.func.calls if step_stmt.func is not None else index.module_calls
        for call, stmt in calls:
            if body not in stmt.path:
                continue
            if self._is_full_sum(call):
                operand = positional(call)[0] if positional(call) else kwarg(call, "input_tensor", "x")
                if operand is not None and set(names_in(operand)) & outputs \
                        and not self._casts_to_float32(operand, stmt):
                    out.setdefault(id(call), self._sum_message(call))
                continue
            callee = function_named(index, call.func, stmt)
            if callee is None:
                continue
            params = {p.name for p in callee.params if p.position >= 0 and p.position < len(call.args)
                      and call.args[p.position].keyword is None
                      and self._is_output(call.args[p.position].value, stmt, outputs)}
            if params:
                self._sums_in_loss(callee, params, out)

    def _is_output(self, expr: cst.BaseExpression, stmt: StmtInfo, outputs: set[str]) -> bool:
        """A model output passed as is: a name bound to one, or the call itself (`loss_fn(y, model(x))`)."""
        if isinstance(expr, cst.Name):
            return expr.value in outputs
        return self._model_call(expr, stmt)

    def _casts_to_float32(self, expr: cst.BaseExpression, stmt: StmtInfo) -> bool:
        fact = dtypes_of(self.context.index).tensor_dtype(expr, stmt)
        return fact is not None and fact.dtype != FLOAT16

    def _sums_in_loss(self, func: FuncInfo, params: set[str], out: dict[int, str]) -> None:
        index = self.context.index
        for call, _stmt in func.calls:  # any cast to a wider dtype in the loss: it is float32-aware
            op = index.op_of(call)
            if op is not None and op.name == "cast":
                return
            if dtype_named(kwarg(call, "dtype")) not in (None, FLOAT16):
                return
        for ret, rstmt in func.returns:
            for sum_call, sstmt in self._returned_sums(ret, rstmt):
                operand = positional(sum_call)[0] if positional(sum_call) else None
                if operand is not None and self._depends_on(operand, sstmt, params):
                    out.setdefault(id(sum_call), self._sum_message(sum_call))

    def _returned_sums(self, expr: cst.BaseExpression, stmt: StmtInfo, depth: int = 0
                       ) -> list[tuple[cst.Call, StmtInfo]]:
        """The full `reduce_sum` calls the returned value is (up to a sign, a scale or through local names)."""
        if isinstance(expr, cst.Call) and self._is_full_sum(expr):
            return [(expr, stmt)]
        if isinstance(expr, cst.UnaryOperation):
            return self._returned_sums(expr.expression, stmt, depth)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Multiply, cst.Divide, cst.Add,
                                                                                cst.Subtract)):
            return self._returned_sums(expr.left, stmt, depth) + self._returned_sums(expr.right, stmt, depth)
        if isinstance(expr, cst.Name) and depth < 3:
            found = []
            for v, s in reaching_values(self.context.index, expr.value, stmt) or []:
                found += self._returned_sums(v, s, depth + 1)
            return found
        return []

    def _depends_on(self, expr: cst.BaseExpression, stmt: StmtInfo, params: set[str], depth: int = 0) -> bool:
        names = set(names_in(expr))
        if names & params:
            return True
        if depth >= 4:
            return False
        for n in names:
            for v, s in reaching_values(self.context.index, n, stmt) or []:
                if self._depends_on(v, s, params, depth + 1):
                    return True
        return False

    def _sum_message(self, call: cst.Call) -> str:
        return (f"`{self.source_of(call, 50)}` sums float16 values: under the mixed_float16 policy a model's output "
                f"is float16, and a float16 sum above 65504 is inf (one 512x512 map of ones already is) while "
                f"per-sample losses below 6e-8 are 0; cast to float32 first (`tf.cast(y_pred, tf.float32)`) or give "
                f"the output layer dtype='float32'")

    # ---- PyTorch -----------------------------------------------------------------------------------------------
    def _torch(self, out: dict[int, str]) -> None:
        index = self.context.index
        regions = [r for r in autocast_regions(index) if r.dtype == FLOAT16]
        if not regions:
            return
        source = index.module.code
        if "GradScaler" in source or "scale_loss" in source:
            return  # a scaler exists (possibly on another branch or passed in): trust it
        for region in regions:
            for step in backward_steps(index, region):
                if mentions_method(index, step.receiver, step.stmt, frozenset({"scale"})):
                    continue
                quoted = self.source_of(region.call, 50)
                out.setdefault(id(step.call), (
                    f"`{self.source_of(step.call, 40)}` back-propagates a loss computed under `{quoted}` "
                    f"(float16) with no GradScaler: {_UNDERFLOW}; use `scaler = torch.amp.GradScaler('cuda')`, "
                    f"`scaler.scale(loss).backward()`, `scaler.step(optimizer)`, `scaler.update()`, or autocast to "
                    f"torch.bfloat16"))


    VALID = [
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.Adam())

            @tf.function
            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.keras.losses.mse(y, model(x, training=True)))
                    scaled_loss = optimizer.get_scaled_loss(loss)
                scaled_grads = tape.gradient(scaled_loss, model.trainable_variables)
                grads = optimizer.get_unscaled_gradients(scaled_grads)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "TF2 / Keras 2: LossScaleOptimizer with get_scaled_loss and get_unscaled_gradients (the guide's loop)"),
        Valid("""
            import keras
            import tensorflow as tf

            keras.mixed_precision.set_global_policy("mixed_float16")

            class Trainer(keras.Model):
                def train_step(self, data):
                    x, y = data
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(y=y, y_pred=self(x, training=True))
                        loss = self.optimizer.scale_loss(loss)
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}
        """, "Keras 3 train_step: compile() wrapped the optimizer, scale_loss scales the loss"),
        Valid("""
            import keras

            keras.mixed_precision.set_global_policy("mixed_float16")

            model = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                                      keras.layers.Dense(1, dtype="float32")])
            model.compile(optimizer="adam", loss="mse")
            model.fit(x_train, y_train, epochs=5)
        """, "compile + fit: Keras wraps the optimizer in a LossScaleOptimizer and scales for you"),
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
            optimizer = tf.keras.optimizers.Adam()

            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.keras.losses.mse(y, model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "bfloat16 has float32's exponent range: no loss scaling needed"),
        Valid("""
            import torch

            scaler = torch.amp.GradScaler("cuda")

            def train_epoch(model, loader, optimizer, criterion):
                for x, y in loader:
                    optimizer.zero_grad()
                    with torch.autocast(device_type="cuda", dtype=torch.float16):
                        loss = criterion(model(x), y)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
        """, "PyTorch AMP recipe: GradScaler"),
        Valid("""
            import torch

            def train_epoch(model, loader, optimizer, criterion):
                for x, y in loader:
                    optimizer.zero_grad()
                    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                        loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
        """, "bfloat16 autocast needs no GradScaler"),
        Valid("""
            import torch

            def train_epoch(model, loader, optimizer, criterion, use_amp):
                scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
                for x, y in loader:
                    with torch.cuda.amp.autocast(enabled=use_amp):
                        loss = criterion(model(x), y)
                    if use_amp:
                        scaler.scale(loss).backward()
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        loss.backward()
                        optimizer.step()
        """, "the unscaled branch runs only with autocast disabled"),
        Valid("""
            import torch

            def train_epoch(model, loader, optimizer, criterion):
                for x, y in loader:
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
                    val_loss = sum(criterion(model(x), y) for x, y in loader)
        """, "float16 only for evaluation: nothing is back-propagated from it"),
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.Adam())

            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    y_pred = tf.cast(model(x, training=True), tf.float32)
                    loss = tf.reduce_sum(tf.square(y - y_pred))
                    scaled = optimizer.get_scaled_loss(loss)
                grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, model.trainable_variables))
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "the model output is cast to float32 before the sum"),
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")

            def gradient_penalty(critic, real, fake):
                with tf.GradientTape() as tape:
                    tape.watch(real)
                    pred = critic(real)
                grads = tape.gradient(pred, real)
                return tf.reduce_mean((tf.norm(grads, axis=1) - 1.0) ** 2)
        """, "a gradient with respect to the inputs (a gradient penalty), not a training step"),
        Valid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            fast = build_model()
            fast.compile(optimizer="adam", loss="mse")
            fast.fit(x_train, y_train)

            tf.keras.mixed_precision.set_global_policy("float32")
            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(1)])
            optimizer = tf.keras.optimizers.Adam()

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "the policy is back to float32 when the custom loop's model is built"),
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(1)])
            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.optimizers.Adam()

            @tf.function
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "the policy is set after the model is built: its layers already read float32 and stay float32"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.optimizers.Adam()

            @tf.function
            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.keras.losses.mse(y, model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "LL801", 10, "TF2 custom loop under mixed_float16, plain Adam"),
        Invalid("""
            import keras
            import tensorflow as tf

            keras.mixed_precision.set_global_policy("mixed_float16")

            class Trainer(keras.Model):
                def train_step(self, data):
                    x, y = data
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(y=y, y_pred=self(x, training=True))
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}
        """, "LL801", 11, "Keras 3 train_step: compile() wrapped the optimizer, but the loss is not scaled, so "
                          "apply_gradients divides unscaled gradients by 32768"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras import mixed_precision

            policy = mixed_precision.Policy("mixed_float16")
            mixed_precision.set_global_policy(policy)
            opt = mixed_precision.LossScaleOptimizer(tf.keras.optimizers.SGD(0.01))

            def step(model, x, y, loss_fn):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x))
                grads = tape.gradient(loss, model.trainable_weights)
                opt.apply_gradients(zip(grads, model.trainable_weights))
        """, "LL801", 11, "the optimizer is wrapped, but the custom loop never calls get_scaled_loss"),
        Invalid("""
            import torch

            def train_epoch(model, loader, optimizer, criterion):
                for x, y in loader:
                    optimizer.zero_grad()
                    with torch.autocast(device_type="cuda", dtype=torch.float16):
                        loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
        """, "LL801", 8, "PyTorch autocast float16 without GradScaler"),
        Invalid("""
            import torch
            from torch.cuda.amp import autocast

            def train(model, loader, optimizer, accum_steps=4):
                for i, (x, y) in enumerate(loader):
                    with autocast():
                        out = model(x)
                        loss = torch.nn.functional.cross_entropy(out, y)
                    loss = loss / accum_steps
                    loss.backward()
                    if (i + 1) % accum_steps == 0:
                        optimizer.step()
                        optimizer.zero_grad()
        """, "LL801", 10, "torch.cuda.amp.autocast() defaults to float16; the loss is rescaled for accumulation, "
                          "not loss-scaled"),
        Invalid("""
            import torch

            class Trainer:
                def step(self, batch):
                    with torch.autocast("cuda"):
                        logits = self.model(batch["x"])
                        loss = self.criterion(logits, batch["y"]).mean()
                        loss.backward()
                    self.optimizer.step()
        """, "LL801", 8, "autocast('cuda') defaults to float16; backward inside the block"),
        Invalid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.Adam())

            def train_step(model, images, masks):
                with tf.GradientTape() as tape:
                    probs = model(images, training=True)
                    loss = tf.reduce_sum(tf.square(masks - probs))
                    scaled = optimizer.get_scaled_loss(loss)
                grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, model.trainable_variables))
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "LL801", 9, "the loss itself summed over every pixel in float16: overflows to inf above 65504"),
        Invalid("""
            import tensorflow as tf

            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.Adam())

            def dice_loss(y_true, y_pred):
                inter = tf.reduce_sum(y_true * y_pred, axis=[1, 2])
                return 1.0 - tf.reduce_sum(2.0 * inter) / tf.reduce_sum(y_true + y_pred)

            def train_step(model, x, y):
                with tf.GradientTape() as tape:
                    loss = dice_loss(y, model(x, training=True))
                    scaled = optimizer.get_scaled_loss(loss)
                grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, model.trainable_variables))
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """, "LL801", 8, "a dice loss called on the float16 model output: the pixel sums overflow"),
        Invalid("""
            import tensorflow as tf

            def train_step(model, optimizer, x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(y - model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            def main(dataset):
                tf.keras.mixed_precision.set_global_policy("mixed_float16")
                model = build_model()
                optimizer = tf.keras.optimizers.Adam()
                for x, y in dataset:
                    train_step(model, optimizer, x, y)
        """, "LL801", 6, "the policy is set in main(), which calls the step"),
        Invalid("""
            import tensorflow as tf

            teacher = tf.keras.Sequential([tf.keras.layers.Dense(256, activation="relu"), tf.keras.layers.Dense(10)])
            tf.keras.mixed_precision.set_global_policy("mixed_float16")
            student = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(10)])
            optimizer = tf.keras.optimizers.Adam()

            @tf.function
            def distill_step(x):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(teacher(x) - student(x, training=True)))
                grads = tape.gradient(loss, student.trainable_variables)
                optimizer.apply_gradients(zip(grads, student.trainable_variables))
        """, "LL801", 12, "the trained model is built after the policy (the float32 teacher is not trained)"),
    ]
