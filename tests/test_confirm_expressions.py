"""Fixes in module-level TF1 graph code are confirmed on a synthetic function of the expression's tensors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from losslint.api import lint_source
from losslint.fixes.confirm import confirm_file
from losslint.fixes.confirm.expression import FUNCTION, synthesize
from losslint.fixes.confirm.extract import Isolation
from losslint.model import Diagnostic, Edit, Fix, Position, Range, Severity

ROOT = Path(__file__).resolve().parent.parent

TF1 = textwrap.dedent("""\
    import tensorflow as tf

    EPS = 1e-6
    x = tf.placeholder(tf.float32, [None, 784])
    y_ = tf.placeholder(tf.float32, [None, 10])
    W = tf.Variable(tf.zeros([784, 10]))
    y = tf.nn.softmax(tf.matmul(x, W))
    mask = tf.cast(tf.not_equal(y_, 0), tf.float32)
    xent = -tf.reduce_sum(y_ * tf.log(y + EPS), reduction_indices=[1])
    masked = tf.div(tf.reduce_sum(tf.square(y_ - y) * mask), tf.reduce_sum(mask))
    with tf.Session() as sess:
        inside = tf.log(y)
""")


def _stmt(module: cst.Module, prefix: str) -> cst.CSTNode:
    return next(s for s in module.body if module.code_for_node(s).startswith(prefix))


def test_tensors_become_parameters_and_constants_are_copied() -> None:
    module = cst.parse_module(TF1)
    syn = synthesize(module, _stmt(module, "xent"), TF1.replace("y + EPS", "tf.maximum(y, EPS)"))
    func = syn.chain[-1]
    assert isinstance(func, cst.FunctionDef) and func.name.value == FUNCTION
    assert [p.name.value for p in func.params.params] == ["y_", "y"]  # EPS is a constant, tf an import
    assert syn.roles == {"y_": "y_true", "y": "y_pred"}  # a placeholder named y_, a softmax output
    assert f"def {FUNCTION}(y_, y):\n    return -tf.reduce_sum(y_ * tf.log(tf.maximum(y, EPS))" in syn.fixed_source


def test_a_value_computed_from_a_placeholder_is_a_parameter_with_its_role() -> None:
    module = cst.parse_module(TF1)
    syn = synthesize(module, _stmt(module, "masked"), TF1)
    assert [p.name.value for p in syn.chain[-1].params.params] == ["y_", "y", "mask"]
    assert syn.roles["mask"] == "mask"


def test_a_statement_inside_a_block_is_not_isolated() -> None:
    module = cst.parse_module(TF1)
    block = _stmt(module, "with")
    inner = block.body.body[0]  # type: ignore[attr-defined]
    with pytest.raises(Isolation):
        synthesize(module, inner, TF1)


def _diag(source: str, needle: str, new_text: str) -> Diagnostic:
    start = source.index(needle)
    line = source.count("\n", 0, start)
    col = start - (source.rfind("\n", 0, start) + 1)
    rng = Range(Position(line, col), Position(line, col + len(needle)))
    return Diagnostic("LL101", "test", "test", rng, Severity.WARNING, fix=Fix("test fix", "safe", (Edit(rng, new_text),)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):  # noqa: ANN001, ANN201
    return str(tmp_path_factory.mktemp("confirm-cache"))


@pytest.mark.tensorflow
def test_the_tf1_example_fix_is_confirmed(cache: str) -> None:
    path = ROOT / "examples" / "tf1_graph_buggy.py"
    source = path.read_text()
    result = lint_source(source, str(path))
    out = [d for d in confirm_file(str(path), source, result.diagnostics, cache_dir=cache) if d.fix is not None]
    assert out, result.diagnostics
    for d in out:
        ev = d.fix.evidence
        assert d.fix.confirmed is True, ev
        assert "module-level expression" in ev["expression"] and ev["function"] == FUNCTION
        assert ev["nonfinite_original_edge"] > 0 and ev["nonfinite_fixed_edge"] == 0


@pytest.mark.tensorflow
def test_tf1_names_run_and_a_wrong_rewrite_is_rejected(cache: str) -> None:
    # tf.log, tf.div and reduction_indices= only exist in tf.compat.v1: the harness resolves them there
    good = _diag(TF1, "tf.log(y + EPS)", "tf.log(tf.maximum(y, EPS))")
    wrong = _diag(TF1, "tf.log(y + EPS)", "tf.log(y + 1.0)")
    (ok,) = confirm_file("tf1.py", TF1, (good,), cache_dir=cache)
    assert ok.fix.confirmed is True, ok.fix.evidence
    (bad,) = confirm_file("tf1.py", TF1, (wrong,), cache_dir=cache)
    assert bad.fix.confirmed is False and "values differ" in bad.fix.evidence["reason"], bad.fix.evidence


SCRIPT = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F

    criterion = nn.CrossEntropyLoss()
    x, y = next(iter(loader))
    probs = F.softmax(model(x), dim=1)
    loss = criterion(probs, y)
    loss.backward()
""")


def test_a_fix_in_an_earlier_assignment_runs_the_statements_up_to_the_loss() -> None:
    module = cst.parse_module(SCRIPT)
    fixed = SCRIPT.replace("F.softmax(model(x), dim=1)", "model(x)")
    syn = synthesize(module, _stmt(module, "loss ="), fixed)
    func = syn.chain[-1]
    assert [p.name.value for p in func.params.params] == ["x", "y"]  # `model` is only called: a stand-in's job
    assert f"def {FUNCTION}(x, y):\n    probs = model(x)\n    return criterion(probs, y)" in syn.fixed_source
    # a change after the loss statement is refused
    with pytest.raises(Isolation, match="after the statement that computes the loss"):
        synthesize(module, _stmt(module, "probs ="), fixed.replace("loss.backward()", "loss.mean().backward()"))


@pytest.mark.torch
def test_a_module_level_pytorch_script_fix_is_confirmed_under_pytorch(cache: str) -> None:
    start = SCRIPT.index("F.softmax(model(x), dim=1)")
    line = SCRIPT.count("\n", 0, start)
    col = start - (SCRIPT.rfind("\n", 0, start) + 1)
    edit_range = Range(Position(line, col), Position(line, col + len("F.softmax(model(x), dim=1)")))
    loss_at = SCRIPT.index("criterion(probs, y)")
    lline = SCRIPT.count("\n", 0, loss_at)
    lcol = loss_at - (SCRIPT.rfind("\n", 0, loss_at) + 1)
    d = Diagnostic("LL602", "test", "test", Range(Position(lline, lcol), Position(lline, lcol + 19)), Severity.WARNING,
                   fix=Fix("pass the logits", "unsafe", (Edit(edit_range, "model(x)"),), expect="changed"))
    (out,) = confirm_file("script.py", SCRIPT, (d,), cache_dir=cache)
    ev = out.fix.evidence
    assert out.fix.confirmed is True, ev
    assert ev["framework"] == "torch" and ev["stand_ins"] == ["model -> identity on x"]
    assert ev["inputs"]["x"].startswith("logits") and ev["max_value_diff"] > 0.1


STEP = textwrap.dedent("""\
    import tensorflow as tf


    def train_step(model, opt, x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = -tf.reduce_mean(tf.reduce_sum(y * tf.math.log(probs), axis=-1))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return grads
""")


@pytest.mark.tensorflow
def test_a_tensorflow_training_step_is_judged_by_the_loss_its_tape_differentiates(cache: str) -> None:
    """The step returns gradients (of no variables, with the model a stand-in); the judged value is the tape's target.
    The optimizer is a stand-in whose methods do nothing."""
    result = lint_source(STEP, "step.py")
    fixes = [d for d in result.diagnostics if d.fix is not None]
    assert [d.code for d in fixes] == ["LL101"], result.diagnostics
    (out,) = [d for d in confirm_file("step.py", STEP, result.diagnostics, cache_dir=cache) if d.fix is not None]
    ev = out.fix.evidence
    assert out.fix.confirmed is True, ev
    assert ev["inputs"]["opt"].startswith("an optimizer") and ev["inputs"]["model"].startswith("the identity")
    assert ev["nonfinite_original_edge"] > 0 and ev["nonfinite_fixed_edge"] == 0
    wrong = STEP.replace("tf.math.log(probs)", "tf.math.log(probs + 0.5)")
    d = _diag(STEP, "tf.math.log(probs)", "tf.math.log(probs + 0.5)")
    (bad,) = confirm_file("step.py", STEP, (d,), cache_dir=cache)
    assert wrong != STEP and bad.fix.confirmed is False, bad.fix.evidence


SCOPED = textwrap.dedent("""\
    import tensorflow as tf

    x = tf.placeholder(tf.float32, [None, 784])
    y = tf.placeholder(tf.float32, [None, 10])
    W = tf.Variable(tf.zeros([784, 10]))
    with tf.name_scope('Model'):
        pred = tf.nn.softmax(tf.matmul(x, W))
    with tf.name_scope('Loss'):
        cost = tf.reduce_mean(-tf.reduce_sum(y * tf.log(pred), reduction_indices=1))
    with tf.name_scope('SGD'):
        train_op = tf.train.GradientDescentOptimizer(0.01).minimize(cost)
""")


@pytest.mark.tensorflow
def test_a_fix_inside_a_tf1_name_scope_is_confirmed(cache: str) -> None:
    """TensorBoard-era TF1 code builds its loss inside `with tf.name_scope(...):` blocks, which change no value."""
    result = lint_source(SCOPED, "scoped.py")
    fixes = [d for d in result.diagnostics if d.fix is not None]
    assert fixes, result.diagnostics
    out = [d for d in confirm_file("scoped.py", SCOPED, result.diagnostics, cache_dir=cache) if d.fix is not None]
    for d in out:
        assert d.fix.confirmed is True, d.fix.evidence
        assert d.fix.evidence["inputs"]["pred"].startswith("probabilities")


GAN = textwrap.dedent("""\
    import tensorflow as tf

    noise = tf.placeholder(tf.float32, [None, 100])
    W = tf.Variable(tf.zeros([100, 1]))


    def discriminator(x):
        out = tf.matmul(x, W)
        out = tf.nn.sigmoid(out)
        return out


    disc_fake = discriminator(noise)
    gen_loss = -tf.reduce_mean(tf.log(disc_fake))
""")


def test_the_output_of_a_same_module_function_ending_in_a_sigmoid_is_a_probability() -> None:
    module = cst.parse_module(GAN)
    syn = synthesize(module, _stmt(module, "gen_loss"), GAN.replace("tf.log(disc_fake)", "tf.log(disc_fake + 1e-7)"))
    assert [p.name.value for p in syn.chain[-1].params.params] == ["disc_fake"]
    assert syn.roles == {"disc_fake": "y_pred"}  # a GAN's discriminator output: it returns sigmoid(...)
