"""Fixes to the loss given to `model.compile(...)` (LL601) are confirmed on a synthetic function calling that loss."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint.engine import lint_module_source
from losslint.fixes.confirm import confirm_file, confirm_files
from losslint.fixes.confirm.compiled import FUNCTION, compiled_jobs, sites
from losslint.model import Diagnostic, Edit, Fix, Position, Range, Severity
from losslint.rules import all_rules


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _find(source: str, needle: str, occurrence: int = 0) -> Range:
    idx = -1
    for _ in range(occurrence + 1):
        idx = source.index(needle, idx + 1)
    line = source.count("\n", 0, idx)
    col = idx - (source.rfind("\n", 0, idx) + 1)
    return Range(Position(line, col), Position(line, col + len(needle)))


def _diag(source: str, needle: str, new_text: str, expect: str = "changed", occurrence: int = 0) -> Diagnostic:
    rng = _find(source, needle, occurrence)
    return Diagnostic("LL601", "test", "test", rng, Severity.WARNING,
                      fix=Fix("test fix", "unsafe", (Edit(rng, new_text),), expect=expect))


def _jobs(source: str, diag: Diagnostic):  # noqa: ANN202
    from losslint.fixes.apply import apply_edits

    module = cst.parse_module(source)
    fixed, _ = apply_edits(source, list(diag.fix.edits))
    return compiled_jobs(module, source, None, "m.py", list(diag.fix.edits), fixed, "float32",
                         {"path": "m.py", "expect": diag.fix.expect})


LINEAR = _src("""
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
""")


@pytest.fixture(scope="module")
def tf_cache(tmp_path_factory):  # noqa: ANN001, ANN201
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'losslint[verify]')")
    return str(tmp_path_factory.mktemp("confirm-compiled-cache"))


# ---- finding the compile loss and building the synthetic function (no TensorFlow) ------------------------------
def test_sites_follow_the_name_to_where_the_loss_is_built() -> None:
    from losslint.analysis.index import ModuleIndex

    source = _src("""
        import tensorflow as tf

        def build():
            loss_fn = tf.keras.losses.CategoricalCrossentropy()
            model = tf.keras.Sequential([tf.keras.layers.Dense(5)])
            model.compile("adam", loss_fn)
            return model
    """)
    module = cst.parse_module(source)
    [site] = sites(ModuleIndex.build(module))
    code = [module.code_for_node(n) for n in site.nodes]
    assert site.model == "model" and code == ["loss_fn", "tf.keras.losses.CategoricalCrossentropy()"]


def test_a_string_loss_is_got_through_keras_and_the_output_is_the_models() -> None:
    diag = _diag(LINEAR, '"sparse_categorical_crossentropy"',
                 "tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    intent, job = _jobs(LINEAR, diag)
    assert f"def {FUNCTION}(y_true, y_pred)" in job.original.source
    assert 'tf.reduce_mean(tf.keras.losses.get("sparse_categorical_crossentropy")(y_true, y_pred))' \
        in job.original.source
    assert "SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred)" in job.fixed.source
    assert "Sequential" not in job.original.source  # the model is not run: its output is synthetic
    assert job.inputs["label_kind"] == "sparse" and job.inputs["shape"] == [8, 10]
    assert [p["kind"] for p in job.inputs["params"]] == ["labels", "logits"]
    assert job.base["compiled_loss"]["original"] == '"sparse_categorical_crossentropy"'
    # the intent check: the probability loss on softmax(z) against the from_logits=True one on z
    assert "tf.nn.softmax(y_logits, axis=-1)" in intent.original.source
    assert intent.base.get("expect", "same") == "same" and intent.sink is job.base["intent"]


def test_a_keras_only_module_gets_a_tensorflow_import_and_a_softmax_output_is_applied_to_logits() -> None:
    source = _src("""
        from keras.models import Sequential
        from keras.layers import Dense
        from keras.losses import CategoricalCrossentropy

        model = Sequential([Dense(16, activation="relu"), Dense(4, activation="softmax")])
        model.compile(optimizer="adam", loss=CategoricalCrossentropy(from_logits=True))
    """)
    diag = _diag(source, "CategoricalCrossentropy(from_logits=True)", "CategoricalCrossentropy(from_logits=False)")
    *_, job = _jobs(source, diag)
    assert "import tensorflow as tf" in job.original.source
    assert "from keras.losses import CategoricalCrossentropy" in job.original.source
    assert "CategoricalCrossentropy(from_logits=True)(y_true, tf.nn.softmax(y_logits, axis=-1))" \
        in job.original.source
    assert job.inputs["label_kind"] == "onehot" and job.inputs["shape"] == [8, 4]


def test_fixes_elsewhere_are_not_taken() -> None:
    source = LINEAR + "probs = tf.nn.softmax(tf.zeros([2, 3]))\n"
    assert _jobs(source, _diag(source, "tf.zeros([2, 3])", "tf.ones([2, 3])")) is None
    assert _jobs(source, _diag(source, '"adam"', '"sgd"')) is None  # compile's optimizer, not its loss


def test_a_list_of_losses_is_not_confirmed() -> None:
    source = LINEAR.replace('loss="sparse_categorical_crossentropy"', 'loss=["sparse_categorical_crossentropy"]')
    [job] = _jobs(source, _diag(source, '"sparse_categorical_crossentropy"', '"mse"'))
    assert job.verdict.confirmed is None and "a loss per model output" in job.verdict.evidence["reason"]


# ---- real TensorFlow runs ------------------------------------------------------------------------------------
@pytest.mark.tensorflow
def test_every_ll601_fix_is_confirmed_on_the_compiled_loss(tf_cache) -> None:  # noqa: ANN001
    rule = next(r for r in all_rules() if r.code == "LL601")
    items = []
    for k, ex in enumerate(rule.INVALID):
        if ex.fixed is not None:
            res = lint_module_source(ex.text, f"LL601_{k}.py")
            items.append((res.path, ex.text, res.diagnostics))
    assert len(items) >= 7
    out = confirm_files(items, cache_dir=tf_cache)
    n = 0
    for (path, _, _), diags in zip(items, out):
        for d in diags:
            if d.fix is None:
                continue
            ev = d.fix.evidence
            assert d.fix.confirmed is True, (path, ev)
            assert ev["framework"] == "tensorflow" and ev["function"] == FUNCTION and ev["expect"] == "changed"
            assert ev["compiled_loss"]["original"] and ev["compiled_loss"]["fixed"]
            assert ev["reason"].startswith("changes the loss by design") and ev["max_value_diff"] > 1e-3
            assert ev["intent"]["agrees"] is True, (path, ev["intent"])
            n += 1
    assert n >= 7


@pytest.mark.tensorflow
def test_a_fix_inside_the_compiling_function_is_confirmed(tf_cache) -> None:  # noqa: ANN001
    source = _src("""
        import tensorflow as tf

        def build(n):
            loss_fn = tf.keras.losses.CategoricalCrossentropy()
            model = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(n)])
            model.compile(optimizer="adam", loss=loss_fn)
            return model
    """)
    res = lint_module_source(source, "build.py")
    [d] = [d for d in confirm_file("build.py", source, res.diagnostics, cache_dir=tf_cache) if d.fix is not None]
    assert d.fix.confirmed is True, d.fix.evidence
    assert d.fix.evidence["compiled_loss"]["bound_through"] == ["loss_fn"]


@pytest.mark.tensorflow
def test_a_fix_that_changes_nothing_is_rejected(tf_cache) -> None:  # noqa: ANN001
    # the class with its default from_logits=False is the string loss again, reduced the same way
    diag = _diag(LINEAR, '"sparse_categorical_crossentropy"', "tf.keras.losses.SparseCategoricalCrossentropy()")
    [d] = confirm_file("same.py", LINEAR, (diag,), cache_dir=tf_cache)
    assert d.fix.confirmed is False
    assert "values and gradients agree" in d.fix.evidence["reason"]


@pytest.mark.tensorflow
def test_a_fix_whose_loss_raises_is_rejected(tf_cache) -> None:  # noqa: ANN001
    diag = _diag(LINEAR, '"sparse_categorical_crossentropy"',
                 "tf.keras.losses.SparseCategoricalCrossentropy(from_logitz=True)")
    [d] = confirm_file("raises.py", LINEAR, (diag,), cache_dir=tf_cache)
    assert d.fix.confirmed is False
    assert "raises where the original does not" in d.fix.evidence["reason"]
    assert "from_logitz" in d.fix.evidence["reason"]


@pytest.mark.tensorflow
def test_the_fixs_own_expect_is_kept(tf_cache) -> None:  # noqa: ANN001
    # the same from_logits flip claimed to keep the loss ("same") is rejected: it changes it
    diag = _diag(LINEAR, '"sparse_categorical_crossentropy"',
                 "tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)", expect="same")
    [d] = confirm_file("claims_same.py", LINEAR, (diag,), cache_dir=tf_cache)
    assert d.fix.confirmed is False and "values differ" in d.fix.evidence["reason"]


@pytest.mark.tensorflow
def test_a_users_own_loss_from_another_module_is_not_confirmed(tf_cache) -> None:  # noqa: ANN001
    source = _src("""
        import tensorflow as tf
        from mylosses import focal_loss

        model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
        model.compile(optimizer="adam", loss=focal_loss)
    """)
    diag = _diag(source, "focal_loss", "tf.keras.losses.CategoricalCrossentropy(from_logits=True)", occurrence=1)
    [d] = confirm_file("own.py", source, (diag,), cache_dir=tf_cache)
    ev = d.fix.evidence
    assert d.fix.confirmed is None
    assert ev["reason"].startswith("the compile loss `focal_loss` cannot be isolated")
    assert "from mylosses import focal_loss" in ev["reason"]
