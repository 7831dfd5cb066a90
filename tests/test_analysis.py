"""Shared analysis: import resolution, the op table, loss-scope discovery and value facts."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint.analysis.facts import Facts
from losslint.analysis.index import ModuleIndex
from losslint.analysis.scopes import ScopeMap


def _index(src: str, path: str = "m.py") -> ModuleIndex:
    return ModuleIndex.build(cst.parse_module(textwrap.dedent(src)), path)


def _ops(src: str) -> list[str | None]:
    index = _index(src)
    out = []
    for call, _ in index.all_calls:
        op = index.op_of(call)
        out.append(op.name if op else None)
    return out


@pytest.mark.parametrize("src", [
    "import tensorflow as tf\ntf.log(x)",
    "import tensorflow as tf\ntf.math.log(x)",
    "import tensorflow.compat.v1 as tf\ntf.log(x)",
    "from tensorflow.keras import backend as K\nK.log(x)",
    "import keras.backend as K\nK.log(x)",
    "import tensorflow as tf\ntf.keras.backend.log(x)",
    "import keras\nkeras.ops.log(x)",
    "from keras import ops\nops.log(x)",
    "import torch\ntorch.log(x)",
    "import jax.numpy as jnp\njnp.log(x)",
    "import numpy as np\nnp.log(x)",
    "from tensorflow.math import log\nlog(x)",
    "from torch import log as ln\nln(x)",
    "import torch\nx.log()",
])
def test_every_spelling_of_log_is_one_op(src):
    assert _ops(src) == ["log"]


@pytest.mark.parametrize("src", [
    "from tensorflow import *\nlog(x)",  # star import: unknown
    "log(x)",  # unbound name
    "import math\nmath.log(x)",  # not a tensor op
    "import tensorflow as tf\nself.log('loss', x)",  # Lightning's self.log
    "import torch\nlogger.log('a', x)",  # a method with an argument is not the tensor op
    "import tensorflow as tf\ntf.not_an_op(x)",
])
def test_unknown_names_resolve_to_nothing(src):
    assert _ops(src) == [None]


@pytest.mark.parametrize(("src", "expected"), [
    ("import torch.nn.functional as F\nF.softmax(x, dim=1)", "softmax"),
    ("import tensorflow as tf\ntf.nn.softmax(x)", "softmax"),
    ("import tensorflow as tf\ntf.div(a, b)", "divide"),
    ("import tensorflow as tf\ntf.clip_by_value(x, 1e-7, 1.0)", "clip"),
    ("import torch\ntorch.clamp(x, min=1e-7)", "clip"),
    ("import torch\nx.clamp(min=1e-7)", "clip"),
    ("from keras import backend as K\nK.epsilon()", "epsilon"),
    ("import keras\nkeras.config.epsilon()", "epsilon"),
    ("import jax\njax.nn.log_sigmoid(x)", "log_sigmoid"),
    ("import tensorflow as tf\ntf.math.divide_no_nan(a, b)", "divide_no_nan"),
    ("import tensorflow as tf\ntf.reduce_sum(x)", "sum"),
    ("import torch\nx.sum()", "sum"),
])
def test_canonical_ops(src, expected):
    assert _ops(src)[0] == expected


def _scopes(src: str, path: str = "m.py") -> dict[str, str]:
    index = _index(src, path)
    scopes = ScopeMap(index)
    out = {}
    for s in scopes.scopes():
        out[s.func.qualname if s.func is not None else s.description] = s.kind
    return out


def test_scope_kinds():
    src = '''
    import tensorflow as tf
    import torch
    import jax

    def my_loss_fn(a, b):
        return helper(a) - b

    def helper(v):
        return v * 2

    def anything(y_true, y_pred):
        return y_pred

    def weird(a, b):
        return a

    class Focal(tf.keras.losses.Loss):
        def call(self, y_true, y_pred):
            return y_pred

    class DiceLoss(torch.nn.Module):
        def forward(self, pred, target):
            return pred

    def plain(params, x):
        return x

    def compute_stats(a):
        return a

    model.compile(optimizer="adam", loss=weird)
    grads = jax.grad(plain)(p, x)
    '''
    kinds = _scopes(src)
    assert kinds["my_loss_fn"] == "loss-name"
    assert kinds["helper"] == "helper"
    assert kinds["anything"] == "signature"
    assert kinds["weird"] == "compile"
    assert kinds["Focal.call"] == "loss-class"
    assert kinds["DiceLoss.forward"] == "loss-class"
    assert kinds["plain"] == "grad-target"
    assert "compute_stats" not in kinds


def test_factory_loss_passed_to_compile():
    src = '''
    import tensorflow as tf

    def make(gamma=2.0):
        def inner(a, b):
            return a * b
        return inner

    model.compile(loss=make(3.0))
    '''
    assert _scopes(src)["make.inner"] == "compile"


def test_minimize_and_backward_slices_mark_statements():
    src = '''
    import tensorflow as tf
    p = tf.nn.softmax(tf.matmul(x, W))
    cost = -tf.reduce_sum(y * tf.log(p))
    unrelated = tf.log(q)
    train = tf.train.AdamOptimizer().minimize(cost)
    '''
    index = _index(src)
    scopes = ScopeMap(index)
    marked = {cst.Module(body=[index.stmt_info[k].node]).code.strip()
              for k in scopes.by_stmt if k in index.stmt_info}
    assert any(s.startswith("cost =") for s in marked)
    assert any(s.startswith("p =") for s in marked)
    assert not any(s.startswith("unrelated") for s in marked)


def test_losses_module_public_functions(tmp_path):
    src = '''
    import torch

    def smooth(a, b):
        return a

    def _private(a):
        return a
    '''
    kinds = _scopes(src, path="pkg/losses.py")
    assert kinds.get("smooth") == "losses-module"
    assert "_private" not in kinds


def _value_of_return(src: str, func: str):
    index = _index(src)
    facts = Facts(index, ScopeMap(index))
    f = index.module_functions[func]
    expr, stmt = f.returns[-1]
    return facts.value(expr, stmt)


@pytest.mark.parametrize(("body", "positive"), [
    ("return tf.clip_by_value(y_pred, 1e-7, 1.0)", True),
    ("return y_pred + K.epsilon()", True),
    ("return tf.maximum(y_pred, 1e-7)", True),
    ("return 1 + tf.abs(y_true - y_pred)", True),
    ("return tf.exp(y_pred)", True),
    ("return tf.nn.softplus(y_pred)", True),
    ("return tf.reduce_sum(tf.exp(y_pred))", True),
    ("return tf.where(y_pred > 0, y_pred, 1.0)", True),
    ("return tf.cast(tf.shape(y_pred)[0], tf.float32)", True),
    ("eps = 1e-6\n        return y_pred + eps", True),
    ("y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0)\n        return y_pred", True),
    ("return y_pred", False),
    ("return tf.nn.softmax(y_pred)", False),
    ("return 1 - y_pred", False),
    ("return tf.reduce_sum(y_true)", False),
    ("return tf.norm(y_true - y_pred)", False),
    ("return tf.abs(y_true - y_pred)", False),
    ("if c:\n            y_pred = tf.clip_by_value(y_pred, 1e-7, 1.0)\n        return y_pred", False),
])
def test_positivity_facts(body, positive):
    src = f'''
    import tensorflow as tf
    from tensorflow.keras import backend as K

    def loss(y_true, y_pred):
        {body}
    '''
    assert _value_of_return(src, "loss").positive is positive


def test_helper_returns_are_followed_with_the_call_arguments():
    src = '''
    import tensorflow as tf

    def guard(x, eps):
        return tf.maximum(x, eps)

    def loss(y_true, y_pred):
        return guard(y_pred, 1e-7)
    '''
    assert _value_of_return(src, "loss").positive


def test_targeted_positions_match_libcst_position_provider():
    from libcst.metadata import MetadataWrapper, PositionProvider

    from losslint.positions import node_ranges

    src = "import tensorflow as tf\n\n\ndef f(a,\n      b):\n    x = tf.math.log(a) / (b + 1)\n    return [x, a.sum()]\n"
    module = cst.parse_module(src)
    calls: list[cst.CSTNode] = []
    from losslint.analysis.walk import walk

    walk(module, lambda n: calls.append(n) if isinstance(n, (cst.Call, cst.BinaryOperation, cst.Name)) else None)
    ours = node_ranges(module, calls)
    theirs = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for node in calls:
        cr = theirs[node]
        assert ours[id(node)] == ((cr.start.line, cr.start.column), (cr.end.line, cr.end.column))
