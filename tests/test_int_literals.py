"""Integer literals in any spelling Python allows (`0x20`, `1_000`, `-1`) read as numbers, never crash a rule."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint.analysis.calls import int_literal, int_literals
from losslint.api import lint_source


@pytest.mark.parametrize(("text", "value"), [("2", 2), ("-1", -1), ("0x20", 32), ("1_000", 1000), ("0o17", 15),
                                             ("0b11", 3), ("x", None), ("2.0", None)])
def test_int_literal(text: str, value: int | None) -> None:
    assert int_literal(cst.parse_expression(text)) == value


def test_int_literals() -> None:
    assert int_literals(cst.parse_expression("[1, -1, 0x2]")) == [1, -1, 2]
    assert int_literals(cst.parse_expression("(1, n)")) is None
    assert int_literals(None) is None


def test_a_hex_batch_size_is_reported_with_its_value_not_an_internal_error() -> None:
    source = textwrap.dedent("""\
        import tensorflow as tf

        BATCH_SIZE = 0x20


        def loss(y_true, y_pred):
            return tf.reduce_sum(tf.square(y_true - y_pred), axis=1) / BATCH_SIZE + tf.reduce_mean(y_pred, axis=0x1)


        model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss=loss)
    """)
    result = lint_source(source, "hex.py")
    assert result.error is None, result.error
    ll303 = [d for d in result.diagnostics if d.code == "LL303"]
    assert ll303 and ll303[0].fix is not None and ll303[0].fix.batch == 32
