"""LL503 variable-created-in-loss: a tf.Variable, weighted layer, model or nn.Parameter created inside the loss body."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.captures import captures_for
from losslint.analysis.index import FuncInfo, StmtInfo
from losslint.analysis.names import dotted_name
from losslint.analysis.walk import walk
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

# Functions that build things once by design.
_BUILDER_NAMES = frozenset({"__init__", "build", "setup", "reset_parameters", "__post_init__", "_build"})
_BUILDER_PREFIXES = ("build", "make", "create", "get_", "init", "setup", "define", "_build", "_make", "_create",
                     "_get_", "_init")
# Words in an `if` test that make a creation under it a lazy, create-once pattern.
_LAZY_WORDS = ("None", "hasattr", "built", "initialized", "_initialised", "not ", "first_call", "created")
# Calls whose presence marks TF1 graph code: a loss function there runs once, while the graph is built.
_TF1_MARKERS = ("placeholder", "Session", "get_variable", "disable_eager_execution", "disable_v2_behavior",
                "variable_scope")


class VariableCreatedInLoss(ModuleFindingsRule):
    code = "LL503"
    name = "variable-created-in-loss"
    summary = "tf.Variable / layer / model / nn.Parameter created inside the loss body (re-created on every call)"
    what_it_does = (
        "Finds trainable state created inside a loss that runs on every training step: `tf.Variable(...)`, "
        "`K.variable`, `keras.Variable`, a Keras layer with weights (`Dense`, `Conv2D`, `Embedding`, ...), a "
        "`keras.applications` network, a `torch.nn` module with parameters "
        "(`nn.Linear`, `nn.Conv2d`, ...), an `nn.Parameter`, or a same-module class whose `__init__` creates one. "
        "Creating parameter-free objects (`keras.losses.BinaryCrossentropy()`, `nn.CrossEntropyLoss()`, "
        "`nn.Softmax()`) is not reported, nor is the lazy create-once pattern (`if self.w is None: ...`), nor "
        "TF1 graph code, where a loss function runs once while the graph is built."
    )
    why_bad = (
        "The loss body runs once per step (or per trace). Under `tf.function` (Keras compile, a Keras Loss) a "
        "variable created after the first trace raises \"tf.function only supports singleton tf.Variables created "
        "on the first call\". Run eagerly, or in PyTorch, every call makes new randomly initialised weights that "
        "the optimizer was never given, so they are never trained: the term is noise that changes every step "
        "(keras-team/keras#12503). A pretrained network created in the loss (a VGG for a perceptual loss) is "
        "reloaded on every step."
    )
    example = """\
        class ProjectionLoss(nn.Module):
            def forward(self, pred, target):
                proj = nn.Linear(pred.shape[-1], 128)
                return F.mse_loss(proj(pred), proj(target))
    """
    use_instead = """\
        class ProjectionLoss(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.proj = nn.Linear(dim, 128)

            def forward(self, pred, target):
                return F.mse_loss(self.proj(pred), self.proj(target))
        # and include criterion.parameters() in the optimizer
    """
    fix_safety = "No automatic fix: the object has to move to `__init__` or module level and into the optimizer."

    def _compute(self) -> dict[int, str]:
        index = self.context.index
        caps = captures_for(index, self.context.scopes)
        out: dict[int, str] = {}
        tf1 = any(any(m in (index.qualify(c.func) or "") for m in _TF1_MARKERS) for c, _ in index.all_calls)
        for func in index.functions:
            if not isinstance(func.node, cst.FunctionDef) or _is_builder(func):
                continue
            scope = self.context.scopes.scope_of_func(func)
            reason = caps.traced(func)
            if scope is None and reason is None:
                continue
            lazy = _lazy_blocks(func.node)
            returned = _returned_names(func)
            for call, stmt in func.calls:
                created = caps.creation(call)
                if created is None:
                    continue
                framework, what = created
                if any(b in lazy for b in stmt.path) or _is_returned(call, stmt, returned):
                    continue
                if framework in ("tf", "keras"):
                    if tf1 and reason not in ("tf.function",):
                        continue
                    if framework == "tf":
                        msg = (f"{what} creates a variable inside `{func.qualname}`, which runs on every step: under "
                               f"tf.function (Keras compile, a Keras Loss) this raises \"tf.function only supports "
                               f"singleton tf.Variables created on the first call\", and run eagerly it is a fresh "
                               f"variable each step that nothing trains; create it once outside the loss (module "
                               f"level or `__init__`) and reuse it")
                    else:
                        msg = (f"{what} is created inside `{func.qualname}` on every call: its weights are newly "
                               f"initialised each step and never trained (under tf.function the variable creation "
                               f"raises); create it once outside the loss and reuse it")
                else:
                    msg = (f"{what} is created inside `{func.qualname}` on every call: its parameters are new random "
                           f"values each step and are not in the optimizer, so they are never trained; create it "
                           f"once in `__init__` and give its parameters to the optimizer")
                out[id(call)] = msg
        return out

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            def combined_loss(y_true, y_pred):
                bce = tf.keras.losses.BinaryCrossentropy()
                return bce(y_true, y_pred) + tf.reduce_mean(tf.abs(y_true - y_pred))

            model.compile(optimizer="adam", loss=combined_loss)
        """, "a parameter-free Keras loss object created per call"),
        Valid("""
            import torch.nn as nn
            import torch.nn.functional as F

            class ComboLoss(nn.Module):
                def forward(self, logits, target):
                    ce = nn.CrossEntropyLoss()
                    return ce(logits, target) + 0.1 * F.softmax(logits, dim=1).pow(2).mean()
        """, "nn.CrossEntropyLoss has no parameters"),
        Valid("""
            import tensorflow as tf

            class CenterLoss(tf.keras.losses.Loss):
                def __init__(self, num_classes, dim):
                    super().__init__()
                    self.centers = tf.Variable(tf.zeros((num_classes, dim)), trainable=False)

                def call(self, y_true, y_pred):
                    c = tf.gather(self.centers, tf.cast(y_true[:, 0], tf.int32))
                    return tf.reduce_sum(tf.square(y_pred - c), axis=-1)
        """, "the variable is created once in __init__"),
        Valid("""
            import tensorflow as tf

            class Scaled:
                def __init__(self):
                    self.scale = None

                @tf.function
                def loss(self, y_true, y_pred):
                    if self.scale is None:
                        self.scale = tf.Variable(1.0)
                    return self.scale * tf.reduce_mean(tf.square(y_true - y_pred))
        """, "the lazy create-once (singleton) pattern"),
        Valid("""
            import tensorflow as tf

            x = tf.placeholder(tf.float32, [None, 128])
            labels = tf.placeholder(tf.int64, [None, 1])

            def nce_loss(embed, labels):
                nce_weights = tf.Variable(tf.truncated_normal([50000, 128], stddev=0.05))
                nce_biases = tf.Variable(tf.zeros([50000]))
                return tf.reduce_mean(tf.nn.nce_loss(nce_weights, nce_biases, labels, embed, 64, 50000))

            loss = nce_loss(x, labels)
            train_op = tf.train.GradientDescentOptimizer(1.0).minimize(loss)
        """, "TF1 graph code: the loss function runs once while the graph is built"),
        Valid("""
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class ProjectionLoss(nn.Module):
                def __init__(self, dim):
                    super().__init__()
                    self.proj = nn.Linear(dim, 128)

                def forward(self, pred, target):
                    return F.mse_loss(self.proj(pred), self.proj(target))
        """, "the module is created once in __init__"),
        Valid("""
            import tensorflow as tf
            from tensorflow import keras

            def make_perceptual_loss():
                vgg = keras.applications.VGG16(include_top=False, weights="imagenet")
                features = keras.Model(vgg.input, vgg.get_layer("block3_conv3").output)

                def perceptual_loss(y_true, y_pred):
                    return tf.reduce_mean(tf.square(features(y_true) - features(y_pred)))
                return perceptual_loss

            model.compile(optimizer="adam", loss=make_perceptual_loss())
        """, "a loss factory builds the network once"),
    ]
    INVALID = [
        Invalid("""
            import tensorflow as tf

            def weighted_loss(y_true, y_pred):
                w = tf.Variable(tf.ones_like(y_true[0]))
                return tf.reduce_mean(w * tf.square(y_true - y_pred))

            model.compile(optimizer="adam", loss=weighted_loss)
        """, "LL503", 4, "tf.Variable in a compiled loss (keras-team/keras#12503)"),
        Invalid("""
            import tensorflow as tf
            from tensorflow import keras

            class FeatureLoss(keras.losses.Loss):
                def call(self, y_true, y_pred):
                    proj = keras.layers.Dense(16)
                    return tf.reduce_mean(tf.square(proj(y_true) - proj(y_pred)))
        """, "LL503", 6, "a Dense layer built inside a Keras Loss"),
        Invalid("""
            import torch.nn as nn
            import torch.nn.functional as F

            class ProjectionLoss(nn.Module):
                def forward(self, pred, target):
                    proj = nn.Linear(pred.shape[-1], 128)
                    return F.mse_loss(proj(pred), proj(target))
        """, "LL503", 6, "nn.Linear in a loss module's forward"),
        Invalid("""
            import torch
            import torch.nn as nn

            def uncertainty_loss(pred, target):
                log_var = nn.Parameter(torch.zeros(1))
                return (torch.exp(-log_var) * (pred - target) ** 2 + log_var).mean()

            loss = uncertainty_loss(model(x), y)
            loss.backward()
        """, "LL503", 5, "nn.Parameter created per call: the learned weight never learns"),
        Invalid("""
            import tensorflow as tf
            from tensorflow.keras.applications import VGG16
            from tensorflow.keras.models import Model

            def perceptual_loss(y_true, y_pred):
                vgg = VGG16(include_top=False, weights="imagenet")
                features = Model(vgg.input, vgg.get_layer("block3_conv3").output)
                return tf.reduce_mean(tf.square(features(y_true) - features(y_pred)))

            model.compile(optimizer="adam", loss=perceptual_loss)
        """, "LL503", 6, "VGG16 reloaded on every step"),
        Invalid("""
            import keras
            from keras import layers, ops

            def embedding_loss(y_true, y_pred):
                emb = layers.Embedding(1000, 16)(ops.cast(y_true, "int32"))
                return ops.mean(ops.square(ops.mean(emb, axis=1) - y_pred))

            model.compile(optimizer="adam", loss=embedding_loss)
        """, "LL503", 5, "Keras 3 Embedding created in the loss"),
        Invalid("""
            from keras import backend as K

            def scaled_mse(y_true, y_pred):
                scale = K.variable(1.0)
                return scale * K.mean(K.square(y_true - y_pred))

            model.compile(optimizer="adam", loss=scaled_mse)
        """, "LL503", 4, "K.variable in a Keras 2 loss"),
    ]


def _is_builder(func: FuncInfo) -> bool:
    if func.name in _BUILDER_NAMES or func.name.startswith(_BUILDER_PREFIXES):
        return True
    for ret, _ in func.returns:  # returns a function: a factory that builds its state once
        if isinstance(ret, cst.Lambda) or (isinstance(ret, cst.Name) and ret.value in func.nested):
            return True
    return False


def _lazy_blocks(node: cst.FunctionDef) -> set[int]:
    """ids of the blocks of `if` statements that test a create-once condition."""
    out: set[int] = set()
    module = cst.Module(body=[])

    def enter(n: cst.CSTNode) -> bool | None:
        if isinstance(n, (cst.FunctionDef, cst.ClassDef)) and n is not node:
            return False
        if isinstance(n, cst.If):
            test = module.code_for_node(n.test)
            if any(w in test for w in _LAZY_WORDS):
                out.add(id(n.body))
                if isinstance(n.orelse, cst.Else):
                    out.add(id(n.orelse.body))
        return None

    walk(node, enter)
    return out


def _returned_names(func: FuncInfo) -> set[str]:
    return {ret.value for ret, _ in func.returns if isinstance(ret, cst.Name)}


def _is_returned(call: cst.Call, stmt: StmtInfo, returned: set[str]) -> bool:
    """`return nn.Linear(...)`, or `head = nn.Linear(...)` ... `return head`: the function hands the object out."""
    node = stmt.node
    if isinstance(node, cst.SimpleStatementLine):
        for small in node.body:
            if isinstance(small, cst.Return) and small.value is call:
                return True
            if isinstance(small, cst.Assign) and small.value is call:
                for t in small.targets:
                    name = dotted_name(t.target)
                    if name is not None and name in returned:
                        return True
    return False


