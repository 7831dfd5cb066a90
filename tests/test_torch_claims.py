"""Real PyTorch evidence for the claims of LL203's and LL602's docs (CPU, small, a few seconds).

LL203: a loss tensor kept across iterations keeps its graph; LL602: criteria fed probabilities instead of logits or
log-probabilities compute something else, silently. Where a claim is about an INVALID example of the rule, the
example's own source is linted (it must report) and then run for real."""

from __future__ import annotations

import gc
import math
import warnings
import weakref

import pytest

from losslint.api import lint_source
from losslint.rules import all_rules

pytestmark = pytest.mark.torch

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202
    """Tiny tensors: intra-op threads only contend with the other test processes (10x slower on a loaded box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _example(code: str, kind: str, index: int) -> str:
    rule = next(r for r in all_rules() if r.code == code)
    return getattr(rule, kind)[index].text


def _reported_lines(source: str, code: str) -> list[int]:
    result = lint_source(source, "example.py")
    assert result.error is None, result.error
    return sorted({d.range.start.line + 1 for d in result.diagnostics if d.code == code})


def _run(source: str, **names: object) -> dict:
    """Execute an example with real objects bound to the names it takes from its caller."""
    namespace: dict = dict(names)
    exec(compile(source, "example.py", "exec"), namespace)  # noqa: S102 - our own rule examples
    return namespace


# ---- LL203 graph-kept-alive-accumulation ------------------------------------------------------------------------
class _SavedTensors:
    """Counts the tensors autograd saves for backward (the activations) that are still alive."""

    def __init__(self) -> None:
        self.alive: weakref.WeakSet = weakref.WeakSet()

    class _Box:
        def __init__(self, t) -> None:  # noqa: ANN001
            self.t = t

    def pack(self, t):  # noqa: ANN001, ANN201
        box = self._Box(t.detach())  # detached: holding the tensor itself would make a reference cycle with its node
        self.alive.add(box)
        return box

    @staticmethod
    def unpack(box):  # noqa: ANN001, ANN205
        return box.t

    def hooks(self):  # noqa: ANN201
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)

    def nbytes(self, exclude=()) -> int:  # noqa: ANN001
        """Bytes of the distinct storages still saved, not counting those of `exclude` (the model's weights)."""
        gc.collect()
        skip = {p.untyped_storage().data_ptr() for p in exclude}
        storages = {b.t.untyped_storage().data_ptr(): b.t.untyped_storage().nbytes() for b in list(self.alive)}
        return sum(n for ptr, n in storages.items() if ptr not in skip)


def _graph_nodes(*roots) -> int:  # noqa: ANN002
    """Autograd nodes reachable from the given tensors."""
    seen: set = set()
    stack = [r.grad_fn for r in roots if isinstance(r, torch.Tensor) and r.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return len(seen)


class _SGD:
    """Plain SGD with the optimizer interface the examples call (torch.optim's first use imports torch._dynamo,
    about 3 s)."""

    def __init__(self, params, lr: float) -> None:  # noqa: ANN001
        self.params, self.lr = list(params), lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p -= self.lr * p.grad


def _mlp():  # noqa: ANN202
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def _loader(n: int) -> list:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(32, 64, generator=g), torch.randint(0, 10, (32,), generator=g)) for _ in range(n)]


def test_ll203_validation_loop_keeps_every_batch_activations() -> None:
    """INVALID example 3 (an eval loop without no_grad): every batch's saved activations stay alive with the total;
    the same loop with `.item()` keeps none."""
    src = _example("LL203", "INVALID", 3)
    assert _reported_lines(src, "LL203") == [8]
    fixed = src.replace("val_loss += loss", "val_loss += loss.item()")
    assert _reported_lines(fixed, "LL203") == []
    model, crit = _mlp(), nn.CrossEntropyLoss()
    kept = {}
    for label, code in (("tensor", src), ("item", fixed)):
        validate = _run(code)["validate"]
        for n in (5, 10):
            saved = _SavedTensors()
            with saved.hooks():
                result = validate(model, _loader(n), crit)
            kept[label, n] = (saved.nbytes(exclude=model.parameters()), _graph_nodes(result))
            del result
    per_batch = kept["tensor", 5][0] / 5
    # the input x (32x64), the hidden activation (32x256, saved by the ReLU and the second layer), the log-softmax
    # (32x10), the targets (32 int64) and the loss
    assert per_batch == 4 * (32 * 64 + 32 * 256 + 32 * 10) + 8 * 32 + 4 == 42500  # 42.5 KB per batch of 32
    assert kept["tensor", 10][0] == pytest.approx(10 * per_batch)  # grows linearly with the batches
    assert kept["item", 5] == kept["item", 10] == (0, 0)  # a Python float: nothing kept


def test_ll203_training_loop_keeps_every_graph_after_backward() -> None:
    """INVALID example 0 (the classic running total): backward frees the saved activations, but every iteration's
    graph stays reachable from the total, one more node is chained per iteration, and host memory grows."""
    src = _example("LL203", "INVALID", 0)
    assert _reported_lines(src, "LL203") == [10]
    fixed = src.replace("total_loss += loss", "total_loss += loss.item()")
    assert _reported_lines(fixed, "LL203") == []
    train = _run(src)["train"]
    train_fixed = _run(fixed)["train"]
    model, crit = _mlp(), nn.CrossEntropyLoss()
    nodes = {}
    for n in (5, 10, 20):
        opt = _SGD(model.parameters(), lr=0.01)
        saved = _SavedTensors()
        with saved.hooks():
            total = train(model, _loader(n), opt, crit)
        assert saved.nbytes() == 0  # backward freed the activations ...
        nodes[n] = _graph_nodes(total)  # ... not the graph
        adds = 0
        fn = total.grad_fn.next_functions[0][0]  # total / len(loader) -> the last `+=`
        while fn is not None and type(fn).__name__ == "AddBackward0":
            adds += 1
            fn = fn.next_functions[0][0]
        assert adds == n  # one AddBackward0 per iteration (`0 + loss` too): the total's graph is a chain
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            total.backward()
    per_iteration = (nodes[20] - nodes[10]) / 10
    assert per_iteration == (nodes[10] - nodes[5]) / 5 == 8  # the MLP's 7 backward nodes + the `+=`
    opt = _SGD(model.parameters(), lr=0.01)
    assert isinstance(train_fixed(model, _loader(5), opt, crit), float)


def _heap_in_use():  # noqa: ANN202
    """Bytes malloc has handed out and not got back (glibc's mallinfo2: arenas + mmapped chunks), or None. Unlike
    the RSS, it does not depend on what earlier tests freed."""
    import ctypes
    import ctypes.util

    class _Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Info

    def used() -> int:
        info = fn()
        return info.uordblks + info.hblkhd

    return used


def test_ll203_host_memory_grows_with_every_batch_even_after_backward() -> None:
    """The docs' figure: about 5.6 KB of host memory per batch for an 8-16-2 MLP, with `.backward()` on every loss
    (each batch's 8 autograd nodes); `.item()` keeps nothing."""
    used = _heap_in_use()
    if used is None:
        pytest.skip("needs glibc's mallinfo2")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    crit = nn.CrossEntropyLoss()
    opt = _SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(4, 8), torch.randint(0, 2, (4,))
    growth, nodes = {}, {}
    for mode in ("item", "tensor", "item", "tensor"):
        total = 0
        gc.collect()
        before = used()
        n = 500
        for _ in range(n):
            loss = crit(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss if mode == "tensor" else loss.item()
        gc.collect()
        growth[mode] = (used() - before) / n  # the second run of each mode is kept: warm allocator
        nodes[mode] = _graph_nodes(total)
        del total, loss
    assert 4500 < growth["tensor"] < 7000  # bytes per batch
    assert growth["item"] < 100
    assert nodes == {"tensor": 8 * n + 4, "item": 0}  # + the 4 weights' AccumulateGrad nodes, shared


def test_ll203_appending_the_tensor_keeps_each_graph() -> None:
    """INVALID example 1 (`losses.append(loss)` in a script): the list keeps one graph per iteration."""
    src = _example("LL203", "INVALID", 1)
    assert _reported_lines(src, "LL203") == [10]
    model = _mlp()
    head = nn.Linear(10, 1)
    net = nn.Sequential(model, head)
    opt = _SGD(net.parameters(), lr=0.01)
    loader = [(x, torch.randn(32, 1)) for x, _ in _loader(3)]
    ns = _run(src.replace("range(10)", "range(2)"), model=net, train_loader=loader, optimizer=opt)
    losses = ns["losses"]
    assert len(losses) == 6 and all(t.grad_fn is not None for t in losses)
    assert _graph_nodes(*losses) > 6 * 7
    fixed = _run(src.replace("range(10)", "range(2)").replace("losses.append(loss)", "losses.append(loss.item())"),
                 model=net, train_loader=loader, optimizer=opt)
    assert all(isinstance(v, float) for v in fixed["losses"])


# ---- LL602 criterion-input-contract -----------------------------------------------------------------------------
C = 10


def test_ll602_cross_entropy_on_softmax_output_has_a_floor() -> None:
    """INVALID example 0: CrossEntropyLoss given probabilities computes a softmax of a softmax, within a factor e of
    uniform, so the loss cannot go below log(C - 1 + e) - 1 (1.46 for 10 classes) even for a perfect prediction."""
    src = _example("LL602", "INVALID", 0)
    assert _reported_lines(src, "LL602") == [6]
    logits = torch.full((4, C), -20.0)
    y = torch.tensor([3, 1, 4, 1])
    logits[torch.arange(4), y] = 20.0  # confident and right
    ns = _run(src, model=lambda inp: inp, x=logits.clone().requires_grad_(True), y=y)  # backward runs, no error
    floor = math.log(C - 1 + math.e) - 1
    assert float(ns["loss"].detach()) == pytest.approx(floor, abs=1e-6)
    assert floor == pytest.approx(1.4612, abs=1e-4) and floor > math.log(C) - 1
    assert float(F.cross_entropy(logits, y)) < 1e-6  # the logits' loss reaches 0
    twice = F.softmax(F.softmax(torch.randn(1000, C) * 10, dim=1), dim=1)
    ratio = (twice.max(1).values / twice.min(1).values).max()
    assert float(ratio) <= math.e * (1 + 1e-6)


def test_ll602_cross_entropy_on_softmax_output_squashes_the_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(256, C, generator=g) * 0.1).requires_grad_(True)  # near-uniform predictions
    y = torch.randint(0, C, (256,), generator=g)
    right = torch.autograd.grad(F.cross_entropy(z, y), z)[0].norm()
    twice = torch.autograd.grad(F.cross_entropy(F.softmax(z, dim=1), y), z)[0].norm()
    assert float(twice / right) == pytest.approx(1 / C, rel=0.05)  # about 1/C of the logits' gradient
    wrong = torch.zeros(1, C)
    wrong[0, 0] = 20.0  # confidently wrong for class 3
    wrong.requires_grad_(True)
    target = torch.tensor([3])
    g_right = torch.autograd.grad(F.cross_entropy(wrong, target), wrong)[0].norm()
    g_twice = torch.autograd.grad(F.cross_entropy(F.softmax(wrong, dim=1), target), wrong)[0].norm()
    assert float(g_right) == pytest.approx(math.sqrt(2), rel=1e-4)
    assert float(g_twice) == pytest.approx(2.5e-9, rel=0.05)  # no gradient where it is needed most


def test_ll602_cross_entropy_on_softmax_output_trains_worse() -> None:
    """A 10-class linear classifier, 200 full-batch SGD steps: 96% training accuracy from logits, 79% from softmax
    outputs, whose loss stays above its floor."""
    g = torch.Generator().manual_seed(0)
    d, n = 20, 512
    w_true = torch.randn(d, C, generator=g)
    x = torch.randn(n, d, generator=g)
    y = (x @ w_true).argmax(1)
    results = {}
    for mode in ("logits", "probs"):
        torch.manual_seed(1)
        lin = nn.Linear(d, C)
        opt = _SGD(lin.parameters(), lr=0.5)
        for _ in range(200):
            out = lin(x)
            loss = F.cross_entropy(out if mode == "logits" else F.softmax(out, dim=1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            results[mode] = (float(loss), float((lin(x).argmax(1) == y).float().mean()))
    assert results["logits"][1] == pytest.approx(0.965, abs=0.02)
    assert results["probs"][1] == pytest.approx(0.795, abs=0.02)
    assert results["probs"][0] > math.log(C - 1 + math.e) - 1


def test_ll602_nll_loss_on_probabilities_is_minus_p() -> None:
    """INVALID example 1: nll_loss given probabilities returns -mean(p[target]), negative, with a constant gradient
    (the true class probability pushed up linearly, not logarithmically)."""
    src = _example("LL602", "INVALID", 1)
    assert _reported_lines(src, "LL602") == [4]
    loss_fn = _run(src)["loss_fn"]
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, C, generator=g, requires_grad=True)
    y = torch.randint(0, C, (64,), generator=g)
    loss = float(loss_fn(z, y).detach())
    p = F.softmax(z, dim=1).detach()
    assert loss == pytest.approx(float(-p[torch.arange(64), y].mean()), abs=1e-6)
    assert -1.0 <= loss < 0.0
    for probs in (torch.full((2, C), 0.1), torch.eye(C)[:2] * 0.9 + 0.01):  # uniform, confident
        probs = probs.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.nll_loss(probs, torch.tensor([0, 1])), probs)
        assert grad[0, 0] == grad[1, 1] == -0.5  # -1/N whatever p is
    for p_true, expected in ((0.1, -10.0), (0.9, -1 / 0.9)):  # the log-probability form: d(-log p)/dp = -1/p
        probs = torch.full((1, C), (1 - p_true) / (C - 1))
        probs[0, 0] = p_true
        probs.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.nll_loss(probs.log(), torch.tensor([0])), probs)
        assert float(grad[0, 0]) == pytest.approx(expected, rel=1e-5)


def test_ll602_kl_div_on_probabilities_is_not_a_divergence() -> None:
    """INVALID example 2: kl_div reads its input as log-probabilities; given probabilities it computes
    sum t * (log t - p), which is never positive and is not 0 for equal distributions."""
    src = _example("LL602", "INVALID", 2)
    assert _reported_lines(src, "LL602") == [4]
    distill_loss = _run(src)["distill_loss"]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        s, t = torch.randn(8, C, generator=g) * 3, torch.randn(8, C, generator=g) * 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reduction='mean' warns about its scale, it does not raise
            value = float(distill_loss(s, t))
        p, q = F.softmax(s, dim=1), F.softmax(t, dim=1)
        assert value == pytest.approx(float((q * (q.log() - p)).mean()), abs=1e-6)
        assert value <= 0.0  # t log t <= 0 and t p >= 0
        assert float(F.kl_div(p.log(), q, reduction="batchmean")) >= 0.0  # the real KL
    same = F.softmax(torch.randn(8, C, generator=g), dim=1)
    assert float(F.kl_div(same, same, reduction="batchmean")) < -1.0  # equal distributions, not 0
    assert float(F.kl_div(same.log(), same, reduction="batchmean")) == pytest.approx(0.0, abs=1e-6)
