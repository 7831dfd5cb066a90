"""One table from framework spellings to canonical ops.

`tf.log`, `tf.math.log`, `K.log`, `keras.ops.log`, `torch.log`, `jnp.log` and `np.log` all become the op "log".
Qualified names come from `names.ImportTable`, which resolves a file's own imports; nothing is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Namespaces, by family. Each entry is a dotted module path as written after the file's imports are resolved.
_TF_ROOTS = ("tensorflow", "tensorflow.compat.v1", "tensorflow.compat.v2")
TF = _TF_ROOTS
TF_MATH = tuple(f"{r}.math" for r in _TF_ROOTS)
TF_NN = tuple(f"{r}.nn" for r in _TF_ROOTS)
TF_LINALG = tuple(f"{r}.linalg" for r in _TF_ROOTS)
TF_EXP_NP = ("tensorflow.experimental.numpy",)
KERAS_BACKEND = (
    "keras.backend",
    "tensorflow.keras.backend",
    "tensorflow.python.keras.backend",
    "tf_keras.backend",
    "keras.src.backend",
)
KERAS_OPS = ("keras.ops", "keras.src.ops", "keras.ops.numpy", "keras.ops.nn", "keras.src.ops.numpy", "keras.src.ops.nn")
KERAS_ACTIVATIONS = ("keras.activations", "tensorflow.keras.activations", "tf_keras.activations")
KERAS_CONFIG = ("keras.config", "keras.src.backend.config", "tensorflow.keras.config")
TORCH = ("torch",)
TORCH_F = ("torch.nn.functional",)
TORCH_SPECIAL = ("torch.special",)
TORCH_LINALG = ("torch.linalg",)
JNP = ("jax.numpy",)
JAX_NN = ("jax.nn",)
JAX_SPECIAL = ("jax.scipy.special",)
JAX_LAX = ("jax.lax",)
NUMPY = ("numpy",)
NUMPY_LIKE = TF_EXP_NP + JNP + NUMPY

# Top-level package of a qualified name -> framework label used in messages and confirmation.
FRAMEWORK_OF_ROOT = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "tf_keras": "keras",
    "torch": "torch",
    "jax": "jax",
    "numpy": "numpy",
}

# canonical op -> [(namespaces, names)]
_SPEC: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "log": [
        (TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("log",)),
    ],
    "log2": [(TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("log2",))],
    "log10": [(TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("log10",))],
    "log1p": [(TF + TF_MATH + KERAS_OPS + TORCH + TORCH_SPECIAL + NUMPY_LIKE, ("log1p",))],
    "xlogy": [(TF_MATH + TORCH + TORCH_SPECIAL + JAX_SPECIAL, ("xlogy",))],
    "exp": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("exp",))],
    "expm1": [(TF + TF_MATH + KERAS_OPS + TORCH + TORCH_SPECIAL + NUMPY_LIKE, ("expm1",))],
    "sqrt": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("sqrt",))],
    "rsqrt": [(TF + TF_MATH + TORCH + JAX_LAX, ("rsqrt",))],
    "square": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("square",))],
    "abs": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("abs", "absolute"))],
    "pow": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("pow", "power"))],
    "negative": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("negative", "neg"))],
    "add": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("add",))],
    "subtract": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("subtract", "sub"))],
    "multiply": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("multiply", "mul"))],
    "divide": [
        (TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("divide", "truediv", "true_divide", "div", "realdiv")),
    ],
    "floordiv": [(TF + TF_MATH + TORCH + NUMPY_LIKE, ("floordiv", "floor_divide"))],
    "reciprocal": [(TF_MATH + TORCH + NUMPY_LIKE + KERAS_OPS, ("reciprocal",))],
    "divide_no_nan": [(TF_MATH + TF, ("divide_no_nan", "div_no_nan"))],
    "nan_to_num": [(TORCH + NUMPY_LIKE + KERAS_OPS, ("nan_to_num",))],
    "maximum": [
        (TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("maximum",)),
        (TORCH, ("clamp_min",)),
        (JAX_LAX, ("max",)),
    ],
    "minimum": [
        (TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("minimum",)),
        (TORCH, ("clamp_max",)),
        (JAX_LAX, ("min",)),
    ],
    "clip": [
        (TF + TF_MATH, ("clip_by_value",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("clip",)),
        (TORCH, ("clamp",)),
        (JAX_LAX, ("clamp",)),
    ],
    "where": [(TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("where",)), (TF, ("select",)),
              (KERAS_BACKEND, ("switch",))],
    "softmax": [
        (TF_NN + KERAS_BACKEND + KERAS_OPS + KERAS_ACTIVATIONS + TORCH + TORCH_F + JAX_NN + TORCH_SPECIAL, ("softmax",)),
        (TF_MATH, ("softmax",)),
    ],
    "log_softmax": [
        (TF_NN + TF_MATH + KERAS_OPS + TORCH + TORCH_F + JAX_NN + TORCH_SPECIAL, ("log_softmax",)),
    ],
    "sigmoid": [
        (TF + TF_MATH + TF_NN + KERAS_BACKEND + KERAS_OPS + KERAS_ACTIVATIONS + TORCH + TORCH_F + JAX_NN, ("sigmoid",)),
        (TORCH_SPECIAL + JAX_SPECIAL, ("expit",)),
    ],
    "log_sigmoid": [
        (TF_MATH + KERAS_OPS + TORCH_F + JAX_NN, ("log_sigmoid", "logsigmoid")),
    ],
    "relu": [
        (TF_NN + KERAS_BACKEND + KERAS_OPS + KERAS_ACTIVATIONS + TORCH + TORCH_F + JAX_NN, ("relu",)),
        (TF_NN + TORCH_F + JAX_NN + KERAS_OPS, ("relu6",)),
    ],
    "softplus": [
        (TF_MATH + TF_NN + KERAS_BACKEND + KERAS_OPS + KERAS_ACTIVATIONS + TORCH_F + JAX_NN, ("softplus",)),
    ],
    "logsumexp": [
        (TF + TF_MATH + KERAS_BACKEND + KERAS_OPS + TORCH + JAX_SPECIAL + JAX_NN, ("reduce_logsumexp", "logsumexp")),
    ],
    "sum": [
        (TF + TF_MATH + KERAS_BACKEND, ("reduce_sum",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("sum",)),
    ],
    "mean": [
        (TF + TF_MATH + KERAS_BACKEND, ("reduce_mean",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("mean",)),
    ],
    "max": [
        (TF + TF_MATH, ("reduce_max",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("max", "amax")),
    ],
    "min": [
        (TF + TF_MATH, ("reduce_min",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("min", "amin")),
    ],
    "prod": [(TF + TF_MATH, ("reduce_prod",)), (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("prod",))],
    "std": [
        (TF_MATH, ("reduce_std",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("std",)),
    ],
    "var": [
        (TF_MATH, ("reduce_variance",)),
        (KERAS_BACKEND + KERAS_OPS + TORCH + NUMPY_LIKE, ("var",)),
    ],
    "norm": [
        (TF + TF_LINALG, ("norm",)),
        (TORCH + TORCH_LINALG + KERAS_OPS, ("norm", "vector_norm")),
        (tuple(f"{n}.linalg" for n in NUMPY_LIKE) + ("keras.ops.linalg",), ("norm",)),
    ],
    "count_nonzero": [(TF + TF_MATH + TORCH + NUMPY_LIKE + KERAS_OPS, ("count_nonzero",))],
    "size": [(TF + KERAS_OPS + NUMPY_LIKE, ("size",)), (TORCH, ("numel",))],
    "shape": [(TF + KERAS_BACKEND + KERAS_OPS + NUMPY_LIKE, ("shape",))],
    "cast": [
        (TF + TF_MATH + KERAS_BACKEND + KERAS_OPS, ("cast",)),
        (TF_MATH + TF, ("to_float",)),
    ],
    "identity": [
        (TF + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND,
         ("reshape", "squeeze", "expand_dims", "transpose", "identity", "flatten", "ravel")),
        (TORCH, ("unsqueeze", "flatten", "permute", "clone", "repeat_interleave")),
        (TF + KERAS_OPS + NUMPY_LIKE, ("tile", "repeat", "broadcast_to")),
        (TF + KERAS_BACKEND, ("stop_gradient", "boolean_mask", "gather", "gather_nd")),
        (JAX_LAX, ("stop_gradient",)),
        (TORCH, ("index_select", "masked_select", "gather")),
    ],
    "constant": [
        (TF + KERAS_BACKEND, ("constant", "convert_to_tensor")),
        (KERAS_OPS, ("convert_to_tensor",)),
        (TORCH, ("tensor", "as_tensor")),
        (NUMPY_LIKE, ("array", "asarray", "float32")),
        (KERAS_BACKEND, ("cast_to_floatx", "variable")),
    ],
    "epsilon": [(KERAS_BACKEND + KERAS_CONFIG, ("epsilon",))],
    "finfo": [(TORCH + NUMPY_LIKE, ("finfo",))],
    "ones_like": [(TF + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("ones_like",))],
    # Casts to bool: the result is a 0/1 mask whatever went in (`jnp.bool_(m - eye)`, `x.bool()`).
    "to_bool": [(NUMPY_LIKE, ("bool_",))],
    # Tensor constructors: masks are often built as `zeros(...)` then filled by index stores (`m[i, j] = 1`), or as
    # `1 - eye(n)`; knowing their range keeps `1 + sum(mask * sigmoid(x))` provably >= 1.
    "zeros": [(TF + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("zeros",))],
    "ones": [(TF + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("ones",))],
    "eye": [(TF + TF_LINALG + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("eye",))],
    "cumsum": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("cumsum",))],
    "zeros_like": [(TF + KERAS_OPS + TORCH + NUMPY_LIKE + KERAS_BACKEND, ("zeros_like",))],
    # Comparisons: only needed to read the condition of `where`.
    "greater": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("greater", "gt"))],
    "greater_equal": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("greater_equal", "ge"))],
    "not_equal": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("not_equal", "ne"))],
    "equal": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("equal", "eq"))],
    "less": [(TF + TF_MATH + KERAS_OPS + TORCH + NUMPY_LIKE, ("less", "lt"))],
}

# Fused losses and ops that are numerically safe by construction; listed so analysis can treat their outputs as
# finite and nonnegative where the maths says so.
_FUSED_LOSSES = (
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "weighted_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
    "kl_div",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
)
for _ns in (TF_NN, TORCH_F, ("keras.losses", "tensorflow.keras.losses", "keras.ops", "tf_keras.losses"), KERAS_BACKEND):
    _SPEC.setdefault("fused_loss", []).append((_ns, _FUSED_LOSSES))

# Tensor methods (`x.log()`, `x.clamp(min=eps)`, `x.sum()`): method name -> canonical op. Only used when the receiver
# is not a module, `self` or `cls`.
TENSOR_METHODS: dict[str, str] = {
    "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p", "exp": "exp", "expm1": "expm1",
    "sqrt": "sqrt", "rsqrt": "rsqrt", "square": "square", "abs": "abs", "pow": "pow", "neg": "negative",
    "div": "divide", "true_divide": "divide", "reciprocal": "reciprocal",
    "clamp": "clip", "clip": "clip", "clamp_min": "maximum", "clamp_max": "minimum",
    "sigmoid": "sigmoid", "softmax": "softmax", "relu": "relu", "log_softmax": "log_softmax",
    "sum": "sum", "mean": "mean", "std": "std", "var": "var", "norm": "norm", "prod": "prod",
    "numel": "size", "nan_to_num": "nan_to_num",
    "float": "identity", "double": "identity", "half": "identity", "view": "identity", "reshape": "identity",
    "squeeze": "identity", "unsqueeze": "identity", "flatten": "identity", "contiguous": "identity",
    "detach": "identity", "to": "identity", "type_as": "identity", "view_as": "identity", "permute": "identity",
    "masked_select": "identity", "gather": "identity", "index_select": "identity", "astype": "identity",
    "repeat": "identity", "expand": "identity", "expand_as": "identity", "repeat_interleave": "identity",
    "clone": "identity", "tile": "identity", "cumsum": "cumsum", "bool": "to_bool",
}
# Methods that take no positional argument when they are the tensor op (`x.log()`); `self.log("loss", v)` in
# Lightning is not a log.
NO_ARG_METHODS = frozenset({
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "rsqrt", "square", "abs", "neg", "sigmoid",
    "reciprocal", "numel", "relu", "float", "double", "half", "contiguous", "detach", "bool",
})


@dataclass(frozen=True)
class Op:
    """A call resolved to a canonical op."""

    name: str  # canonical op, e.g. "log"
    qualified: str  # e.g. "tensorflow.math.log", or ".log" for a tensor method
    framework: str  # "tensorflow" | "keras" | "torch" | "jax" | "numpy" | "tensor-method"
    is_method: bool = False


def _build_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, rows in _SPEC.items():
        for namespaces, names in rows:
            for ns in namespaces:
                for n in names:
                    table.setdefault(f"{ns}.{n}", canonical)
    return table


QUALIFIED_TO_OP: dict[str, str] = _build_table()


def op_for_qualified(qualified: str) -> Op | None:
    canonical = QUALIFIED_TO_OP.get(qualified)
    if canonical is None:
        return None
    root = qualified.split(".", 1)[0]
    return Op(canonical, qualified, FRAMEWORK_OF_ROOT.get(root, root))


def op_for_method(method: str, n_positional: int) -> Op | None:
    canonical = TENSOR_METHODS.get(method)
    if canonical is None:
        return None
    if method in NO_ARG_METHODS and n_positional:
        return None
    return Op(canonical, f".{method}", "tensor-method", is_method=True)


# Module roots that mark a file as deep-learning code for the pre-filter.
FRAMEWORK_ROOTS = ("tensorflow", "keras", "tf_keras", "torch", "jax", "flax", "optax", "haiku")
