"""Fix confirmation under PyTorch and JAX: each framework's fixes run in that framework's own child process.

These tests need torch and jax installed (the dev extra installs them) and fail without them: no importorskip.
The framework processes are shared by the whole session (the confirmer keeps one per framework), as is the cache.
"""

from __future__ import annotations

import importlib.metadata
import json
import textwrap

import libcst as cst
import pytest

from losslint.engine import lint_module_source
from losslint.fixes import confirm
from losslint.fixes.confirm import STATS, confirm_file, confirm_rewrite
from losslint.fixes.confirm import worker as confirm_worker
from losslint.fixes.confirm.extract import chain_by_qualname, harness_for, infer_inputs


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):  # noqa: ANN001, ANN201
    return str(tmp_path_factory.mktemp("confirm-frameworks-cache"))


TORCH_XENT = _src("""
    import torch

    def crossentropy(y_true, y_pred):
        return -(y_true * torch.log(y_pred)).sum(dim=-1).mean()
""")

JAX_XENT = _src("""
    import jax.numpy as jnp

    def crossentropy(y_true, y_pred):
        return -jnp.mean(jnp.sum(y_true * jnp.log(y_pred), axis=-1))
""")


def test_frameworks_are_installed() -> None:
    """The dev extra installs both; without them every other test here fails on purpose, not skipped."""
    assert importlib.metadata.version("torch")
    assert importlib.metadata.version("jax")
    vers = confirm_worker.versions()
    assert vers["torch"] == importlib.metadata.version("torch")
    assert vers["jax"] == importlib.metadata.version("jax")


# ---- PyTorch --------------------------------------------------------------------------------------------------
@pytest.mark.torch
def test_torch_clamped_log_is_confirmed_under_torch(cache) -> None:  # noqa: ANN001
    fixed = TORCH_XENT.replace("torch.log(y_pred)", "torch.log(y_pred.clamp_min(1e-7))")
    v = confirm_rewrite(TORCH_XENT, fixed, "crossentropy", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    ev = v.evidence
    assert ev["framework"] == "torch" and ev["torch"] == importlib.metadata.version("torch")
    assert "tensorflow" not in ev and ev["dtype"] == "float32"
    assert ev["max_value_diff"] <= ev["tolerance"] and ev["max_grad_diff"] <= ev["grad_tolerance"]
    assert ev["nonfinite_original_edge"] > 0 and ev["nonfinite_fixed_edge"] == 0
    assert ev["grad_params"] == ["y_pred"]
    json.dumps(ev)


@pytest.mark.torch
def test_torch_rewrite_that_changes_values_is_rejected(cache) -> None:  # noqa: ANN001
    fixed = TORCH_XENT.replace("torch.log(y_pred)", "torch.log(y_pred + 0.1)")
    v = confirm_rewrite(TORCH_XENT, fixed, "crossentropy", cache_dir=cache)
    assert v.confirmed is False, v.evidence
    assert "values differ" in v.evidence["reason"]
    assert v.evidence["max_value_diff"] > v.evidence["tolerance"] > 0
    assert v.evidence["framework"] == "torch"


@pytest.mark.torch
def test_torch_nn_module_forward_loss(cache) -> None:  # noqa: ANN001
    original = _src("""
        import torch
        import torch.nn as nn

        class FocalLoss(nn.Module):
            def __init__(self, gamma=2.0):
                super().__init__()
                self.gamma = gamma

            def forward(self, logits, target):
                p = torch.sigmoid(logits)
                w = (1 - p) ** self.gamma
                return -(w * target * torch.log(p)).mean()
    """)
    fixed = original.replace("torch.log(p)", "torch.nn.functional.logsigmoid(logits)")
    v = confirm_rewrite(original, fixed, "FocalLoss.forward", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["function"] == "FocalLoss.forward" and v.evidence["framework"] == "torch"
    assert v.evidence["edges"]["large_logits"]["original"] > 0 and v.evidence["edges"]["large_logits"]["fixed"] == 0


@pytest.mark.torch
def test_torch_nll_loss_gets_int64_class_labels(cache) -> None:  # noqa: ANN001
    original = _src("""
        import torch
        import torch.nn.functional as F

        def loss_fn(logits, target):
            assert target.dtype == torch.long and target.dim() == 1
            return F.nll_loss(torch.log(F.softmax(logits, dim=1)), target)
    """)
    fixed = original.replace("torch.log(F.softmax(logits, dim=1))", "F.log_softmax(logits, dim=1)")
    v = confirm_rewrite(original, fixed, "loss_fn", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["label_kind"] == "sparse" and v.evidence["inputs"]["target"] == "integer class labels (8,)"


@pytest.mark.torch
def test_torch_process_never_imports_tensorflow(cache) -> None:  # noqa: ANN001
    original = _src("""
        import sys
        import torch

        def loss(y_true, y_pred):
            if "tensorflow" in sys.modules or "jax" in sys.modules or "keras" in sys.modules:
                raise RuntimeError("another framework was imported")
            return -(y_true * torch.log(y_pred)).sum(dim=-1).mean()
    """)
    fixed = original.replace("torch.log(y_pred)", "torch.log(torch.clamp(y_pred, min=1e-7))")
    v = confirm_rewrite(original, fixed, "loss", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    w = confirm_worker._WORKERS[(confirm_worker.python(), "torch")]
    assert w.framework == "torch" and w.tensorflow is None and w.versions == {"torch": v.evidence["torch"]}


@pytest.mark.torch
def test_torch_training_step_is_judged_by_the_loss_it_backpropagates(cache) -> None:  # noqa: ANN001
    """`train_step(model, x, y, opt)` returns nothing: the identity stands in for `model`, None for the unread `opt`,
    and the tensor `.backward()` is called on is the value (its gradients are the ones compared)."""
    original = _src("""
        import torch

        def train_step(model, x, y, opt):
            probs = torch.sigmoid(model(x))
            loss = -(y * torch.log(probs) + (1 - y) * torch.log(1 - probs)).mean()
            loss.backward()
    """)
    fixed = original.replace("-(y * torch.log(probs) + (1 - y) * torch.log(1 - probs)).mean()",
                             "torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)")
    v = confirm_rewrite(original, fixed, "train_step", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["inputs"]["model"].startswith("the identity") and v.evidence["inputs"]["opt"] == "None (not read by the loss itself)"
    assert v.evidence["max_grad_diff"] is not None and v.evidence["grad_params"] == ["x"]
    assert v.evidence["inputs"]["x"] == "logits (8, 5)"  # what the model returns
    assert v.evidence["edges"]["large_logits"]["original"] > 0 and v.evidence["edges"]["large_logits"]["fixed"] == 0


@pytest.mark.torch
def test_confirm_file_on_a_linted_torch_module(cache) -> None:  # noqa: ANN001
    source = _src("""
        import torch

        def dist_loss(pred, target):
            return torch.sqrt(((pred - target) ** 2).sum(dim=1)).mean()
    """)
    result = lint_module_source(source, "dist.py")
    assert any(d.fix for d in result.diagnostics), result.diagnostics
    out = [d for d in confirm_file("dist.py", source, result.diagnostics, cache_dir=cache) if d.fix is not None]
    assert out and all(d.fix.confirmed is True for d in out), [d.fix.evidence for d in out]
    assert out[0].fix.evidence["framework"] == "torch" and out[0].fix.evidence["path"] == "dist.py"


# ---- JAX ------------------------------------------------------------------------------------------------------
@pytest.mark.jax
def test_jax_clipped_log_is_confirmed_under_jax(cache) -> None:  # noqa: ANN001
    fixed = JAX_XENT.replace("jnp.log(y_pred)", "jnp.log(jnp.clip(y_pred, 1e-7, 1.0))")
    v = confirm_rewrite(JAX_XENT, fixed, "crossentropy", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    ev = v.evidence
    assert ev["framework"] == "jax" and ev["jax"] == importlib.metadata.version("jax") and ev["jaxlib"]
    assert "tensorflow" not in ev and "torch" not in ev and ev["dtype"] == "float32"
    assert ev["nonfinite_original_edge"] > 0 and ev["nonfinite_fixed_edge"] == 0
    json.dumps(ev)


@pytest.mark.jax
def test_jax_wrong_rewrite_is_rejected(cache) -> None:  # noqa: ANN001
    fixed = JAX_XENT.replace("jnp.log(y_pred)", "jnp.log1p(y_pred)")
    v = confirm_rewrite(JAX_XENT, fixed, "crossentropy", cache_dir=cache)
    assert v.confirmed is False, v.evidence
    assert "values differ" in v.evidence["reason"] and v.evidence["max_value_diff"] > v.evidence["tolerance"]
    assert v.evidence["framework"] == "jax"


@pytest.mark.jax
def test_jax_params_x_convention_and_no_other_framework(cache) -> None:  # noqa: ANN001
    """`loss_fn(params, x, labels)` with `x @ params` (what `jax.grad(loss_fn)` differentiates): square inputs."""
    original = _src("""
        import sys
        import jax
        import jax.numpy as jnp

        def loss_fn(params, x, labels):
            assert "tensorflow" not in sys.modules and "torch" not in sys.modules
            logits = x @ params
            return -jnp.mean(jnp.sum(labels * logits, -1) - jnp.log(jnp.sum(jnp.exp(logits), -1)))
    """)
    fixed = original.replace("jnp.log(jnp.sum(jnp.exp(logits), -1))", "jax.nn.logsumexp(logits, -1)")
    module = cst.parse_module(original)
    h = harness_for(module, chain_by_qualname(module, "loss_fn"))
    spec = infer_inputs(h.source, h.func, h.params, None)
    assert [(p["name"], p["kind"], p["grad"]) for p in spec["params"]][0] == ("params", "logits", True)
    assert spec["shape"][0] == spec["shape"][1]
    v = confirm_rewrite(original, fixed, "loss_fn", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["edges"]["large_logits"]["original"] > 0 and v.evidence["edges"]["large_logits"]["fixed"] == 0


@pytest.mark.jax
def test_jax_loss_that_cannot_be_traced_has_values_but_no_gradient(cache) -> None:  # noqa: ANN001
    original = _src("""
        import jax.numpy as jnp

        def loss(y_true, y_pred):
            return float(-jnp.mean(jnp.sum(y_true * jnp.log(y_pred), axis=-1)))
    """)
    fixed = original.replace("jnp.log(y_pred)", "jnp.log(jnp.maximum(y_pred, 1e-7))")
    v = confirm_rewrite(original, fixed, "loss", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["gradient"] == "none in either version (not differentiable in JAX)"


# ---- cache, missing frameworks, mixed code (no framework runs) ------------------------------------------------
def test_cache_key_differs_per_framework_and_version() -> None:
    job = {"original": "a", "fixed": "b", "call": {"kind": "function", "name": "f"}, "inputs": {}, "dtype": "float32"}
    vers = {"tensorflow": "2.21.0", "keras": "3.1", "torch": "2.13.0+cpu", "jax": "0.10.2", "jaxlib": "0.10.2"}
    keys = {fw: confirm._cache_key(job, vers, fw) for fw in ("tensorflow", "torch", "jax")}
    assert len(set(keys.values())) == 3
    assert confirm._cache_key(job, dict(vers, torch="2.14.0"), "torch") != keys["torch"]
    assert confirm._cache_key(job, dict(vers, torch="2.14.0"), "jax") == keys["jax"]
    assert confirm._cache_key(job, dict(vers, jaxlib="0.10.3"), "jax") != keys["jax"]
    assert confirm._cache_key(job, dict(vers, keras="3.2"), "tensorflow") != keys["tensorflow"]


def test_missing_framework_leaves_the_fix_unconfirmed(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(confirm_worker, "_versions", {confirm_worker.python(): {
        "tensorflow": "2.21.0", "keras": "3.1", "torch": None, "jax": None, "jaxlib": None}})
    started = STATS["started"]
    v = confirm_rewrite(TORCH_XENT, TORCH_XENT.replace("torch.log(y_pred)", "torch.log(y_pred.clamp_min(1e-7))"),
                        "crossentropy", cache_dir=str(tmp_path))
    assert v.confirmed is None and v.evidence["reason"] == "PyTorch is not installed (pip install torch)"
    v = confirm_rewrite(JAX_XENT, JAX_XENT.replace("jnp.log(y_pred)", "jnp.log(jnp.maximum(y_pred, 1e-7))"),
                        "crossentropy", cache_dir=str(tmp_path))
    assert v.confirmed is None and v.evidence["reason"] == "JAX is not installed (pip install jax)"
    assert STATS["started"] == started


def test_mixed_tensorflow_and_torch_loss_is_not_run(tmp_path) -> None:  # noqa: ANN001
    original = _src("""
        import tensorflow as tf
        import torch

        def loss(y_true, y_pred):
            return -tf.reduce_mean(y_true * tf.math.log(y_pred)) + torch.zeros(()).item()
    """)
    fixed = original.replace("tf.math.log(y_pred)", "tf.math.log(tf.maximum(y_pred, 1e-7))")
    started = STATS["started"]
    v = confirm_rewrite(original, fixed, "loss", cache_dir=str(tmp_path))
    assert v.confirmed is None and "mixes TensorFlow and PyTorch" in v.evidence["reason"]
    assert STATS["started"] == started


# ---- an undefined model (the identity stands in) and `params["w"]` dict parameters ---------------------------
EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.jax
def test_jax_example_fixes_are_confirmed_with_the_model_stood_in(cache) -> None:  # noqa: ANN001
    """examples/jax_grad_buggy.py: `model.apply(params, x)` (`model` is defined nowhere) runs as the identity on `x`,
    which then holds the model's probabilities; `x @ params["w"] + params["b"]` gets `params` as a dict of a (d, d)
    matrix and a (d,) vector, differentiated as `jax.grad(logistic_loss)` does."""
    path = EXAMPLES / "jax_grad_buggy.py"
    source = path.read_text()
    result = lint_module_source(source, str(path))
    out = [d for d in confirm_file(str(path), source, result.diagnostics, cache_dir=cache)
           if d.fix is not None and d.fix.applicability == "safe"]
    assert sorted(d.code for d in out) == ["LL101", "LL101", "LL102"], [(d.code, d.fix.evidence) for d in out]
    assert all(d.fix.confirmed is True for d in out), [d.fix.evidence for d in out]
    for d in out:
        ev = d.fix.evidence
        assert ev["framework"] == "jax" and ev["max_value_diff"] <= ev["tolerance"]
        assert ev["max_grad_diff"] is not None and ev["max_grad_diff"] <= ev["grad_tolerance"]
        if d.code == "LL101":
            assert ev["stand_ins"] == ["model.apply -> identity on x"]
            assert ev["inputs"]["x"] == "probabilities (8, 5)" and ev["inputs"]["params"] == "None (not read by the loss itself)"
            assert ev["grad_params"] == ["x"] and ev["nonfinite_original_edge"] > 0 == ev["nonfinite_fixed_edge"]
        else:
            assert "stand_ins" not in ev and ev["grad_params"] == ["params", "x"]
    module = cst.parse_module(source)
    h = harness_for(module, chain_by_qualname(module, "logistic_loss"))
    spec = infer_inputs(h.source, h.func, h.params, None)
    assert spec["params"][0] == {"name": "params", "kind": "logits", "grad": True, "keys": {"w": [5, 5], "b": [5]}}
    assert spec["shape"] == [8, 5]  # not squared: `x @ params["w"]` keeps x's shape


@pytest.mark.jax
def test_jax_wrong_rewrites_of_the_example_losses_are_still_rejected(cache) -> None:  # noqa: ANN001
    source = (EXAMPLES / "jax_grad_buggy.py").read_text()
    wrong = source.replace("jnp.log(probs)", "jnp.log(probs + 1e-2)")
    v = confirm_rewrite(source, wrong, "bce_loss", cache_dir=cache)
    assert v.confirmed is False and "differ on normal inputs" in v.evidence["reason"], v.evidence
    assert v.evidence["stand_ins"] == ["model.apply -> identity on x"]
    wrong = source.replace("jnp.mean(jnp.log(1 + jnp.exp(-margins)))", "jnp.mean(jax.nn.softplus(margins))")
    v = confirm_rewrite(source, wrong, "logistic_loss", cache_dir=cache)
    assert v.confirmed is False and "differ on normal inputs" in v.evidence["reason"], v.evidence


@pytest.mark.jax
def test_an_undefined_name_not_used_as_a_model_still_blocks_the_harness(cache) -> None:  # noqa: ANN001
    """Only a model-like name the loss only calls, on one of its parameters, and that nothing binds, is stood in."""
    helper = _src("""
        import jax
        import jax.numpy as jnp

        def loss_fn(params, x, labels):
            probs = jax.nn.sigmoid(x)
            return -jnp.mean(labels * jnp.log(probs)) + l2_penalty(params)
    """)
    fixed = helper.replace("jnp.log(probs)", "jnp.log(jnp.clip(probs, 1e-7, 1.0))")
    v = confirm_rewrite(helper, fixed, "loss_fn", cache_dir=cache)
    assert v.confirmed is None and "`l2_penalty` is not defined at module level" in v.evidence["reason"], v.evidence
    read = helper.replace("+ l2_penalty(params)", "+ 0.0 * len(model.layers) + model.apply(params, x).sum() * 0")
    v = confirm_rewrite(read, read.replace("jnp.log(probs)", "jnp.log(jnp.clip(probs, 1e-7, 1.0))"), "loss_fn",
                        cache_dir=cache)
    assert v.confirmed is None and "`model` is not defined at module level" in v.evidence["reason"], v.evidence
    bound = _src("""
        import jax.numpy as jnp

        def loss_fn(params, x, labels):
            probs = model.apply(params, x)
            return -jnp.mean(labels * jnp.log(probs))

        with open("config.json") as f:
            model = f
    """)
    v = confirm_rewrite(bound, bound.replace("jnp.log(probs)", "jnp.log(jnp.clip(probs, 1e-7, 1.0))"), "loss_fn",
                        cache_dir=cache)
    assert v.confirmed is None and "`model` is not defined at module level" in v.evidence["reason"], v.evidence


@pytest.mark.jax
def test_jax_stood_in_model_followed_by_an_activation_is_fed_logits(cache) -> None:  # noqa: ANN001
    original = _src("""
        import jax
        import jax.numpy as jnp

        def loss_fn(params, batch, labels):
            logits = apply_fn({"params": params}, batch, train=False)
            probs = jax.nn.softmax(logits)
            return -jnp.mean(jnp.sum(labels * jnp.log(probs), axis=-1))
    """)
    fixed = original.replace("jnp.log(probs)", "jax.nn.log_softmax(logits)")
    v = confirm_rewrite(original, fixed, "loss_fn", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["stand_ins"] == ["apply_fn -> identity on batch"]
    assert v.evidence["inputs"]["batch"] == "logits (8, 5)" and v.evidence["inputs"]["params"] == "None (not read by the loss itself)"
    assert v.evidence["edges"]["large_logits"]["original"] > 0 and v.evidence["edges"]["large_logits"]["fixed"] == 0


@pytest.mark.torch
def test_torch_undefined_net_and_dict_params_are_confirmed_under_torch(cache) -> None:  # noqa: ANN001
    original = _src("""
        import torch

        def loss_fn(x, y):
            probs = torch.softmax(net(x), dim=-1)
            return -(y * torch.log(probs)).sum(dim=-1).mean()

        def linear_loss(params, x, labels):
            margins = labels * (x @ params["w"] + params["b"])
            return torch.log(1 + torch.exp(-margins)).mean()
    """)
    fixed = original.replace("torch.log(probs)", "torch.log_softmax(net(x), dim=-1)")
    v = confirm_rewrite(original, fixed, "loss_fn", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["stand_ins"] == ["net -> identity on x"] and v.evidence["inputs"]["x"] == "logits (8, 5)"
    fixed = original.replace("torch.log(1 + torch.exp(-margins))", "torch.nn.functional.softplus(-margins)")
    v = confirm_rewrite(original, fixed, "linear_loss", cache_dir=cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["grad_params"] == ["params", "x"] and v.evidence["max_grad_diff"] is not None
    wrong = original.replace("torch.log(1 + torch.exp(-margins))", "torch.nn.functional.softplus(margins)")
    assert confirm_rewrite(original, wrong, "linear_loss", cache_dir=cache).confirmed is False
