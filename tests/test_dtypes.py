"""The dtype arithmetic LL108 and the fixes' eps choice rest on, checked against NumPy's own rounding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from losslint.analysis.dtypes import _round_bits, round_to, smallest_safe_eps, underflows, vanishes


def test_known_facts():
    assert vanishes(1.0, -1e-8, "float32") and not vanishes(1.0, -1e-7, "float32")
    assert underflows(1e-8, "float16") and not underflows(1e-7, "float16")
    assert round_to(1e-8, "float16") == 0.0
    assert vanishes(1.0, 1e-7, "float16")
    assert not vanishes(1.0, -1e-8, "float64")
    assert smallest_safe_eps("float32") == 1e-7
    assert smallest_safe_eps("float16") == 1e-3


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-7e4, max_value=7e4))
def test_bit_rounding_matches_numpy_float16_and_float32(x):
    # the exact rounder used for bfloat16 (which NumPy lacks) must agree with NumPy where NumPy has the format
    with np.errstate(over="ignore"):  # beyond 65504 NumPy rounds to inf, as _round_bits must
        assert _round_bits(x, 10, -14, 65504.0) == float(np.float16(x))
    assert _round_bits(x, 23, -126, float(np.finfo(np.float32).max)) == float(np.float32(x))
