"""Fix confirmation: harness extraction, verdicts, the cache, and real TensorFlow runs (marked `tensorflow`).

The TensorFlow tests share one child process (the confirmer keeps it for the whole session) and one cache directory.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap

import libcst as cst
import pytest

from losslint.engine import lint_module_source
from losslint.fixes import confirm
from losslint.fixes.confirm import STATS, Verdict, confirm_file, confirm_files, confirm_rewrite
from losslint.fixes.confirm import worker as confirm_worker
from losslint.fixes.confirm.extract import Isolation, chain_by_qualname, harness_for, infer_inputs
from losslint.fixes.confirm.verdict import decide
from losslint.model import Diagnostic, Edit, Fix, Position, Range, Severity
from losslint.rules import all_rules


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _harness(source: str, qualname: str):  # noqa: ANN202
    module = cst.parse_module(_src(source))
    return harness_for(module, chain_by_qualname(module, qualname))


def _find(source: str, needle: str, occurrence: int = 0) -> Range:
    """The Range of the `occurrence`-th `needle` in `source` (single line)."""
    idx = -1
    for _ in range(occurrence + 1):
        idx = source.index(needle, idx + 1)
    line = source.count("\n", 0, idx)
    col = idx - (source.rfind("\n", 0, idx) + 1)
    return Range(Position(line, col), Position(line, col + len(needle)))


def _diag(source: str, needle: str, new_text: str, code: str = "LL101") -> Diagnostic:
    rng = _find(source, needle)
    return Diagnostic(code, "test", "test", rng, Severity.WARNING,
                      fix=Fix("test fix", "safe", (Edit(rng, new_text),)))


MODULE_WITH_HELPER = _src("""
    import os
    import tensorflow as tf
    from mypkg.data import load_everything

    EPS = 1e-7
    SCALE = 2.0 * EPS
    DATA = load_everything()


    def _weights(y_true):
        return 1.0 + SCALE * tf.reduce_sum(y_true, axis=-1)


    def unrelated():
        return os.listdir(".")


    def crossentropy(y_true, y_pred):
        return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1) * _weights(y_true)
""")


# ---- harness extraction (no TensorFlow) ----------------------------------------------------------------------
def test_harness_keeps_only_what_the_loss_reads() -> None:
    h = _harness(MODULE_WITH_HELPER, "crossentropy")
    assert "import tensorflow as tf" in h.source
    assert "EPS = 1e-7" in h.source and "SCALE = 2.0 * EPS" in h.source
    assert "def _weights" in h.source and "def crossentropy" in h.source
    assert "mypkg" not in h.source and "DATA" not in h.source and "unrelated" not in h.source
    assert "import os" not in h.source
    compile(h.source, "<harness>", "exec")
    assert h.call == {"kind": "function", "name": "crossentropy"}


def test_harness_refuses_user_imports_and_user_computed_constants() -> None:
    with pytest.raises(Isolation, match="mypkg"):
        _harness("""
            import tensorflow as tf
            from mypkg.losses import base

            def loss(y_true, y_pred):
                return base(y_true, y_pred) + tf.reduce_mean(tf.math.log(y_pred))
        """, "loss")
    with pytest.raises(Isolation, match="load_weights"):
        _harness("""
            import tensorflow as tf

            def load_weights():
                return tf.ones(5)

            W = load_weights()

            def loss(y_true, y_pred):
                return tf.reduce_mean(W * tf.math.log(y_pred))
        """, "loss")
    with pytest.raises(Isolation, match="relative import"):
        _harness("""
            import tensorflow as tf
            from .helpers import smooth

            def loss(y_true, y_pred):
                return tf.reduce_mean(tf.math.log(smooth(y_pred)))
        """, "loss")


def test_harness_for_a_loss_class_method_and_a_factory() -> None:
    h = _harness("""
        import keras
        from keras import ops

        class Kld(keras.losses.Loss):
            def call(self, y_true, y_pred):
                return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)
    """, "Kld.call")
    assert h.call == {"kind": "method", "class": "Kld", "method": "call"}
    assert [p.name.value for p in h.params] == ["y_true", "y_pred"]
    module = cst.parse_module(_src("""
        import tensorflow as tf

        def make_loss(gamma=2.0):
            def loss(y_true, y_pred):
                return tf.reduce_mean((1 - y_pred) ** gamma * tf.math.log(y_pred))
            return loss
    """))
    outer = module.body[1]
    inner = outer.body.body[0]
    h = harness_for(module, [outer, inner])
    assert h.call == {"kind": "factory", "name": "make_loss"}


def test_input_inference_from_the_contract() -> None:
    h = _harness("""
        import tensorflow as tf

        def loss(labels, logits):
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
    """, "loss")
    spec = infer_inputs(h.source, h.func, h.params, None)
    assert [(p["name"], p["kind"], p["grad"]) for p in spec["params"]] == [("labels", "labels", False),
                                                                          ("logits", "logits", True)]
    assert spec["label_kind"] == "binary" and spec["shape"] == [8, 5]
    h = _harness("""
        import tensorflow as tf

        def dice(y_true, y_pred):
            return tf.reduce_sum(y_true * y_pred, axis=[1, 2, 3]) / tf.reduce_sum(y_pred[..., 6])
    """, "dice")
    spec = infer_inputs(h.source, h.func, h.params, None)
    assert len(spec["shape"]) == 4 and spec["shape"][-1] == 7
    h = _harness("""
        import tensorflow as tf

        def mse(a, b):
            return tf.reduce_mean(tf.square(a - b))
    """, "mse")
    spec = infer_inputs(h.source, h.func, h.params, None)
    assert spec["label_kind"] == "regression" and spec["params"][1]["kind"] == "real"
    with pytest.raises(Isolation, match="params"):
        h = _harness("""
            import tensorflow as tf

            def loss(params, x, labels):
                return tf.reduce_mean(tf.math.log(x))
        """, "loss")
        infer_inputs(h.source, h.func, h.params, None)


# ---- verdicts from raw figures (no TensorFlow) ---------------------------------------------------------------
def _case(name: str, ob: int = 0, fb: int = 0, vdiff: float = 0.0, gdiff: float = 0.0) -> dict:
    return {"case": name, "original": {"value_nonfinite": ob, "grad_nonfinite": 0, "grad_none": [False]},
            "fixed": {"value_nonfinite": fb, "grad_nonfinite": 0, "grad_none": [False]},
            "compare": {"max_value_diff": vdiff, "max_value_abs": 1.0, "max_grad_diff": gdiff, "max_grad_abs": 1.0}}


def test_decide() -> None:
    ok = decide({"cases": [_case("normal"), _case("exact_probs", 4, 0)]}, {"dtype": "float32"})
    assert ok.confirmed is True and ok.evidence["nonfinite_original_edge"] == 4
    bad = decide({"cases": [_case("normal", vdiff=0.5), _case("exact_probs", 4, 0)]}, {"dtype": "float32"})
    assert bad.confirmed is False and "values differ" in bad.evidence["reason"]
    assert bad.evidence["max_value_diff"] == 0.5 and bad.evidence["tolerance"] < 0.5
    fp16 = decide({"cases": [_case("normal", vdiff=0.005)]}, {"dtype": "float16"})
    assert fp16.confirmed is True  # within float16's tolerance, not float32's
    still = decide({"cases": [_case("normal"), _case("exact_probs", 4, 4)]}, {"dtype": "float32"})
    assert still.confirmed is False and "still" in still.evidence["reason"]
    new = decide({"cases": [_case("normal"), _case("all_zero", 0, 2)]}, {"dtype": "float32"})
    assert new.confirmed is False and "where the original is finite" in new.evidence["reason"]
    raises = decide({"cases": [{"case": "normal", "original": {"error": "TypeError: x"}, "fixed": {}}]}, {})
    assert raises.confirmed is None and "TypeError" in raises.evidence["reason"]
    json.dumps(ok.evidence), json.dumps(bad.evidence)


# ---- without TensorFlow, and outside TensorFlow ---------------------------------------------------------------
@pytest.fixture
def no_tf_python(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """An interpreter that cannot see site-packages (so no TensorFlow): `python -S`."""
    script = tmp_path / "python-without-tf"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("LOSSLINT_CONFIRM_PYTHON", str(script))
    monkeypatch.setattr(confirm_worker, "_versions", {})
    return script


@pytest.mark.skipif(os.name != "posix", reason="uses a shell wrapper as the interpreter")
def test_without_tensorflow_fixes_stay_unconfirmed(no_tf_python, tmp_path) -> None:  # noqa: ANN001
    source = _src("""
        import tensorflow as tf

        def crossentropy(y_true, y_pred):
            return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
    """)
    result = lint_module_source(source, "loss.py")
    assert any(d.fix for d in result.diagnostics)
    started = STATS["started"]
    out = confirm_file("loss.py", source, result.diagnostics, cache_dir=str(tmp_path / "cache"))
    fixed = [d for d in out if d.fix]
    assert fixed and all(d.fix.confirmed is None for d in fixed)
    assert "TensorFlow is not installed" in fixed[0].fix.evidence["reason"]
    assert STATS["started"] == started  # no TensorFlow process was started for nothing
    json.dumps(fixed[0].fix.evidence)


def test_non_tensorflow_code_and_unfixable_diagnostics(tmp_path) -> None:  # noqa: ANN001
    mxnet_src = _src("""
        import mxnet as mx

        def loss(pred, target):
            return -(target * mx.nd.log(pred)).mean()
    """)
    d = _diag(mxnet_src, "mx.nd.log(pred)", "mx.nd.log(mx.nd.maximum(pred, 1e-7))")
    plain = Diagnostic("LL103", "x", "x", d.range, Severity.WARNING)
    out = confirm_file("t.py", mxnet_src, (d, plain), cache_dir=str(tmp_path))
    assert out[0].fix.confirmed is None and "MXNet code" in out[0].fix.evidence["reason"]
    assert out[1] is plain
    module_level = _src("""
        import tensorflow as tf
        p = tf.constant([0.5])
        x = tf.math.log(p)
    """)
    d = _diag(module_level, "tf.math.log(p)", "tf.math.log(tf.maximum(p, 1e-7))")
    out = confirm_file("m.py", module_level, (d,), cache_dir=str(tmp_path))
    assert out[0].fix.confirmed is None and "not inside a function" in out[0].fix.evidence["reason"]


# ---- real TensorFlow ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf_cache(tmp_path_factory):  # noqa: ANN001, ANN201
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'losslint[verify]')")
    return str(tmp_path_factory.mktemp("confirm-cache"))


XENT = _src("""
    import tensorflow as tf

    def crossentropy(y_true, y_pred):
        return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
""")


@pytest.mark.tensorflow
def test_accepts_bounded_log(tf_cache) -> None:  # noqa: ANN001
    fixed = XENT.replace("tf.math.log(y_pred)", "tf.math.log(tf.maximum(y_pred, 1e-7))")
    v = confirm_rewrite(XENT, fixed, "crossentropy", cache_dir=tf_cache)
    assert v.confirmed is True, v.evidence
    ev = v.evidence
    assert ev["max_value_diff"] <= ev["tolerance"] and ev["max_grad_diff"] <= ev["grad_tolerance"]
    assert ev["nonfinite_original_edge"] > 0 and ev["nonfinite_fixed_edge"] == 0
    assert ev["inputs"] == {"y_true": "one-hot labels (8, 5)", "y_pred": "probabilities (8, 5)"}
    assert ev["tensorflow"] and ev["dtype"] == "float32"
    json.dumps(ev)


@pytest.mark.tensorflow
def test_accepts_log_softmax(tf_cache) -> None:  # noqa: ANN001
    original = _src("""
        import tensorflow as tf

        def loss(labels, logits):
            return -tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)
    """)
    fixed = original.replace("tf.math.log(tf.nn.softmax(logits))", "tf.nn.log_softmax(logits)")
    v = confirm_rewrite(original, fixed, "loss", cache_dir=tf_cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["edges"]["large_logits"]["original"] > 0
    assert v.evidence["edges"]["large_logits"]["fixed"] == 0


@pytest.mark.tensorflow
def test_accepts_divide_no_nan_on_a_mask_normalised_loss(tf_cache) -> None:  # noqa: ANN001
    original = _src("""
        import tensorflow as tf

        def masked_mse(y_true, y_pred):
            mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
            per = tf.square(y_true - y_pred) * mask
            return tf.reduce_sum(per) / tf.reduce_sum(mask)
    """)
    fixed = original.replace("tf.reduce_sum(per) / tf.reduce_sum(mask)",
                             "tf.math.divide_no_nan(tf.reduce_sum(per), tf.reduce_sum(mask))")
    v = confirm_rewrite(original, fixed, "masked_mse", cache_dir=tf_cache)
    assert v.confirmed is True, v.evidence
    assert v.evidence["edges"]["all_zero"]["original"] > 0 and v.evidence["edges"]["all_zero"]["fixed"] == 0


@pytest.mark.tensorflow
def test_rejects_the_seed_expm1_rewrite(tf_cache) -> None:  # noqa: ANN001
    original = _src("""
        import tensorflow as tf

        def exp_loss(y_true, y_pred):
            return tf.reduce_mean(tf.exp(tf.square(y_true - y_pred)))
    """)
    fixed = original.replace("tf.exp(tf.square(y_true - y_pred))", "tf.math.expm1(tf.abs(y_true - y_pred))")
    v = confirm_rewrite(original, fixed, "exp_loss", cache_dir=tf_cache)
    assert v.confirmed is False
    ev = v.evidence
    assert "values differ" in ev["reason"]
    assert ev["max_value_diff"] > ev["tolerance"] > 0


@pytest.mark.tensorflow
def test_rejects_a_1e8_clip_under_mixed_float16(tf_cache) -> None:  # noqa: ANN001
    fixed = XENT.replace("tf.math.log(y_pred)", "tf.math.log(tf.clip_by_value(y_pred, 1e-8, 1.0))")
    v = confirm_rewrite(XENT, fixed, "crossentropy", dtype="float16", cache_dir=tf_cache)
    assert v.confirmed is False, v.evidence
    assert v.evidence["nonfinite_fixed_edge"] > 0 and "still gives NaN/Inf" in v.evidence["reason"]
    assert v.evidence["dtype"] == "float16"
    # the same rewrite is fine in float32 ...
    assert confirm_rewrite(XENT, fixed, "crossentropy", cache_dir=tf_cache).confirmed is True
    # ... and confirm_file reads the policy from the module
    source = _src("""
        import tensorflow as tf
        from tensorflow.keras import mixed_precision

        mixed_precision.set_global_policy("mixed_float16")

        def crossentropy(y_true, y_pred):
            return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
    """)
    d = _diag(source, "tf.math.log(y_pred)", "tf.math.log(tf.clip_by_value(y_pred, 1e-8, 1.0))")
    (out,) = confirm_file("mp.py", source, (d,), cache_dir=tf_cache)
    assert out.fix.confirmed is False and out.fix.evidence["dtype"] == "float16"
    assert out.fix.evidence["nonfinite_fixed_edge"] > 0


@pytest.mark.tensorflow
def test_confirm_file_on_a_module_with_a_helper_and_a_constant(tf_cache) -> None:  # noqa: ANN001
    source = MODULE_WITH_HELPER
    result = lint_module_source(source, "losses.py")
    fixes = [d for d in result.diagnostics if d.fix is not None]
    assert fixes, result.diagnostics
    out = confirm_file("losses.py", source, result.diagnostics, cache_dir=tf_cache)
    assert len(out) == len(result.diagnostics)
    confirmed = [d for d in out if d.fix is not None]
    assert all(d.fix.confirmed is True for d in confirmed), [d.fix.evidence for d in confirmed]
    assert confirmed[0].fix.evidence["function"] == "crossentropy"


# Examples whose fix is not confirmed as the example stands: (rule, a line of the example) -> what the evidence
# says. Each is a harness limit, not a wrong fix: the confirmer cannot run the code in isolation.
UNCONFIRMABLE_EXAMPLES = {
    # TF1 graph code whose weights `W`, `b` are defined elsewhere: no synthetic input fits a bias
    ("LL604", "y = tf.nn.softmax(tf.matmul(x, W) + b)"): "no synthetic input fits parameter `b`",
}


@pytest.mark.tensorflow
@pytest.mark.torch
@pytest.mark.jax
def test_confirms_every_rules_expected_fix(tf_cache) -> None:  # noqa: ANN001
    """Every INVALID example with a `fixed` text is confirmed under its own framework: TensorFlow/Keras, PyTorch or
    JAX (each in its own process), but for the few PyTorch/JAX examples listed above, which say why they are not."""
    items, frameworks, known = [], [], []
    for rule in all_rules():
        for k, ex in enumerate(rule.INVALID):
            if ex.fixed is None:
                continue
            res = lint_module_source(ex.text, f"{rule.code}_{k}.py")
            items.append((res.path, ex.text, res.diagnostics))
            frameworks.append("torch" if "import torch" in ex.text else "jax" if "import jax" in ex.text
                              else "tensorflow")
            known.append(next((why for (code, line), why in UNCONFIRMABLE_EXAMPLES.items()
                               if code == rule.code and line in ex.text), None))
    assert items
    out = confirm_files(items, cache_dir=tf_cache)
    seen = {"tensorflow": 0, "torch": 0, "jax": 0}
    for (path, _, _), diags, fw, why in zip(items, out, frameworks, known):
        for d in diags:
            if d.fix is None:
                continue
            if why is not None and d.fix.confirmed is not True:
                assert why in d.fix.evidence["reason"], (path, d.fix.evidence)
                continue
            assert d.fix.confirmed is True, (path, d.fix.evidence)
            assert d.fix.evidence["framework"] == fw, (path, d.fix.evidence)
            seen[fw] += 1
    assert seen["tensorflow"] >= 8 and seen["torch"] >= 8 and seen["jax"] >= 4, seen


@pytest.mark.tensorflow
def test_second_call_is_a_cache_hit(tf_cache) -> None:  # noqa: ANN001
    original = _src("""
        import tensorflow as tf

        def cached_loss(y_true, y_pred):
            return tf.sqrt(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1))
    """)
    fixed = original.replace("tf.sqrt(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1))",
                             "tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(y_true - y_pred), axis=-1), 1e-12))")
    first = confirm_rewrite(original, fixed, "cached_loss", cache_dir=tf_cache)
    assert first.confirmed is True and "cached" not in first.evidence
    jobs, hits = STATS["jobs"], STATS["cache_hits"]
    started = STATS["started"]
    second = confirm_rewrite(original, fixed, "cached_loss", cache_dir=tf_cache)
    assert second.confirmed is True and second.evidence["cached"] is True
    # no job went to the TensorFlow process, and none was started
    assert STATS["jobs"] == jobs and STATS["cache_hits"] == hits + 1 and STATS["started"] == started
    assert {k: v for k, v in second.evidence.items() if k != "cached"} == first.evidence


@pytest.mark.tensorflow
def test_a_slow_loss_times_out_without_a_verdict(tf_cache) -> None:  # noqa: ANN001
    original = _src("""
        import time
        import tensorflow as tf

        def slow_loss(y_true, y_pred):
            time.sleep(60)
            return tf.reduce_mean(tf.math.log(y_pred))
    """)
    fixed = original.replace("tf.math.log(y_pred)", "tf.math.log(tf.maximum(y_pred, 1e-7))")
    confirm_rewrite(XENT, XENT, "crossentropy", cache_dir=tf_cache)  # the process is up before the clock starts
    v = confirm_rewrite(original, fixed, "slow_loss", timeout=3.0, cache_dir=tf_cache)
    assert v.confirmed is None and "timed out" in v.evidence["reason"]
    assert isinstance(v, Verdict)
    assert not any(name.endswith(".json") and "slow" in open(os.path.join(tf_cache, name)).read()
                   for name in os.listdir(tf_cache))  # a timeout is not cached


def test_confirm_module_exports() -> None:
    assert callable(confirm.confirm_file) and callable(confirm.confirm_files) and callable(confirm.confirm_rewrite)


@pytest.mark.tensorflow
def test_two_fixes_in_one_loss_are_judged_each_on_its_own(tf_cache) -> None:  # noqa: ANN001
    """`log(p)` and `log(1 - p)` each get a fix; each alone leaves the other's NaN, so each is confirmed with the
    other applied on both sides."""
    source = _src("""
        import tensorflow as tf

        def bce(y_true, y_pred):
            return -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1 - y_true) * tf.math.log(1 - y_pred))
    """)
    result = lint_module_source(source, "bce.py")
    fixes = [d for d in result.diagnostics if d.fix is not None]
    assert len(fixes) == 2
    out = [d for d in confirm_file("bce.py", source, result.diagnostics, cache_dir=tf_cache) if d.fix is not None]
    assert [d.fix.confirmed for d in out] == [True, True], [d.fix.evidence for d in out]
    assert all("baseline" in d.fix.evidence for d in out)


@pytest.mark.tensorflow
def test_confirmations_from_two_threads_do_not_mix_their_results(tf_cache) -> None:  # noqa: ANN001
    """The language server confirms from worker threads; a cancelled confirmation's thread may still run when the
    next starts. They share the framework process, so each must get its own verdict. (Written for the shared worker;
    it first caught the version probe redirecting sys.stdout under another thread.)"""
    import threading

    good = XENT.replace("tf.math.log(y_pred)", "tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0))")
    results: dict[str, list] = {"good": [], "wrong": []}

    def run(name: str, fixed: str, n: int) -> None:
        for k in range(n):  # distinct cache keys: every call goes to the process
            src = XENT.replace("crossentropy", f"crossentropy_{name}_{k}")
            results[name].append(confirm_rewrite(src, fixed.replace("crossentropy", f"crossentropy_{name}_{k}"),
                                                 f"crossentropy_{name}_{k}", cache_dir=tf_cache).confirmed)

    threads = [threading.Thread(target=run, args=("good", good, 6)),
               threading.Thread(target=run, args=("wrong", XENT.replace("tf.math.log(y_pred)",
                                                                         "tf.math.log(y_pred + 0.5)"), 6))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert results == {"good": [True] * 6, "wrong": [False] * 6}
