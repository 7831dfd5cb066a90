"""Confirmation: a fix is proved by running the loss before and after it under its own framework (TensorFlow/Keras,
PyTorch or JAX), in a subprocess.

For each fix: apply its edits to the whole file, re-parse, and cut the enclosing loss function out of both versions
together with the module-level imports, constants and same-module helpers it reads (`extract.py`); the harness's
imports (else the module's) name the framework; infer synthetic inputs from the loss's contract; run both in one child
process per framework for the whole run, started when its first job comes (`worker.py` + `runner.py`; a PyTorch or JAX
process never imports TensorFlow), on normal inputs (values and gradients must agree within the dtype's tolerance)
and on edge inputs (the fixed version must not be non-finite where the original was not, and must remove some of the
original's NaN/Inf); decide (`verdict.py`). Verdicts are cached by (original harness, fixed harness, framework and its
versions, dtype). The user's module is never imported; without the framework installed a fix stays unconfirmed (None)
with the reason, and so does a loss that mixes frameworks. Mixed precision is a Keras policy: PyTorch and JAX
harnesses run in float32 (float64 for PyTorch when the module sets it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import libcst as cst

from losslint.fixes.confirm import worker as _worker
from losslint.fixes.confirm.extract import (FRAMEWORK_ROOTS, OTHER_FRAMEWORKS, Harness, Isolation, chain_by_qualname,
                                            find_chain, frameworks_of, function_nodes, harness_for, infer_inputs,
                                            qualname_of)
from losslint.fixes.confirm.verdict import Verdict, decide
from losslint.model import Diagnostic

__all__ = ["confirm_file", "confirm_files", "confirm_rewrite", "Verdict", "STATS"]

_RUN_LOCK = threading.Lock()
HARNESS_VERSION = 3  # bump when the runner or the verdict changes meaning: old cache entries are then ignored
STATS = _worker.STATS
PER_JOB_TIMEOUT = 60.0
_RUNNABLE_ROOTS = frozenset().union(*FRAMEWORK_ROOTS.values())


# ---- cache ---------------------------------------------------------------------------------------------------
def _cache_dir(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "losslint" / "confirm"


def _cache_key(job: dict, vers: dict, framework: str = "tensorflow") -> str:
    payload = json.dumps([HARNESS_VERSION, job["original"], job["fixed"], job["call"], job["inputs"], framework,
                          [vers.get(d) for d in _worker.FRAMEWORK_DISTS.get(framework, (framework,))], job["dtype"],
                          job.get("expect", "same")],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _cache_get(directory: Path, key: str) -> Verdict | None:
    try:
        data = json.loads((directory / f"{key}.json").read_text())
        return Verdict(data["confirmed"], dict(data["evidence"], cached=True))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_put(directory: Path, key: str, verdict: Verdict) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"confirmed": verdict.confirmed, "evidence": verdict.evidence}))
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        pass


# ---- jobs ----------------------------------------------------------------------------------------------------
class _Job:
    """One fix to confirm: the harness pair and its input spec, or an immediate verdict (None/False) with why."""

    def __init__(self, original: Harness | None = None, fixed: Harness | None = None, inputs: dict | None = None,
                 dtype: str = "float32", base: dict | None = None, verdict: Verdict | None = None) -> None:
        self.original, self.fixed, self.inputs, self.dtype = original, fixed, inputs, dtype
        self.base = base or {}
        self.verdict = verdict
        self.key: str | None = None

    def payload(self, ident: int) -> dict:
        assert self.original is not None and self.fixed is not None
        return {"id": ident, "original": self.original.source, "fixed": self.fixed.source,
                "call": self.original.call, "inputs": self.inputs, "dtype": self.dtype, "timeout": PER_JOB_TIMEOUT,
                "expect": self.base.get("expect", "same")}


def _framework_of(h: Harness, module_roots: set[str]) -> tuple[str | None, str | None]:
    """(the framework the harness runs under, None), or (None, why it runs under none): the harness's own imports
    decide, else the module's (a loss that calls only tensor methods)."""
    others = sorted({OTHER_FRAMEWORKS[r] for r in h.roots if r in OTHER_FRAMEWORKS and not frameworks_of({r})})
    if others:
        return None, f"{others[0]} code: only TensorFlow/Keras, PyTorch and JAX code is confirmed"
    found = frameworks_of(h.roots) or frameworks_of(module_roots & _RUNNABLE_ROOTS)
    if len(found) > 1:
        return None, f"the loss mixes {' and '.join(_worker.FRAMEWORK_NAMES[f] for f in found)} code: a fix is " \
                     f"confirmed under one framework"
    if not found:
        return None, "not TensorFlow/Keras, PyTorch or JAX code"
    return found[0], None


def _stated_dtype(source: str, framework: str, dtype: str) -> str:
    """PyTorch/JAX: float32, unless the loss's own code computes in another format (`.astype(jnp.float16)`,
    `.half()`, `torch.bfloat16`; float64 for PyTorch when the module or the code says so - JAX runs without x64)."""
    if re.search(r"\bbfloat16\b|\.bfloat16\(", source):
        return "bfloat16"
    if re.search(r"\bfloat16\b|\.half\(|\btorch\.half\b", source):
        return "float16"
    if framework == "torch" and (dtype == "float64" or re.search(r"\bfloat64\b|\.double\(", source)):
        return "float64"
    return "float32"


def _module_roots(module: cst.Module) -> set[str]:
    from losslint.fixes.confirm.extract import module_bindings

    roots = set()
    for bs in module_bindings(module).values():
        for b in bs:
            if b.kind == "import" and b.module:
                roots.add(b.module.split(".", 1)[0])
    return roots


def _make_job(original_chain: list[cst.CSTNode], original_module: cst.Module, fixed_source: str,
              roles: dict[str, str] | tuple[str, ...] | None, dtype: str, base: dict,
              batch: int | None = None) -> _Job:
    base = dict(base, dtype=dtype)
    try:
        h0 = harness_for(original_module, original_chain)
    except Isolation as exc:
        roots = _module_roots(original_module)
        others = sorted({OTHER_FRAMEWORKS[r] for r in roots if r in OTHER_FRAMEWORKS and not frameworks_of({r})})
        reason = f"{others[0]} code: only TensorFlow/Keras, PyTorch and JAX code is confirmed" \
            if others and not roots & _RUNNABLE_ROOTS else f"the loss cannot be isolated: {exc}"
        return _Job(base=base, verdict=Verdict(None, dict(base, reason=reason)))
    base["function"] = h0.call.get("name") or f"{h0.call.get('class')}.{h0.call.get('method')}"
    framework, problem = _framework_of(h0, _module_roots(original_module))
    if framework is None:
        return _Job(base=base, verdict=Verdict(None, dict(base, reason=problem)))
    base["framework"] = framework
    if framework != "tensorflow":  # mixed precision is a Keras policy: here the loss's own code decides
        dtype = base["dtype"] = _stated_dtype(h0.source, framework, dtype)
    try:
        fixed_module = cst.parse_module(fixed_source)
    except cst.ParserSyntaxError as exc:
        return _Job(base=base, verdict=Verdict(False, dict(base, reason=f"the fixed code does not parse: "
                                                                          f"{str(exc).splitlines()[0]}")))
    qual = qualname_of(original_chain)
    fixed_chain = chain_by_qualname(fixed_module, qual) if qual and not isinstance(original_chain[-1], cst.Lambda) \
        else []
    if not fixed_chain:
        fixed_chain = _same_position_chain(original_module, original_chain, fixed_module)
    if not fixed_chain:
        return _Job(base=base, verdict=Verdict(None, dict(base, reason=f"`{qual or 'the loss'}` cannot be found "
                                                                          f"after the fix")))
    try:
        h1 = harness_for(fixed_module, fixed_chain)
    except Isolation as exc:
        return _Job(base=base, verdict=Verdict(False, dict(base, reason=f"the fixed version cannot run: {exc}")))
    try:
        inputs = infer_inputs(h0.source, h0.func, h0.params, roles)
    except Isolation as exc:
        return _Job(base=base, verdict=Verdict(None, dict(base, reason=f"no synthetic inputs: {exc}")))
    if batch is not None and inputs["shape"]:
        # the fix is exact at the batch size the original assumes (LL303): test there
        inputs = dict(inputs, shape=[int(batch)] + list(inputs["shape"][1:]))
    base["inputs"] = {p["name"]: _describe(p, inputs) for p in inputs["params"]}
    base["shape"] = inputs["shape"]
    base["label_kind"] = inputs["label_kind"]
    base["grad_params"] = [p["name"] for p in inputs["params"] if p["grad"]]
    base["edge_cases"] = ["exact_probs", "exact_wrong_probs", "all_zero", "zero_labels_and_masks", "large_logits"]
    return _Job(h0, h1, inputs, dtype, base)


def _same_position_chain(m0: cst.Module, chain: list[cst.CSTNode], m1: cst.Module) -> list[cst.CSTNode]:
    """For a lambda assigned at module level: the statement at the same index in the fixed module."""
    try:
        i = list(m0.body).index(chain[0])
    except ValueError:
        return []
    if i >= len(m1.body):
        return []
    top = m1.body[i]
    if isinstance(top, cst.SimpleStatementLine) and isinstance(top.body[0], cst.Assign) \
            and isinstance(top.body[0].value, cst.Lambda):
        return [top, top.body[0].value]
    return []


def _describe(p: dict, inputs: dict) -> str:
    shape = tuple(inputs["shape"])
    kind = p["kind"]
    if kind == "labels":
        lk = inputs["label_kind"]
        if lk == "sparse":
            return f"integer class labels {shape[:-1]}"
        return {"onehot": "one-hot labels", "binary": "binary 0/1 labels", "distribution": "soft target distributions",
                "regression": "regression targets"}.get(lk, lk) + f" {shape}"
    if kind == "model":
        return "the identity function (the model's output is its input)"
    if kind == "optimizer":
        return "an optimizer whose methods do nothing (the step is judged by its loss)"
    if kind == "unused":
        return "None (not read by the loss itself)"
    if p.get("keys"):
        arrays = ", ".join(f"{k}: {tuple(v)}" for k, v in p["keys"].items())
        return f"a dict of arrays {{{arrays}}}"
    return {"probs": "probabilities", "logits": "logits", "real": "real-valued predictions", "mask": "0/1 mask",
            "weights": "positive weights"}.get(kind, kind) + f" {shape}"


# ---- running -------------------------------------------------------------------------------------------------
def _run(jobs: list[_Job], timeout: float, cache_dir: str | None) -> None:
    """`_run_locked`, one caller at a time: the framework processes are shared, and the language server confirms
    from worker threads (a cancelled confirmation's thread may still be running when the next one starts)."""
    with _RUN_LOCK:
        _run_locked(jobs, timeout, cache_dir)


def _run_locked(jobs: list[_Job], timeout: float, cache_dir: str | None) -> None:
    """Fill in every job's verdict: from the cache, else from one child process per framework, shared by its jobs."""
    pending = [j for j in jobs if j.verdict is None]
    if not pending:
        return
    vers = _worker.versions()
    for j in pending:
        if not vers.get(_framework(j)):
            j.verdict = Verdict(None, dict(j.base, reason=_not_installed(_framework(j))))
    pending = [j for j in pending if j.verdict is None]
    if not pending:
        return
    directory = _cache_dir(cache_dir)
    todo = []
    for j in pending:
        j.key = _cache_key(j.payload(0), vers, _framework(j))
        hit = _cache_get(directory, j.key)
        if hit is not None:
            STATS["cache_hits"] += 1
            j.verdict = hit
        else:
            todo.append(j)
    if not todo:
        return
    deadline = time.monotonic() + timeout
    twins: dict[str, list[_Job]] = {}  # the same rewrite in several places (or files) runs once
    unique = []
    for j in todo:
        if j.key in twins:
            twins[j.key].append(j)  # type: ignore[index]
        else:
            twins[j.key] = []  # type: ignore[index]
            unique.append(j)
    try:
        for fw in dict.fromkeys(_framework(j) for j in unique):  # one child process per framework, in turn
            _run_unique([j for j in unique if _framework(j) == fw], deadline, timeout, directory, fw)
    finally:
        for j in unique:
            for twin in twins.get(j.key or "", []):
                twin.verdict = Verdict(j.verdict.confirmed, dict(j.verdict.evidence, **{
                    k: v for k, v in twin.base.items() if k == "path"})) if j.verdict is not None else None


def _framework(j: _Job) -> str:
    return j.base.get("framework", "tensorflow")


def _not_installed(framework: str) -> str:
    name = _worker.FRAMEWORK_NAMES.get(framework, framework)
    where = f" for {_worker.python()}" if os.environ.get("LOSSLINT_CONFIRM_PYTHON") else ""
    how = {"tensorflow": "pip install 'losslint[verify]'", "torch": "pip install torch", "jax": "pip install jax"}
    return f"{name} is not installed{where} ({how.get(framework, f'pip install {framework}')})"


def _run_unique(todo: list[_Job], deadline: float, timeout: float, directory: Path,
                framework: str = "tensorflow") -> None:
    w = None
    name = _worker.FRAMEWORK_NAMES.get(framework, framework)
    for n, j in enumerate(todo):
        try:
            if time.monotonic() >= deadline:
                raise _worker.WorkerError("timed out")
            if w is None or not w.alive():
                w = _worker.get_worker(deadline, framework)
            raw = w.run(j.payload(n), deadline)
        except _worker.WorkerError as exc:
            msg = str(exc)
            if w is not None:
                _worker.drop_worker(w)
                w = None
            if "import" in msg.lower() and framework in msg.lower() or msg.startswith("ModuleNotFoundError"):
                reason = f"{name} cannot be imported: {msg}"
            elif msg == "timed out":
                reason = f"timed out after {timeout:g} s"
            else:
                reason = msg
            j.verdict = Verdict(None, dict(j.base, reason=reason))
            if time.monotonic() >= deadline or "cannot be imported" in reason:
                for rest in todo[n + 1:]:
                    rest.verdict = Verdict(None, dict(rest.base, reason=reason))
                return
            continue
        base = dict(j.base, framework=framework, **w.versions)
        j.verdict = decide(raw, base)
        if not (raw.get("error") or "").startswith(("timed out", "harness failure")):
            _cache_put(directory, j.key or "", j.verdict)


def _dtype_of(module: cst.Module, index=None) -> str:  # noqa: ANN001
    """The module's computation dtype: a mixed_float16/bfloat16 policy, set_floatx, else float32."""
    try:
        from losslint.analysis.dtypes import dtypes_of
        from losslint.analysis.index import ModuleIndex

        d = dtypes_of(index if index is not None else ModuleIndex.build(module))
        if d.mixed is not None:
            return d.mixed.dtype
        if d.global_dtype is not None:
            return d.global_dtype.dtype
        return "float32"
    except Exception:  # noqa: BLE001 - fall back to a textual check
        code = module.code
        if "mixed_float16" in code:
            return "float16"
        if "mixed_bfloat16" in code:
            return "bfloat16"
        return "float32"


def _jobs_for_file(path: str, source: str, diagnostics: tuple[Diagnostic, ...]) -> list[tuple[int, _Job]]:
    from losslint.fixes.apply import apply_edits
    from losslint.positions import node_ranges

    wanted = [(i, d) for i, d in enumerate(diagnostics)
              if d.fix is not None and d.fix.edits and d.fix.applicability != "display-only"]
    if not wanted:
        return []
    base = {"path": path}
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        v = Verdict(None, dict(base, reason=f"the file does not parse: {str(exc).splitlines()[0]}"))
        return [(i, _Job(base=base, verdict=v)) for i, _ in wanted]
    roles_by_func: dict[int, dict[str, str]] = {}
    index = None
    try:
        from losslint.analysis.index import ModuleIndex
        from losslint.analysis.scopes import ScopeMap

        index = ModuleIndex.build(module, path)
        for fid, scope in ScopeMap(index).by_func.items():
            if scope.param_roles:
                roles_by_func[fid] = dict(scope.param_roles)
    except Exception:  # noqa: BLE001 - roles are a hint; names decide without them
        pass
    dtype = _dtype_of(module, index)
    ranges = node_ranges(module, function_nodes(module) + _scoped_statements(module))
    out = []
    chains: dict[int, list[cst.CSTNode]] = {}
    for i, d in wanted:
        chain = find_chain(module, ranges, d.range.start.line + 1, d.range.start.column)
        if chain and isinstance(chain[0], cst.SimpleStatementLine):
            chain = [chain[0]] + [n for n in chain[1:] if isinstance(n, cst.Lambda)][:1]
        if not chain:  # a module-level statement (TF1 graph code) holds it
            at = (d.range.start.line + 1, d.range.start.column)
            from losslint.fixes.confirm.expression import flatten_scopes  # `with tf.name_scope(...):` bodies too

            chain = [st for st in flatten_scopes(module).body if isinstance(st, cst.SimpleStatementLine)
                     and id(st) in ranges and ranges[id(st)][0] <= at <= ranges[id(st)][1]][:1]
        chains[i] = chain
    for i, d in wanted:
        assert d.fix is not None
        own = list(d.fix.edits)
        fixed_source, left = apply_edits(source, own)
        if left:
            out.append((i, _Job(base=base, verdict=Verdict(None, dict(base, reason="the fix's edits overlap")))))
            continue
        from losslint.fixes.confirm.compiled import compiled_jobs  # a fix to the loss given to `compile(...)`

        compiled = compiled_jobs(module, source, index, path, own, fixed_source, dtype, dict(
            base, expect=d.fix.expect) if d.fix.expect != "same" else dict(base), d.fix.batch)
        if compiled is not None:
            out.extend((i, j) for j in compiled)  # an intent check first, if any; the fix's own job last decides
            continue
        chain = chains[i]
        if chain and len(chain) == 1 and isinstance(chain[0], cst.SimpleStatementLine):
            others = [e for j, d2 in wanted if j != i and chains[j] and chains[j][0] is chain[0]
                      for e in d2.fix.edits if not any(_overlap(e, o) for o in own)]  # type: ignore[union-attr]
            out.append((i, _expression_job(module, source, chain[0], others, own, dtype, dict(base, expect=d.fix.expect)
                                           if d.fix.expect != "same" else dict(base), d.fix.batch)))
            continue
        if not chain or not any(isinstance(n, (cst.FunctionDef, cst.Lambda)) for n in chain):
            out.append((i, _Job(base=base, verdict=Verdict(None, dict(
                base, reason="the loss cannot be isolated: the fix is not inside a function")))))
            continue
        roles = roles_by_func.get(id(chain[-1]))
        # The other fixes in the same function are applied to both sides: each fix is judged by what it adds, so
        # `log(p) + log(1 - p)` with a fix on each log is not rejected for the NaN the other log still makes.
        others = [e for j, d2 in wanted if j != i and chains[j] and chains[j][0] is chain[0]
                  for e in d2.fix.edits if not any(_overlap(e, o) for o in own)]  # type: ignore[union-attr]
        job = None
        fbase = dict(base, expect=d.fix.expect) if d.fix.expect != "same" else dict(base)
        if others:
            job = _with_baseline(chain, module, source, others, own, roles, dtype, dict(fbase), d.fix.batch)
        if job is None:
            job = _make_job(chain, module, fixed_source, roles, dtype, fbase, d.fix.batch)
        out.append((i, job))
    return out


def _scoped_statements(module: cst.Module) -> list[cst.CSTNode]:
    """The statements of module-level `with tf.name_scope(...):` blocks (their ranges locate TF1 fixes)."""
    from losslint.fixes.confirm.expression import flatten_scopes

    top = {id(st) for st in module.body}
    return [st for st in flatten_scopes(module).body if id(st) not in top]


def _expression_job(module: cst.Module, source: str, stmt: cst.CSTNode, others: list, own: list, dtype: str,
                    base: dict, batch: int | None) -> _Job:
    """A fix in a module-level statement (TF1 graph code): confirmed on a synthetic function of its tensors."""
    from losslint.fixes.apply import apply_edits
    from losslint.fixes.confirm.expression import flatten_scopes, synthesize

    baseline, left = apply_edits(source, others) if others else (source, [])
    fixed, left2 = apply_edits(source, others + own)
    if left or left2:
        return _Job(base=base, verdict=Verdict(None, dict(base, reason="the fix's edits overlap")))
    try:
        flat = flatten_scopes(module)
        bmodule = flatten_scopes(cst.parse_module(baseline)) if others else flat
        bstmt = bmodule.body[list(flat.body).index(stmt)] if others else stmt  # type: ignore[arg-type]
        syn = synthesize(bmodule, bstmt, fixed)
    except (Isolation, ValueError, IndexError, cst.ParserSyntaxError) as exc:
        return _Job(base=base, verdict=Verdict(None, dict(base, reason=f"the loss cannot be isolated: {exc}")))
    if others:
        base["baseline"] = f"with the {len(others)} other fix edit(s) in this statement applied to both versions"
    base["expression"] = "a module-level expression, run as a function of " + \
        ", ".join(f"`{n}`" for n in (p.name.value for p in syn.chain[-1].params.params))  # type: ignore[attr-defined]
    return _make_job(syn.chain, syn.module, syn.fixed_source, syn.roles, dtype, base, batch)


def _overlap(a, b) -> bool:  # noqa: ANN001
    return a.range.start < b.range.end and b.range.start < a.range.end


def _with_baseline(chain: list[cst.CSTNode], module: cst.Module, source: str, others: list, own: list,
                   roles, dtype: str, base: dict, batch: int | None = None) -> _Job | None:  # noqa: ANN001
    from losslint.fixes.apply import apply_edits

    baseline, left = apply_edits(source, others)
    fixed, left2 = apply_edits(source, others + own)
    if left or left2:
        return None
    try:
        bmodule = cst.parse_module(baseline)
    except cst.ParserSyntaxError:
        return None
    qual = qualname_of(chain)
    bchain = chain_by_qualname(bmodule, qual) if qual and not isinstance(chain[-1], cst.Lambda) \
        else _same_position_chain(module, chain, bmodule)
    if not bchain or len(bchain) != len(chain):
        return None
    base["baseline"] = f"with the {len(others)} other fix edit(s) in this function applied to both versions"
    return _make_job(bchain, bmodule, fixed, roles, dtype, base, batch)


def _apply(diagnostics: tuple[Diagnostic, ...], jobs: list[tuple[int, _Job]]) -> tuple[Diagnostic, ...]:
    out = list(diagnostics)
    for i, j in jobs:
        d = out[i]
        v = j.verdict or Verdict(None, dict(j.base, reason="not run"))
        assert d.fix is not None
        out[i] = replace(d, fix=replace(d.fix, confirmed=v.confirmed, evidence=v.evidence))  # type: ignore[arg-type]
    return tuple(out)


# ---- public API ----------------------------------------------------------------------------------------------
def confirm_files(items: list[tuple[str, str, tuple[Diagnostic, ...]]], *, timeout: float = 120.0,
                  cache_dir: str | None = None) -> list[tuple[Diagnostic, ...]]:
    """Confirm the fixes of many files with one subprocess per framework (TensorFlow, PyTorch, JAX) for the run."""
    per_file: list[list[tuple[int, _Job]]] = []
    for path, source, diagnostics in items:
        try:
            per_file.append(_jobs_for_file(path, source, diagnostics))
        except Exception as exc:  # noqa: BLE001 - never raise for user code problems
            per_file.append([(i, _Job(base={"path": path}, verdict=Verdict(None, {
                "path": path, "reason": f"internal error while building the harness: {type(exc).__name__}: {exc}"})))
                for i, d in enumerate(diagnostics) if d.fix is not None and d.fix.edits
                and d.fix.applicability != "display-only"])
    _run([j for jobs in per_file for _, j in jobs], timeout, cache_dir)
    return [_apply(diagnostics, jobs) for (_, _, diagnostics), jobs in zip(items, per_file)]


def confirm_file(path: str, source: str, diagnostics: tuple[Diagnostic, ...], *, timeout: float = 120.0,
                 cache_dir: str | None = None) -> tuple[Diagnostic, ...]:
    """Return the diagnostics with each fix's `confirmed` and `evidence` filled in. Diagnostics without a fix pass
    through unchanged; never raises for user code problems; never imports the user's module."""
    return confirm_files([(path, source, diagnostics)], timeout=timeout, cache_dir=cache_dir)[0]


def confirm_rewrite(original_source: str, fixed_source: str, function: str, *,
                    roles: tuple[str, ...] | None = None, dtype: str = "float32", timeout: float = 120.0,
                    cache_dir: str | None = None, expect: str = "same", batch: int | None = None) -> Verdict:
    """Two complete module sources that each define `function` (`loss`, `Cls.call`): the verdict on the rewrite."""
    base: dict = {"function": function}
    if expect != "same":
        base["expect"] = expect
    try:
        module = cst.parse_module(original_source)
    except cst.ParserSyntaxError as exc:
        return Verdict(None, dict(base, dtype=dtype, reason=f"the original does not parse: {exc}"))
    chain = chain_by_qualname(module, function)
    if not chain:
        return Verdict(None, dict(base, dtype=dtype, reason=f"`{function}` is not defined in the original"))
    job = _make_job(chain, module, fixed_source, roles, dtype, base, batch)
    _run([job], timeout, cache_dir)
    return job.verdict or Verdict(None, dict(base, reason="not run"))
