"""LL703 duplicate-evaluation: the same model evaluated twice on the same data, the results reported as different."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.model_flow import EVALUATION, call_text, model_flow, read_only_use, same_args
from losslint.analysis.names import names_in
from losslint.analysis.walk import walk
from losslint.rules.base import Invalid, ModuleFindingsRule, Valid

_KEEP = ("x", "y", "sample_weight", "steps")


def _reported(stmt_node: cst.CSTNode, call: cst.Call) -> str | None:
    """The name the result is stored under, "print" when it is printed, else None."""
    if isinstance(stmt_node, cst.SimpleStatementLine) and len(stmt_node.body) == 1:
        small = stmt_node.body[0]
        if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1 \
                and isinstance(small.targets[0].target, cst.Name):
            return small.targets[0].target.value
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) \
                and isinstance(small.value.func, cst.Name) and small.value.func.value == "print":
            inside = False

            def enter(n: cst.CSTNode) -> bool:
                nonlocal inside
                inside = inside or n is call
                return not inside

            walk(small.value, enter)
            return "print" if inside else None
    return None


def _print_label(stmt_node: cst.CSTNode) -> tuple[str, ...]:
    """The literal text of a `print(...)` statement's strings (its label), for comparing two printed results."""
    parts: list[str] = []

    def enter(n: cst.CSTNode) -> bool:
        if isinstance(n, cst.SimpleString):
            v = n.evaluated_value
            parts.append(v if isinstance(v, str) else "")
        elif isinstance(n, cst.FormattedStringText):
            parts.append(n.value)
        return True

    walk(stmt_node, enter)
    return tuple(" ".join(p.split()) for p in parts)


def _compared_later(region, after: int, a: str, b: str) -> bool:  # type: ignore[no-untyped-def]
    """Is there an `assert` (statement or assert* call) mentioning both results after `after`?"""
    for s in region.stmts:
        if s.index <= after or not isinstance(s.node, cst.SimpleStatementLine):
            continue
        for small in s.node.body:
            names = set(names_in(small))
            if a in names and b in names:
                if isinstance(small, cst.Assert):
                    return True
                if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                    f = small.value.func
                    fname = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) \
                        else ""
                    if fname.lower().startswith("assert"):
                        return True
    return False


class DuplicateEvaluation(ModuleFindingsRule):
    code = "LL703"
    name = "duplicate-evaluation"
    summary = "the same model evaluated twice on the same data with no training between, reported as two results"
    what_it_does = (
        "Finds two `model.evaluate(...)` calls on the same model with the same data (same `x`, `y`, `sample_weight`; "
        "`verbose` and `batch_size` do not matter) in one block, with nothing between them that trains, recompiles, "
        "loads or otherwise touches the model or redefines the data, whose results are stored under different names "
        "or both printed, as if they measured different things."
    )
    why_bad = (
        "evaluate() is deterministic for a fixed model and data (dropout is off): the second call returns the same "
        "number as the first, up to float rounding. Code that labels them as two experiments (\"loss for batch "
        "size 10\" and \"for batch size 100\") reports one result twice; the measurement it wanted, each model right "
        "after its own training, was never taken."
    )
    example = """\
        loss_small = model.evaluate(X_train, y_train, verbose=0)
        loss_large = model.evaluate(X_train, y_train, verbose=0)
    """
    use_instead = """\
        model_small.fit(X_train, y_train, batch_size=10)
        loss_small = model_small.evaluate(X_train, y_train, verbose=0)
        model_large.fit(X_train, y_train, batch_size=100)
        loss_large = model_large.evaluate(X_train, y_train, verbose=0)
    """
    fix_safety = "No automatic fix yet: the missing measurement has to be taken where the training happens."
    scoped = False
    outside_scope = "model evaluation sequence"

    def _compute(self) -> dict[int, str]:
        flow = model_flow(self.context.index)
        found: dict[int, str] = {}
        for region in list(flow.regions.values()):
            evals = [e for e in region.events if e.kind in EVALUATION]
            for i, e2 in enumerate(evals):
                prior = [e for e in evals[:i] if e.model == e2.model and e.stmt.index < e2.stmt.index]
                if not prior:
                    continue
                e1 = prior[-1]
                if e1.stmt.path != e2.stmt.path or not same_args(e1.call, e2.call, _KEEP):
                    continue
                r1, r2 = _reported(e1.stmt.node, e1.call), _reported(e2.stmt.node, e2.call)
                if r1 is None or r2 is None or (r1 == r2 and r1 != "print"):
                    continue
                if (r1 == "print") != (r2 == "print"):
                    continue  # printed once, stored once: a re-run evaluation, not two results set side by side
                if r1 == "print" and _print_label(e1.stmt.node) == _print_label(e2.stmt.node):
                    continue  # printed under the same label: the same measurement shown twice
                data = set(names_in(e2.call.func.value)) | {n for a in e2.call.args for n in names_in(a.value)}
                if any(flow.defined_between(region, n, e1.stmt.index, e2.stmt.index) for n in data):
                    continue
                if r1 != "print" and _compared_later(region, e2.stmt.index, r1, r2):
                    continue  # the two results are checked to be equal: a deliberate reproducibility test
                between = flow.stmts_between(region, e1.stmt.index, e2.stmt.index)
                if not all(read_only_use(s, e2.model) for s in between):
                    continue
                what = f"`{r2}`" if r2 != "print" else "the printed value"
                earlier = f"`{r1}`" if r1 != "print" else "the value printed before"
                found[id(e2.call)] = (
                    f"`{call_text(e2.call, 45)}` evaluates the same model on the same data as before, with no "
                    f"training in between: {what} is the same number as {earlier} (up to rounding), so it cannot "
                    f"show a difference; evaluate each model right after its own training")
        return found

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    VALID = [
        Valid("""
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X_train, y_train, batch_size=10)
            loss_small = model.evaluate(X_train, y_train, verbose=0)
            model.fit(X_train, y_train, batch_size=100)
            loss_large = model.evaluate(X_train, y_train, verbose=0)
        """, "training between the two evaluations"),
        Valid("""
            import keras

            train_loss = model.evaluate(x_train, y_train, verbose=0)
            test_loss = model.evaluate(x_test, y_test, verbose=0)
        """, "different data"),
        Valid("""
            import tensorflow as tf

            loss_a = model_a.evaluate(X, y, verbose=0)
            loss_b = model_b.evaluate(X, y, verbose=0)
        """, "different models"),
        Valid("""
            import tensorflow as tf

            before = model.evaluate(X, y)
            model.load_weights("best.h5")
            after = model.evaluate(X, y)
        """, "weights loaded between"),
        Valid("""
            import tensorflow as tf

            score = model.evaluate(X, y)
            score = model.evaluate(X, y)
        """, "the same name: a repeated cell, not two results"),
        Valid("""
            import tensorflow as tf

            full = model.evaluate(X, y)
            weighted = model.evaluate(X, y, sample_weight=w)
        """, "different sample weights"),
        Valid("""
            import tensorflow as tf

            base = model.evaluate(X_test, y_test)
            X_test = X_test + noise
            noisy = model.evaluate(X_test, y_test)
        """, "the data changed between"),
        Valid("""
            from keras.optimizers import Adam

            new_model.compile(Adam(learning_rate=0.0001), loss="categorical_crossentropy", metrics=["accuracy"])
            new_model.fit(train_batches, epochs=20, verbose=2)
            print("Testing loss: {:.4f} accuracy: {:.4f}".format(*new_model.evaluate(test_tensors, test_targets)))
            score = new_model.evaluate(test_tensors, test_targets)
            print("Test accuracy:", score[1])
        """, "printed once, then evaluated again into a name: a re-run notebook cell, not two results "
             "(Deep Learning for Vision Systems, chapter 6)"),
        Valid("""
            import tensorflow as tf

            print("test loss:", model.evaluate(X_test, y_test, verbose=0))
            print("test loss:", model.evaluate(X_test, y_test, verbose=0))
        """, "the same label printed twice: the same measurement shown twice"),
    ]
    VALID.append(Valid("""
        import keras

        def test_evaluate_with_different_batch_size_same_loss(self):
            model.compile(loss="mse")
            loss1 = model.evaluate(x, y, batch_size=80)
            loss2 = model.evaluate(x, y, batch_size=100)
            self.assertAllClose(loss1, loss2)
    """, "the two results are asserted equal: a deliberate test (keras trainer_test.py)"))
    INVALID = [
        Invalid("""
            import tensorflow as tf

            history_large = model.fit(X_train, y_train, epochs=10, batch_size=100, verbose=0)
            loss_small = model.evaluate(X_train, y_train, verbose=0)
            print(f"Final Training Loss (Batch Size 10): {loss_small}")
            loss_large = model.evaluate(X_train, y_train, verbose=0)
            print(f"Final Training Loss (Batch Size 100): {loss_large}")
        """, "LL703", 6, "the seed"),
        Invalid("""
            import keras

            acc_before = model.evaluate(x_val, y_val, batch_size=32)
            acc_after = model.evaluate(x_val, y_val, batch_size=128)
        """, "LL703", 4, "only the batch size differs"),
        Invalid("""
            import tensorflow as tf

            print("SGD:", model.evaluate(X, y, verbose=0))
            print("Adam:", model.evaluate(X, y, verbose=0))
        """, "LL703", 4, "both printed with different labels"),
        Invalid("""
            import tensorflow as tf

            def compare(model, X, y):
                first = model.evaluate(X, y)
                model.summary()
                second = model.evaluate(X, y)
                return first, second
        """, "LL703", 6, "inside a function; summary() does not change the model"),
        Invalid("""
            from keras.models import Sequential

            score1 = clf.evaluate(x=X_test, y=Y_test, verbose=0)
            preds = clf.predict(X_test)
            score2 = clf.evaluate(x=X_test, y=Y_test, verbose=0)
        """, "LL703", 5, "keywords; predict() between does not train"),
        Invalid("""
            import tensorflow as tf

            loss_lr1 = net.evaluate(test_ds)
            loss_lr2 = net.evaluate(test_ds)
        """, "LL703", 4, "a dataset"),
    ]
