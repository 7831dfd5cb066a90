"""The gradient data flow shared by LL401-LL404 (src/losslint/analysis/dataflow.py)."""

from __future__ import annotations

import textwrap

import libcst as cst

from losslint.analysis.dataflow import DataFlow, int_dtype
from losslint.analysis.facts import Facts
from losslint.analysis.index import ModuleIndex
from losslint.analysis.scopes import ScopeMap
from losslint.engine import lint_module_source
from losslint.rules import rule_by_id


def _flow(source: str, path: str = "example.py") -> tuple[cst.Module, DataFlow]:
    module = cst.parse_module(textwrap.dedent(source).lstrip("\n"))
    index = ModuleIndex.build(module, path)
    scopes = ScopeMap(index)
    return module, DataFlow.of(index, scopes, Facts(index, scopes))


def _findings(source: str, path: str = "example.py") -> list[tuple[str, str, str]]:
    module, df = _flow(source, path)
    df._compute()  # noqa: SLF001
    return sorted((f.culprit.kind, module.code_for_node(f.culprit.node), f.reason) for f in df.findings.values())


def _lines(source: str, code: str, path: str) -> list[int]:
    rule = rule_by_id(code)
    result = lint_module_source(textwrap.dedent(source).lstrip("\n"), path, [rule])
    return [d.range.start.line + 1 for d in result.diagnostics]


def test_first_culprit_of_a_chain_only():
    assert _findings("""
        import tensorflow as tf

        def loss(y_true, y_pred):
            hits = tf.math.count_nonzero(tf.equal(tf.round(y_pred), y_true))
            return 1.0 - tf.cast(hits, tf.float32) / tf.cast(tf.size(y_true), tf.float32)
    """) == [("nondiff", "tf.round(y_pred)", "loss")]


def test_weights_and_selections_keep_the_gradient():
    assert _findings("""
        import torch

        def loss(pred, target):
            w = (pred > 0.5).float()
            sel = torch.where(pred.argmax(1, keepdim=True) == target[:, None], pred, 1 - pred)
            return (w * (pred - target) ** 2).mean() + sel.mean()
    """) == []


def test_a_dead_term_of_a_sum():
    assert _findings("""
        import torch
        import torch.nn.functional as F

        def train(model, loader):
            for x, y in loader:
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss += 0.1 * torch.tensor(out.sum().item())
                loss.backward()
    """) == [("break", "out.sum().item()", "term")]


def test_values_that_never_reach_the_loss_are_ignored():
    assert _findings("""
        import torch

        def train(model, loader):
            for x, y in loader:
                out = model(x)
                loss = (out - y).pow(2).mean()
                acc = (out.argmax(1) == y).float().mean().item()
                loss.backward()
    """) == []


def test_helpers_are_evaluated_with_their_callers_arguments():
    assert _findings("""
        import tensorflow as tf

        def hard(x):
            return tf.cast(x > 0.5, tf.float32)

        def iou_loss(y_true, y_pred):
            h = hard(y_pred)
            return 1 - tf.reduce_sum(h * y_true) / (tf.reduce_sum(h + y_true) + 1.0)
    """) == [("nondiff", "x > 0.5", "loss")]


def test_numpy_only_loss_is_numpy_as_framework():
    assert _findings("""
        import numpy as np
        import tensorflow as tf

        def bce(y_true, y_pred):
            return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))

        def wrapped_loss(y_true, y_pred):
            return tf.numpy_function(bce, [y_true, y_pred], tf.float32)
    """) == [("host", "tf.numpy_function(bce, [y_true, y_pred], tf.float32)", "loss")]


def test_public_helpers_of_a_losses_package_are_not_losses_on_their_own():
    source = """
        import torch

        def isnan(x):
            return x != x

        def rectangular_kernel(x, window_radius=1.0):
            x = torch.abs(x)
            return (x <= window_radius).to(x.dtype)

        def hard_loss(pred, target):
            return ((pred > 0.5).float() - target).abs().mean()
    """
    assert _lines(source, "LL402", "kornia/losses/mutual_information.py") == [11]


def test_int_dtypes():
    for text in ("tf.int32", "'int64'", "torch.long", "bool", "jnp.uint8", "torch.LongTensor"):
        assert int_dtype(cst.parse_expression(text)), text
    for text in ("tf.float32", "'float16'", "torch.bfloat16", "x.dtype"):
        assert not int_dtype(cst.parse_expression(text)), text


def test_tf_function_and_keras_losses_are_traced():
    module, df = _flow("""
        import tensorflow as tf

        @tf.function
        def step(x):
            return x

        def plain(x):
            return x

        def my_loss(y_true, y_pred):
            return y_pred

        model.compile(loss=my_loss)
    """)
    funcs = {f.name: f for f in df.index.functions}
    assert df.traced(funcs["step"]) is not None
    assert df.traced(funcs["my_loss"]) is not None
    assert df.traced(funcs["plain"]) is None
