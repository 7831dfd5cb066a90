"""From the runner's raw figures to a verdict: accept, reject (with the reason and figures) or cannot tell (None).

Normal inputs: values and gradients (with respect to the prediction parameters) must agree within a dtype-appropriate
tolerance, |fixed - original| <= atol + rtol * max|original|, over the elements finite in both.
Edge inputs (exact 0/1 probabilities, all-zero labels and masks, large logits): the fixed version must not give NaN/Inf
where the original did not, and where the original did, it must give fewer somewhere (the fix must remove at least
one of them; a fix that leaves every one in place is rejected).

A fix's `expect` changes the first test: "per-sample" (a loss reduced over the batch made per-sample: the fixed
values must sum to the original scalar, gradients equal) and "changed" (a deliberate change of value, such as a
flipped `from_logits`: the values must differ, the fixed version must be finite on normal inputs). Neither has to
remove NaN/Inf; neither may add any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOLERANCES = {  # (rtol, atol) per computation dtype
    "float64": (1e-9, 1e-12),
    "float32": (1e-4, 1e-6),
    "float16": (1e-2, 1e-3),
    "bfloat16": (5e-2, 1e-2),
}

EDGE_DESCRIPTIONS = {
    "exact_probs": "probabilities exactly 0 and 1 on the right class (zero error)",
    "exact_wrong_probs": "probabilities exactly 0 on the right class",
    "all_zero": "all-zero labels, predictions and masks",
    "zero_labels_and_masks": "all-zero labels and masks",
    "large_logits": "logits of magnitude 100, errors of 30",
}


@dataclass(frozen=True)
class Verdict:
    confirmed: bool | None
    evidence: dict = field(default_factory=dict)


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _bad(side: dict) -> int:
    if "error" in side:
        return 1
    return int(side.get("value_nonfinite", 0)) + int(side.get("grad_nonfinite", 0))


def decide(result: dict, base: dict) -> Verdict:
    """`result`: the runner's answer for one job; `base`: evidence known before running (dtype, inputs, versions)."""
    ev = dict(base)
    dtype = ev.get("dtype", "float32")
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    ev["rtol"], ev["atol"] = rtol, atol
    if result.get("stand_ins"):  # undefined models the harness replaced by the identity on their data argument
        ev["stand_ins"] = list(result["stand_ins"])
    if "error" in result:
        ev["reason"] = f"the harness could not run: {result['error']}"
        return Verdict(None, ev)
    load = result.get("load_error")
    if load:
        if "original" in load:
            ev["reason"] = f"the original cannot be loaded in isolation: {load['original']}"
            return Verdict(None, ev)
        ev["reason"] = f"the fixed version fails to load: {load['fixed']}"
        return Verdict(False, ev)
    cases = {c["case"]: c for c in result.get("cases", [])}
    normal = cases.get("normal")
    if normal is None:
        ev["reason"] = "the harness returned no result for normal inputs"
        return Verdict(None, ev)
    o, f = normal.get("original", {}), normal.get("fixed", {})
    if "error" in o:
        ev["reason"] = f"the original raises on synthetic inputs: {o['error']}"
        return Verdict(None, ev)
    if "error" in f:
        ev["reason"] = f"the fixed version raises where the original does not: {f['error']}"
        return Verdict(False, ev)
    cmp = normal.get("compare", {})
    expect = ev.get("expect", "same")
    vdiff, gdiff = _num(cmp.get("max_value_diff")), _num(cmp.get("max_grad_diff"))
    vtol = atol + rtol * (_num(cmp.get("max_value_abs")) or 0.0)
    if expect == "per-sample":
        vdiff = _num(cmp.get("sum_value_diff"))
        vtol = atol + rtol * (_num(cmp.get("sum_value_abs")) or 0.0)
        ev["values_original"], ev["values_fixed"] = o.get("value_size"), f.get("value_size")
    gtol = atol + rtol * (_num(cmp.get("max_grad_abs")) or 0.0)
    ev["tolerance"] = vtol
    ev["grad_tolerance"] = gtol
    ev["max_value_diff"] = vdiff
    ev["max_grad_diff"] = gdiff
    framework = {"torch": "PyTorch", "jax": "JAX"}.get(ev.get("framework", ""), "TensorFlow")
    ev["gradient"] = f"none in either version (not differentiable in {framework})" \
        if all(o.get("grad_none", [False])) and all(f.get("grad_none", [False])) else "with respect to " + \
        ", ".join(ev.get("grad_params", []) or ["the predictions"])
    # edge cases
    edges: dict[str, list[int]] = {}
    for name, c in cases.items():
        if name == "normal":
            continue
        edges[name] = [_bad(c.get("original", {})), _bad(c.get("fixed", {}))]
    normal_bad = [_bad(o), _bad(f)]
    ev["nonfinite_original_normal"], ev["nonfinite_fixed_normal"] = normal_bad
    ev["nonfinite_original_edge"] = sum(v[0] for v in edges.values())
    ev["nonfinite_fixed_edge"] = sum(v[1] for v in edges.values())
    ev["edges"] = {k: {"original": v[0], "fixed": v[1]} for k, v in edges.items()}

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3g}"

    if expect == "changed":
        return _changed(ev, cmp, normal_bad, edges, fmt)
    if expect == "per-sample" and not (f.get("value_size") or 0) > (o.get("value_size") or 0):
        ev["reason"] = (f"the fix should return one value per sample, but gives {f.get('value_size')} value(s) "
                        f"where the original gives {o.get('value_size')}")
        return Verdict(False, ev)
    if "value_shape_mismatch" in cmp and expect != "per-sample":
        a, b = cmp["value_shape_mismatch"]
        ev["reason"] = f"the loss has {a} values originally and {b} after the fix"
        return Verdict(False, ev)
    if "grad_shape_mismatch" in cmp:
        ev["reason"] = "the gradient shapes differ"
        return Verdict(False, ev)
    if normal_bad[1] > normal_bad[0]:
        ev["reason"] = f"the fixed version gives NaN/Inf on normal inputs ({normal_bad[1]} elements, original " \
                       f"{normal_bad[0]})"
        return Verdict(False, ev)
    if vdiff is not None and vdiff > vtol:
        ev["reason"] = f"values differ on normal inputs: max |Δ| = {fmt(vdiff)} > tolerance {fmt(vtol)}"
        return Verdict(False, ev)
    if gdiff is not None and gdiff > gtol:
        ev["reason"] = f"gradients differ on normal inputs: max |Δ| = {fmt(gdiff)} > tolerance {fmt(gtol)}"
        return Verdict(False, ev)
    if vdiff is None:
        ev["reason"] = "the original is not finite on normal inputs: no values to compare" if normal_bad[0] \
            else "the loss produced no values to compare"
        return Verdict(None, ev)
    if _introduces_nonfinite(ev, edges):
        return Verdict(False, ev)
    broken = {k: v for k, v in edges.items() if v[0] > 0}
    if normal_bad[0] > 0:
        broken["normal"] = normal_bad
    if expect == "per-sample":
        ev["reason"] = (f"the per-sample values sum to the original and gradients agree on normal inputs (max |Δ| "
                        f"{fmt(vdiff)} / {fmt(gdiff)}, tolerance {fmt(vtol)} / {fmt(gtol)}): "
                        f"{ev.get('values_fixed')} values instead of 1, whose mean Keras reports")
        return Verdict(True, ev)
    if broken and not any(fb < ob for ob, fb in broken.values()):
        k = next(iter(broken))
        ev["reason"] = (f"the fixed version still gives NaN/Inf on edge inputs: {EDGE_DESCRIPTIONS.get(k, k)} "
                        f"({broken[k][1]} non-finite elements, original {broken[k][0]})")
        return Verdict(False, ev)
    removed = sum(ob - fb for ob, fb in broken.values() if fb < ob)
    ev["reason"] = (f"values and gradients agree on normal inputs (max |Δ| {fmt(vdiff)} / {fmt(gdiff)}, tolerance "
                    f"{fmt(vtol)} / {fmt(gtol)})" +
                    (f"; removes {removed} non-finite values/gradients on edge inputs" if removed else
                     "; no edge input made the original non-finite"))
    return Verdict(True, ev)


def _introduces_nonfinite(ev: dict, edges: dict[str, list[int]]) -> bool:
    """True (with the reason in `ev`) when the fixed version is non-finite on an edge input the original survives."""
    introduced = [k for k, (ob, fb) in edges.items() if ob == 0 and fb > 0]
    if introduced:
        k = introduced[0]
        ev["reason"] = f"the fixed version gives NaN/Inf ({edges[k][1]} elements) on {EDGE_DESCRIPTIONS.get(k, k)}, " \
                       f"where the original is finite"
    return bool(introduced)


def _changed(ev: dict, cmp: dict, normal_bad: list[int], edges: dict[str, list[int]], fmt) -> Verdict:  # noqa: ANN001
    """A fix meant to change the loss: it must change it, run, and add no NaN/Inf."""
    vdiff, gdiff = _num(cmp.get("max_value_diff")), _num(cmp.get("max_grad_diff"))
    if normal_bad[1] > 0 and normal_bad[0] > 0:
        ev["reason"] = (f"both versions give NaN/Inf on normal inputs ({normal_bad[0]} and {normal_bad[1]} "
                        f"elements): nothing to judge the change by")
        return Verdict(None, ev)
    if normal_bad[1] > 0:
        ev["reason"] = f"the fixed version gives NaN/Inf on normal inputs ({normal_bad[1]} elements)"
        return Verdict(False, ev)
    if _introduces_nonfinite(ev, edges):
        return Verdict(False, ev)
    shapes = "value_shape_mismatch" in cmp
    if not shapes and vdiff is not None and vdiff <= ev["tolerance"] and (gdiff is None or gdiff <= ev["grad_tolerance"]):
        ev["reason"] = (f"the fix is meant to change the loss, but values and gradients agree on normal inputs "
                        f"(max |Δ| {fmt(vdiff)} / {fmt(gdiff)})")
        return Verdict(False, ev)
    ev["reason"] = ("changes the loss by design: " +
                    (f"{cmp['value_shape_mismatch'][0]} -> {cmp['value_shape_mismatch'][1]} values" if shapes else
                     f"max |Δ| {fmt(vdiff)} in values, {fmt(gdiff)} in gradients") +
                    " on normal inputs; finite on normal inputs and no new NaN/Inf on edge inputs")
    return Verdict(True, ev)
