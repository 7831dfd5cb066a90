"""The confirmation harness: run as a script in a child process (`python runner.py [--framework F]`), never imported
by losslint.

F is `tensorflow` (the default), `torch` or `jax`: the process imports that framework once, and no other (a PyTorch
or JAX process never imports TensorFlow). It imports nothing from losslint (the interpreter may be another
environment's), then reads one JSON job per line on stdin and writes one JSON result per line on the original stdout.
Anything the user's code prints goes to stderr. A job holds two module texts (the original and the fixed harness
module), how to call the loss, the synthetic-input spec and the dtype; the result holds raw figures per input case.
The parent decides the verdict. The input cases (`cases`) and the comparison (`compare`) are the same numpy code for
every framework; turning them into tensors (`tensors`), loading the loss (`load`) and taking values and gradients
(`evaluate`: GradientTape, `torch.autograd.grad`, `jax.value_and_grad`) are per framework. A job's call may list
"stand_ins": models the loss calls but its module never defines, each bound to a stand-in returning its data argument
(the result repeats them, for the evidence); a parameter spec with "keys" is a dict of arrays (`params["w"]`).

Protocol: first line out is {"ready": true, "framework": F, <F's distributions>: version...} (for TensorFlow:
"tensorflow" and "keras"; PyTorch: "torch"; JAX: "jax" and "jaxlib") or {"ready": false, "error": ...}.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import signal
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU: deterministic kernels, no device start-up cost
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# Results go to a private copy of stdout; fd 1 itself is pointed at stderr so prints (and tf.print) cannot corrupt it.
_OUT = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def _emit(obj: dict) -> None:
    _OUT.write(json.dumps(obj, allow_nan=False) + "\n")
    _OUT.flush()


class _JobTimeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ANN001
    raise _JobTimeout()


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _framework() -> str:
    args = sys.argv[1:]
    if "--framework" in args and args.index("--framework") + 1 < len(args):
        return args[args.index("--framework") + 1]
    return "tensorflow"


def _start(framework: str):  # noqa: ANN202
    """Import the framework (and only it): (the context, the ready message's versions)."""
    import numpy as np

    if framework == "torch":
        import torch

        torch.set_num_threads(1)  # deterministic reductions, and one core per child
        return _TorchContext(np, torch), {"torch": torch.__version__}
    if framework == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["JAX_ENABLE_X64"] = "0"
        import jax

        jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_enable_x64", False)
        try:
            import jaxlib
            jaxlib_version = getattr(jaxlib, "__version__", None)
        except BaseException:  # noqa: BLE001
            jaxlib_version = None
        return _JaxContext(np, jax), {"jax": jax.__version__, "jaxlib": jaxlib_version}
    if framework != "tensorflow":
        raise ValueError(f"unknown framework {framework!r}")
    import tensorflow as tf

    try:
        import keras
        keras_version = getattr(keras, "__version__", None)
    except BaseException:  # noqa: BLE001
        keras = None
        keras_version = None
    return _Context(np, tf, keras), {"tensorflow": tf.__version__, "keras": keras_version}


def main() -> None:
    framework = _framework()
    try:
        ctx, versions = _start(framework)
    except BaseException as exc:  # noqa: BLE001 - report anything, including a failing native import
        _emit({"ready": False, "framework": framework, "error": _short(exc)})
        return
    _emit(dict({"ready": True, "framework": framework}, **versions))
    signal.signal(signal.SIGALRM, _on_alarm)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            job = json.loads(line)
        except ValueError as exc:
            _emit({"id": None, "error": f"bad job: {exc}"})
            continue
        seconds = max(0.5, float(job.get("timeout", 30)))
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result = ctx.run_job(job)
        except _JobTimeout:
            result = {"id": job.get("id"), "error": f"timed out after {seconds:g} s"}
        except BaseException as exc:  # noqa: BLE001
            result = {"id": job.get("id"), "error": "harness failure: " + _short(exc),
                      "trace": traceback.format_exc()[-2000:]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        stand_ins = (job.get("call") or {}).get("stand_ins")
        if stand_ins and isinstance(result, dict):  # what was bound for an undefined model, for the evidence
            result["stand_ins"] = [s.get("as", s["name"]) for s in stand_ins]
        _emit(_clean(result))


def _clean(obj):  # noqa: ANN001, ANN202
    """JSON without NaN/Inf: non-finite floats become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


class _MergedBackend:
    """Keras 3's `keras.backend` lacks the Keras 2 functions (`K.log`, `K.mean`); TensorFlow's bundled legacy backend
    (`tf.keras.backend`) has them. Attribute lookups try Keras 3 first, then the legacy one."""

    def __init__(self, *mods) -> None:  # noqa: ANN002
        self._mods = mods

    def __getattr__(self, name: str):  # noqa: ANN204
        for m in self._mods:
            try:
                return getattr(m, name)
            except AttributeError:
                continue
        raise AttributeError(name)


def _exec_harness(source: str, label: str) -> dict:
    ns: dict = {"__name__": f"losslint_harness_{label}", "__builtins__": builtins}
    exec(compile(source, f"<losslint {label} harness>", "exec"), ns)  # noqa: S102 - the point of the harness
    return ns


def _instance(cls):  # noqa: ANN001, ANN202
    try:
        return cls()
    except Exception:  # noqa: BLE001 - a constructor that needs arguments: an instance without __init__
        return cls.__new__(cls)


class _ModelStandIn:
    """A model the loss calls but its module never defines (`model.apply(params, x)`, `net(x)`): calling it, or any
    method of it, returns its data argument (the first `x=`/`inputs=`... keyword, else the last positional argument),
    so the model's output is that synthetic input. The keywords mirror extract.DATA_KEYWORDS."""

    DATA_KEYWORDS = ("x", "inputs", "input", "data", "features", "batch", "images", "obs")

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        for k, v in kwargs.items():
            if k in self.DATA_KEYWORDS:
                return v
        if not args:
            raise TypeError(f"the stand-in for `{self._name}` got no data argument")
        return args[-1]

    def __getattr__(self, attr: str):  # noqa: ANN204
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self


def _loss_from(ns: dict, call: dict, instance):  # noqa: ANN001, ANN202
    """The callable the job names in the executed harness namespace: a function, a method of an instance of a class
    (`instance(cls)` makes it), or what a zero-argument factory returns. The undefined models the loss calls
    (call["stand_ins"]) are bound to stand-ins first."""
    for s in call.get("stand_ins", ()):
        if s["name"] not in ns:  # never over a real definition
            ns[s["name"]] = _ModelStandIn(s["name"])
    kind = call.get("kind", "function")
    if kind == "function":
        return ns[call["name"]]
    if kind == "method":
        return getattr(instance(ns[call["class"]]), call["method"])
    if kind == "factory":
        made = ns[call["name"]]()
        if not callable(made):
            raise TypeError(f"{call['name']}() returned {type(made).__name__}, not a loss function")
        return made
    raise ValueError(f"unknown call kind {kind!r}")


class _StepModel:
    """A training step's `model` argument: the identity (its input is the model's output), with no variables, so
    `tape.gradient(loss, model.trainable_variables)` and `model.parameters()` work and differentiate nothing."""

    trainable_variables = trainable_weights = variables = weights = ()

    def __call__(self, t, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN204
        return t

    def parameters(self):  # noqa: ANN201
        return iter(())


class _StepOptimizer:
    """A training step's optimizer: every method call does nothing (the step is judged by its loss, not its update)."""

    def __getattr__(self, attr: str):  # noqa: ANN204
        if attr.startswith("__"):
            raise AttributeError(attr)
        return lambda *args, **kwargs: None


# arguments that are not tensors: a training step's `model` and optimizer, and a parameter the loss never reads
_STAND_INS = {"model": _StepModel(), "optimizer": _StepOptimizer(), "unused": None}


def _resized(np, arr, shape):  # noqa: ANN001, ANN202
    """One entry of a dict argument (`params["w"]`): the case's values for its kind, cycled into `shape`."""
    return np.resize(np.asarray(arr, dtype=np.float32), tuple(int(s) for s in shape))


def _flatten(out) -> list:  # noqa: ANN001
    """The leaves of a loss's result: nested lists, tuples and dicts (sorted keys, as tf.nest and jax trees do)."""
    if isinstance(out, (list, tuple)):
        return [leaf for o in out for leaf in _flatten(o)]
    if isinstance(out, dict):
        return [leaf for k in sorted(out, key=repr) for leaf in _flatten(out[k])]
    return [out]


class _Context:
    """TensorFlow/Keras: constant tensors, gradients from a GradientTape. The other frameworks subclass it."""

    def __init__(self, np, tf, keras) -> None:  # noqa: ANN001
        self.np = np
        self.tf = tf
        self.keras = keras
        self.backend_shim = None
        if keras is not None:
            k3 = getattr(keras, "backend", None)
            try:
                legacy = tf.keras.backend
            except Exception:  # noqa: BLE001
                legacy = None
            if k3 is not None and legacy is not None and k3 is not legacy and not hasattr(k3, "log"):
                self.backend_shim = (k3, _MergedBackend(k3, legacy))

    # ---- loading ---------------------------------------------------------------------------------------------
    def load(self, source: str, call: dict, label: str):  # noqa: ANN201
        if self.keras is not None:
            try:  # the same class registered twice (original and fixed) must not clash
                self.keras.saving.get_custom_objects().clear()
            except Exception:  # noqa: BLE001
                pass
        ns = _exec_harness(source, label)
        if self.backend_shim is not None:
            k3, merged = self.backend_shim
            for k, v in list(ns.items()):
                if v is k3:
                    ns[k] = merged
        self._tf1(ns, source)
        return _loss_from(ns, call, _instance)

    def _tf1(self, ns: dict, source: str) -> None:
        """TF1 graph code (`tf.log`, `tf.div`, `reduction_indices=`): its names resolve in `tf.compat.v1` first,
        whose math ops run eagerly too."""
        import re

        tf = self.tf
        v1 = getattr(getattr(tf, "compat", None), "v1", None)
        if v1 is None:
            return
        for k, v in list(ns.items()):
            if v is not tf:
                continue
            attrs = set(re.findall(rf"\b{re.escape(k)}\.([A-Za-z_]\w*)", source))
            if "reduction_indices" in source or "keep_dims" in source or \
                    any(not hasattr(tf, a) and hasattr(v1, a) for a in attrs):
                ns[k] = _MergedBackend(v1, tf)

    # ---- inputs ----------------------------------------------------------------------------------------------
    def cases(self, spec: dict) -> list[tuple[str, dict]]:
        np = self.np
        rng = np.random.RandomState(int(spec.get("seed", 0)))
        shape = tuple(int(s) for s in spec["shape"])
        n_cls = shape[-1]
        label_kind = spec.get("label_kind", "onehot")

        def softmax(z):  # noqa: ANN001, ANN202
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

        cls = rng.randint(0, n_cls, size=shape[:-1])
        onehot = np.eye(n_cls)[cls]
        wrong = np.eye(n_cls)[(cls + 1) % n_cls]
        binary = rng.randint(0, 2, size=shape).astype(np.float64)
        binary.flat[0], binary.flat[-1] = 0.0, 1.0
        target = rng.normal(size=shape)
        mask = rng.randint(0, 2, size=shape).astype(np.float64)
        mask.flat[0] = 1.0
        edge_labels = None
        if label_kind in ("onehot", "sparse"):
            labels, probs = onehot, softmax(rng.normal(size=shape))
            exact, exact_wrong = onehot, wrong
        elif label_kind == "distribution":  # soft targets (KL divergence): strictly positive rows summing to 1
            labels, probs = softmax(rng.normal(size=shape)), softmax(rng.normal(size=shape))
            exact, exact_wrong, edge_labels = onehot, wrong, onehot
        elif label_kind == "binary":
            labels, probs = binary, rng.uniform(0.05, 0.95, size=shape)
            exact, exact_wrong = binary, 1.0 - binary
        else:  # regression
            labels, probs = target, rng.uniform(0.05, 0.95, size=shape)
            exact, exact_wrong = np.clip(target, 0, 1), 1.0 - np.clip(target, 0, 1)
        logits = rng.normal(size=shape) * 2.0
        real = rng.normal(size=shape) if label_kind != "regression" else target + rng.normal(size=shape) * 0.5
        sign = 2.0 * (labels > 0.5) - 1.0 if label_kind != "regression" else np.sign(rng.normal(size=shape))
        zeros = np.zeros(shape)
        weights = rng.uniform(0.5, 1.5, size=shape)

        def pack(lab, pr, lg, re, mk, classes=cls):  # noqa: ANN001, ANN202
            return {"labels": lab, "probs": pr, "logits": lg, "real": re, "mask": mk, "weights": weights,
                    "classes": classes}

        out = [("normal", pack(labels, probs, logits, real, mask))]
        el = labels if edge_labels is None else edge_labels
        out.append(("exact_probs", pack(el, exact, sign * 30.0, el, mask)))
        out.append(("exact_wrong_probs", pack(el, exact_wrong, -sign * 30.0, el + sign * 3.0, mask)))
        out.append(("all_zero", pack(zeros, zeros, zeros, zeros, zeros, np.zeros_like(cls))))
        out.append(("zero_labels_and_masks", pack(zeros, probs, logits, real, zeros, np.zeros_like(cls))))
        out.append(("large_logits", pack(labels, probs, sign * 100.0, labels + sign * 30.0, mask)))
        return out

    def tensors(self, spec: dict, values: dict, dtype):  # noqa: ANN001, ANN201
        """The loss's arguments for one input case (stand-ins for a step's model and optimizer), and what to
        differentiate by (`_watched`: tensors under TensorFlow, argument positions elsewhere)."""
        np = self.np
        args, watched = [], []
        for p in spec["params"]:
            kind = p["kind"]
            if kind in _STAND_INS:
                args.append(_STAND_INS[kind])
                continue
            if kind == "labels" and spec.get("label_kind") == "sparse":
                t = self.class_labels(values["classes"])
            else:
                arr = values[kind if kind in values else "real"]
                t = {k: self.array(_resized(np, arr, shape), dtype) for k, shape in p["keys"].items()} \
                    if p.get("keys") else self.array(np.asarray(arr, dtype=np.float32), dtype)
            args.append(t)
            if p.get("grad"):
                watched.extend(self._watched(t, len(args) - 1))
        return args, watched

    def class_labels(self, classes):  # noqa: ANN001, ANN201
        return self.tf.constant(classes.astype(self.np.int32))

    def array(self, arr, dtype):  # noqa: ANN001, ANN201
        return self.tf.cast(self.tf.constant(arr), dtype)

    def _watched(self, t, index: int) -> list:  # noqa: ANN001
        return [t[k] for k in sorted(t)] if isinstance(t, dict) else [t]

    # ---- running ---------------------------------------------------------------------------------------------
    def evaluate(self, fn, args, watched):  # noqa: ANN001, ANN201
        tf, np = self.tf, self.np
        differentiated: list = []
        gradient = tf.GradientTape.gradient

        def recording_gradient(tape_, target, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            if tape_ is not outer:
                differentiated.append(target)
            return gradient(tape_, target, *a, **k)

        with tf.GradientTape() as outer:
            tape = outer
            for t in watched:
                tape.watch(t)
            tf.GradientTape.gradient = recording_gradient
            try:
                out = fn(*args)
            finally:
                tf.GradientTape.gradient = gradient
            if differentiated:  # a training step: judged by the loss its own tape differentiates
                out = differentiated
            flat = tf.nest.flatten(out)
            targets = [o for o in flat if tf.is_tensor(o) and o.dtype.is_floating]
        grads = tape.gradient(targets, watched) if (targets and watched) else [None] * len(watched)
        vals = []
        for o in flat:
            if tf.is_tensor(o):
                vals.append(np.asarray(tf.cast(o, tf.float64) if o.dtype.is_floating or o.dtype.is_integer
                                       else tf.cast(o, tf.float64)).ravel())
            else:
                vals.append(np.asarray(o, dtype=np.float64).ravel())
        value = np.concatenate(vals) if vals else np.zeros(0)
        garr = [None if g is None else np.asarray(tf.cast(tf.convert_to_tensor(g), tf.float64)).ravel()
                for g in grads]
        return value, garr

    def dtype(self, name: str | None):  # noqa: ANN201
        tf = self.tf
        return {"float16": tf.float16, "bfloat16": tf.bfloat16, "float64": tf.float64}.get(name, tf.float32)

    def run_job(self, job: dict) -> dict:
        np = self.np
        spec = job["inputs"]
        dtype = self.dtype(job.get("dtype"))
        fns = {}
        for label in ("original", "fixed"):
            try:
                fns[label] = self.load(job[label], job["call"], label)
            except _JobTimeout:
                raise
            except BaseException as exc:  # noqa: BLE001
                return {"id": job.get("id"), "load_error": {label: _short(exc)}}
        cases = []
        for name, values in self.cases(spec):
            args, watched = self.tensors(spec, values, dtype)
            entry: dict = {"case": name}
            got = {}
            for label in ("original", "fixed"):
                try:
                    got[label] = self.evaluate(fns[label], args, watched)
                    v, gs = got[label]
                    entry[label] = {
                        "value_nonfinite": int(np.size(v) - np.count_nonzero(np.isfinite(v))),
                        "grad_nonfinite": int(sum(np.size(g) - np.count_nonzero(np.isfinite(g))
                                                  for g in gs if g is not None)),
                        "grad_none": [g is None for g in gs],
                        "value_size": int(np.size(v)),
                    }
                except _JobTimeout:
                    raise
                except BaseException as exc:  # noqa: BLE001
                    entry[label] = {"error": _short(exc)}
            if "original" in got and "fixed" in got:
                entry["compare"] = self.compare(got["original"], got["fixed"])
            cases.append(entry)
        return {"id": job.get("id"), "cases": cases}

    def compare(self, a, b) -> dict:  # noqa: ANN001
        np = self.np
        (va, ga), (vb, gb) = a, b
        out: dict = {}
        if np.isfinite(va).all() and np.isfinite(vb).all():  # for "per-sample" fixes: the sums must agree
            out["sum_value_diff"] = float(abs(np.sum(va) - np.sum(vb)))
            out["sum_value_abs"] = float(abs(np.sum(va)))
        if va.shape != vb.shape:
            out["value_shape_mismatch"] = [list(va.shape), list(vb.shape)]
        else:
            both = np.isfinite(va) & np.isfinite(vb)
            out["max_value_diff"] = float(np.max(np.abs(va[both] - vb[both]))) if both.any() else None
            out["max_value_abs"] = float(np.max(np.abs(va[both]))) if both.any() else None
        gdiff, gabs = None, None
        for x, y in zip(ga, gb):
            if x is None and y is None:
                continue
            x = np.zeros_like(y) if x is None else x
            y = np.zeros_like(x) if y is None else y
            if x.shape != y.shape:
                out["grad_shape_mismatch"] = [list(x.shape), list(y.shape)]
                continue
            both = np.isfinite(x) & np.isfinite(y)
            if both.any():
                d = float(np.max(np.abs(x[both] - y[both])))
                m = float(np.max(np.abs(x[both])))
                gdiff = d if gdiff is None else max(gdiff, d)
                gabs = m if gabs is None else max(gabs, m)
        out["max_grad_diff"] = gdiff
        out["max_grad_abs"] = gabs
        return out


class _TorchContext(_Context):
    """PyTorch, on the CPU: float tensors (`requires_grad_()` on the prediction parameters), int64 class labels,
    gradients from `torch.autograd.grad` of the summed floating outputs (None where an input is unused)."""

    def __init__(self, np, torch) -> None:  # noqa: ANN001
        self.np = np
        self.torch = torch
        self.tf = self.keras = self.backend_shim = None

    def load(self, source: str, call: dict, label: str):  # noqa: ANN201
        torch = self.torch

        def instance(cls):  # noqa: ANN001, ANN202
            try:
                return cls()
            except Exception:  # noqa: BLE001 - a constructor that needs arguments: an instance without __init__
                obj = cls.__new__(cls)
                if isinstance(obj, torch.nn.Module):
                    torch.nn.Module.__init__(obj)
                return obj

        return _loss_from(_exec_harness(source, label), call, instance)

    def dtype(self, name: str | None):  # noqa: ANN201
        t = self.torch
        return {"float16": t.float16, "bfloat16": t.bfloat16, "float64": t.float64}.get(name, t.float32)

    def class_labels(self, classes):  # noqa: ANN001, ANN201
        return self.torch.tensor(classes.astype(self.np.int64), dtype=self.torch.long)

    def array(self, arr, dtype):  # noqa: ANN001, ANN201
        return self.torch.tensor(arr).to(dtype)

    def _watched(self, t, index: int) -> list:  # noqa: ANN001
        return [index]

    def evaluate(self, fn, args, watched):  # noqa: ANN001, ANN201
        torch, np = self.torch, self.np
        # fresh leaves per call: an in-place op or a `.backward()` inside the loss cannot leak into the other version
        fresh = [a.detach().clone() if torch.is_tensor(a) else
                 {k: v.detach().clone() for k, v in a.items()} if isinstance(a, dict) else a for a in args]
        leaves = [leaf.requires_grad_() for i in watched for leaf in _flatten(fresh[i])]
        backwarded: list = []
        backward = torch.Tensor.backward

        def recording_backward(t, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            backwarded.append(t)
            return backward(t, *a, **k)

        torch.Tensor.backward = recording_backward
        try:
            with torch.enable_grad():
                out = fn(*fresh)
        finally:
            torch.Tensor.backward = backward
        if out is None and backwarded:  # a training step: judged by the loss it back-propagates (and its gradients)
            out = backwarded
        flat = _flatten(out)
        targets = [o for o in flat if torch.is_tensor(o) and o.is_floating_point() and o.requires_grad]
        grads: list = [None] * len(leaves)
        if targets and leaves:
            total = targets[0].sum()
            for o in targets[1:]:
                total = total + o.sum()
            try:
                grads = list(torch.autograd.grad(total, leaves, allow_unused=True))
            except RuntimeError:
                if not any(t.grad is not None for t in leaves):  # not a loss that ran backward() itself
                    raise
                grads = [t.grad for t in leaves]
        vals = []
        for o in flat:
            if torch.is_tensor(o):
                vals.append(o.detach().to("cpu", torch.float64).numpy().ravel())
            else:
                vals.append(np.asarray(o, dtype=np.float64).ravel())
        value = np.concatenate(vals) if vals else np.zeros(0)
        garr = [None if g is None else g.detach().to("cpu", torch.float64).numpy().ravel() for g in grads]
        return value, garr


class _JaxContext(_Context):
    """JAX, on the CPU with 64-bit types off: `jnp` arrays (int32 class labels), values from calling the loss,
    gradients from `jax.value_and_grad` of the summed floating outputs with respect to the prediction positions.
    A loss JAX cannot trace (`float(x)`, numpy on a tracer) gets values only: no gradient (None)."""

    def __init__(self, np, jax) -> None:  # noqa: ANN001
        import jax.numpy as jnp

        self.np = np
        self.jax = jax
        self.jnp = jnp
        self.tf = self.keras = self.backend_shim = None
        errors = getattr(jax, "errors", None)
        self.trace_errors = tuple(getattr(errors, n) for n in (
            "ConcretizationTypeError", "TracerArrayConversionError", "TracerBoolConversionError",
            "TracerIntegerConversionError", "NonConcreteBooleanIndexError") if hasattr(errors, n))

    def load(self, source: str, call: dict, label: str):  # noqa: ANN201
        return _loss_from(_exec_harness(source, label), call, _instance)

    def dtype(self, name: str | None):  # noqa: ANN201
        jnp = self.jnp
        return {"float16": jnp.float16, "bfloat16": jnp.bfloat16}.get(name, jnp.float32)  # 64-bit types are off

    def class_labels(self, classes):  # noqa: ANN001, ANN201
        return self.jnp.asarray(classes.astype(self.np.int32))

    def array(self, arr, dtype):  # noqa: ANN001, ANN201
        return self.jnp.asarray(arr).astype(dtype)

    def _watched(self, t, index: int) -> list:  # noqa: ANN001
        return [index]

    def _floating(self, o) -> bool:  # noqa: ANN001
        dt = getattr(o, "dtype", None)
        return dt is not None and hasattr(o, "shape") and self.jnp.issubdtype(dt, self.jnp.floating)

    def evaluate(self, fn, args, watched):  # noqa: ANN001, ANN201
        jax, jnp, np = self.jax, self.jnp, self.np
        out, grads, traced = None, [None] * sum(len(_flatten(args[i])) for i in watched), False
        if watched:
            connected = [True]

            def total(*a):  # noqa: ANN002, ANN202
                res = fn(*a)
                targets = [o for o in _flatten(res) if self._floating(o)]
                connected[0] = bool(targets)
                s = jnp.float32(0.0)
                for o in targets:
                    s = s + jnp.sum(o).astype(jnp.float32)
                return s, res

            try:
                (_, out), g = jax.value_and_grad(total, argnums=tuple(watched), has_aux=True)(*args)
                traced = True
                if connected[0]:
                    grads = [leaf for gi in g for leaf in _flatten(gi)]  # a dict argument: its leaves, by key
            except self.trace_errors:
                pass  # not traceable: not differentiable in JAX; values from a plain call below
        if not traced:
            out = fn(*args)
        vals = [np.asarray(o, dtype=np.float64).ravel() for o in _flatten(out)]
        value = np.concatenate(vals) if vals else np.zeros(0)
        garr = [None if g is None else np.asarray(g, dtype=np.float64).ravel() for g in grads]
        return value, garr


if __name__ == "__main__":
    main()
