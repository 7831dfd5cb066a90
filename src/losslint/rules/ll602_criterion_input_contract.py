"""LL602 criterion-input-contract: CrossEntropyLoss given probabilities, NLLLoss/KLDivLoss given non-log ones."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.calls import int_literal, kwarg
from losslint.analysis.contracts import LossCall, input_kind, loss_call
from losslint.analysis.index import operand
from losslint.analysis.spelling import activation_edits, code, fused
from losslint.rules.base import FixSpec, Invalid, Replacement, Rule, Valid


class CriterionInputContract(Rule):
    code = "LL602"
    name = "criterion-input-contract"
    summary = "CrossEntropyLoss given softmax output; NLLLoss/KLDivLoss given probabilities instead of log-probabilities"
    what_it_does = (
        "Finds a PyTorch `CrossEntropyLoss` / `F.cross_entropy` whose input is a softmax or sigmoid output, and an "
        "`NLLLoss` / `F.nll_loss` / `KLDivLoss` / `F.kl_div` (or `optax.kl_divergence`) whose input is a softmax or "
        "sigmoid output rather than log-probabilities. It follows names assigned once, reshapes and indexing, "
        "same-module helpers, criterion objects bound to a name or to `self.criterion`, and the `forward` of a "
        "same-module `nn.Module` whose every return is a softmax."
    )
    why_bad = (
        "`CrossEntropyLoss` applies `log_softmax` itself: given probabilities it computes a softmax of a softmax, whose "
        "outputs lie within a factor e of each other, so the loss cannot go below log(C - 1 + e) - 1 (1.46 for 10 "
        "classes, even for a perfect prediction, where the logits' loss reaches 0) and the gradients are squashed: "
        "about 1/C of the logits' gradient for near-uniform predictions, and none at all for a confidently wrong one "
        "(2.5e-9 instead of 1.41 at a logit margin of 20). Training is slow or plateaus: a 10-class linear classifier "
        "trained with 200 SGD steps reaches 79% training accuracy instead of 96%. `NLLLoss` and `KLDivLoss` read their "
        "input as log-probabilities: given probabilities, `NLLLoss` returns the mean of -p[target] (a negative loss "
        "in [-1, 0] whose gradient is -1/N whatever p is: the true class probability is pushed up linearly, not "
        "logarithmically) and `kl_div` computes t * (log t - p), which is not a divergence: it is never positive "
        "(t log t <= 0 and t p >= 0) and is not 0 when the two distributions are equal. Nothing raises."
    )
    example = """\
        probs = F.softmax(model(x), dim=1)
        loss = F.nll_loss(probs, y)
    """
    use_instead = """\
        loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)   # or F.cross_entropy(model(x), y)
    """
    fix_safety = (
        "Unsafe: both fixes change the loss value by design, so they are applied only with `--unsafe-fixes`; "
        "confirmation checks that the new loss runs, differs and adds no NaN/Inf. A softmax given to "
        "`CrossEntropyLoss` / `F.cross_entropy` is removed (the criterion takes its own softmax over the class "
        "dimension 1), only when the softmax is over `dim=1` or `dim=-1` and reaches the criterion through names or "
        "dtype/device conversions alone; a softmax given to `NLLLoss` / `F.nll_loss` / `KLDivLoss` / `F.kl_div` / "
        "`optax.kl_divergence` becomes `log_softmax` with the same arguments, which is exactly the input those "
        "losses document. The activation is changed where it is written: inside the call, or where a name is "
        "assigned when the loss is that name's only reader. No fix for a sigmoid (whether the task is multi-label "
        "is the user's call), a softmax inside a helper or a model's `forward` (other code may want the "
        "probabilities), or a softmax whose dimension is implicit."
    )

    def visit_Call(self, node: cst.Call) -> None:
        lc = loss_call(self.context.index, self.context.facts, node, self.stmt)
        if lc is None or lc.pred is None or self.stmt is None:
            return
        spec = lc.spec
        if spec.framework not in ("torch", "optax") or spec.binary:
            return
        got = input_kind(self.context.index, self.context.facts, lc.pred, self.stmt)
        if got is None:
            return
        kind, _ = got
        what = self.source_of(lc.pred)
        if spec.expects == "logits" and spec.framework == "torch" and kind in ("softmax", "sigmoid"):
            self.report(node, f"{lc.via} applies log_softmax itself, but `{what}` is already a {kind} output: the "
                              f"softmax is applied twice, the loss cannot approach 0 and the gradients are squashed "
                              f"(pass the logits)", self._pass_logits(lc, kind, got[1]))
        elif spec.expects == "log-probabilities" and kind in ("softmax", "sigmoid"):
            if "kl" in spec.name.lower():
                self.report(node, f"{lc.via} expects log-probabilities as input, but `{what}` is a {kind} output: it "
                                  f"computes sum t * (log t - p), not a KL divergence, and can be negative (pass "
                                  f"log_softmax(...))", self._log_softmax(lc, kind, got[1]))
            else:
                self.report(node, f"{lc.via} expects log-probabilities, but `{what}` is a {kind} output: the loss is "
                                  f"-p, negative and not a cross-entropy (pass log_softmax(...), or the logits to "
                                  f"cross_entropy)", self._log_softmax(lc, kind, got[1]))

    def _pass_logits(self, lc: LossCall, kind: str, act: cst.CSTNode) -> FixSpec | None:
        """CrossEntropyLoss(softmax(z, dim=1)) -> CrossEntropyLoss(z): it takes the softmax over dim 1 itself."""
        index, stmt = self.context.index, self.stmt
        if kind != "softmax" or not isinstance(act, cst.Call) or stmt is None or lc.pred is None:
            return None  # a sigmoid before a cross-entropy: multi-label or multi-class is the user's call
        op = index.op_of(act)
        z = operand(act, op) if op is not None else None
        if op is None or z is None:
            return None
        rest = [a for a in act.args if a.value is not z]
        dim = kwarg(act, "dim", "axis")
        if dim is None and len(rest) == 1 and rest[0].keyword is None:
            dim = rest[0].value  # torch.softmax(z, 1), z.softmax(1)
        elif any(a.keyword is None or a.keyword.value not in ("dim", "axis") for a in rest):
            return None  # dtype=, _stacklevel=, ...: not a plain softmax
        if int_literal(dim) not in (1, -1):
            return None  # the criteria's class axis is 1 (the last of an (N, C) input): an implicit dim may differ
        edits = activation_edits(index, lc.pred, act, stmt, code(z),
                                 atomic=isinstance(z, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)),
                                 elementwise=False)
        if edits is None:
            return None
        return FixSpec("pass the logits, not the softmax output", "unsafe", tuple(Replacement(n, t) for n, t in edits),
                       expect="changed")

    def _log_softmax(self, lc: LossCall, kind: str, act: cst.CSTNode) -> FixSpec | None:
        """NLLLoss / KLDivLoss / optax.kl_divergence of softmax(z, ...) -> of log_softmax(z, ...), same arguments."""
        index, stmt = self.context.index, self.stmt
        if kind != "softmax" or not isinstance(act, cst.Call) or stmt is None or lc.pred is None:
            return None  # log(sigmoid(z)) is no distribution over classes
        op = index.op_of(act)
        if op is None:
            return None
        args = ", ".join(code(a.value) if a.keyword is None else f"{a.keyword.value}={code(a.value)}"
                         for a in act.args)
        new = fused(index, act, op, "log_softmax", args)
        if new is None:
            return None
        edits = activation_edits(index, lc.pred, act, stmt, new, atomic=True, elementwise=True)
        if edits is None:
            return None
        return FixSpec("pass log_softmax(...), not softmax(...)", "unsafe", tuple(Replacement(n, t) for n, t in edits),
                       expect="changed")

    VALID = [
        Valid("""
            import torch.nn as nn

            criterion = nn.CrossEntropyLoss()

            def train_step(model, x, y):
                logits = model(x)
                loss = criterion(logits, y)
                loss.backward()
        """, "logits to CrossEntropyLoss"),
        Valid("""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.log_softmax(logits, dim=1), target)
        """, "log_softmax + nll_loss"),
        Valid("""
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    return F.log_softmax(self.fc(x), dim=1)

            model = Net()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
        """, "the MNIST example: forward returns log_softmax"),
        Valid("""
            import torch.nn.functional as F

            def distill_loss(student_logits, teacher_logits, T=4.0):
                return F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                                reduction="batchmean") * T * T
        """, "kl_div with log-probabilities as input and probabilities as target"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def nll(logits, target):
                return F.nll_loss(torch.log(F.softmax(logits, dim=1)), target)
        """, "log of a softmax is a log-probability (LL102's business, not this rule's)"),
        Valid("""
            import torch.nn as nn
            import torch.nn.functional as F

            class Model(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.criterion = nn.CrossEntropyLoss()

                def forward(self, x, y):
                    logits = self.head(x)
                    probs = F.softmax(logits, dim=-1)
                    return self.criterion(logits, y), probs
        """, "probabilities computed for reporting, logits to the criterion"),
        Valid("""
            import jax
            import optax

            def loss_fn(params, x, teacher_probs):
                log_p = jax.nn.log_softmax(apply(params, x))
                return optax.kl_divergence(log_p, teacher_probs).mean()
        """, "optax kl_divergence with log-probabilities"),
        Valid("""
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.NLLLoss()

                def step(self, logits, y):
                    p = logits.log_softmax(dim=-1)
                    loss = self.criterion(p, y)
                    loss.backward()
        """, "NLLLoss given log_softmax (the fixed form)"),
    ]
    INVALID = [
        Invalid("""
            import torch.nn as nn
            import torch.nn.functional as F

            criterion = nn.CrossEntropyLoss()
            probs = F.softmax(model(x), dim=1)
            loss = criterion(probs, y)
            loss.backward()
        """, "LL602", 6, "softmax output to a CrossEntropyLoss bound to a name", fixed="""
            import torch.nn as nn
            import torch.nn.functional as F

            criterion = nn.CrossEntropyLoss()
            probs = model(x)
            loss = criterion(probs, y)
            loss.backward()
        """),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.softmax(logits, dim=1), target)
        """, "LL602", 4, "nll_loss on probabilities: the loss is negative", fixed="""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.log_softmax(logits, dim=1), target)
        """),
        Invalid("""
            import torch.nn.functional as F

            def distill_loss(student_logits, teacher_logits):
                return F.kl_div(F.softmax(student_logits, dim=1), F.softmax(teacher_logits, dim=1))
        """, "LL602", 4, "kl_div input must be log-probabilities (pytorch#60928)", fixed="""
            import torch.nn.functional as F

            def distill_loss(student_logits, teacher_logits):
                return F.kl_div(F.log_softmax(student_logits, dim=1), F.softmax(teacher_logits, dim=1))
        """),
        Invalid("""
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    return F.softmax(self.fc(x), dim=1)

            model = Net()
            criterion = nn.CrossEntropyLoss()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
        """, "LL602", 12, "a same-module model whose forward returns softmax, fed to CrossEntropyLoss"),
        Invalid("""
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.NLLLoss()

                def step(self, logits, y):
                    p = logits.softmax(dim=-1)
                    loss = self.criterion(p, y)
                    loss.backward()
        """, "LL602", 9, "NLLLoss held on self, given softmax probabilities", fixed="""
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.criterion = nn.NLLLoss()

                def step(self, logits, y):
                    p = logits.log_softmax(dim=-1)
                    loss = self.criterion(p, y)
                    loss.backward()
        """),
        Invalid("""
            import torch
            import torch.nn as nn

            def kd_loss(student, teacher):
                return nn.KLDivLoss(reduction="batchmean")(torch.softmax(student, 1), torch.softmax(teacher, 1))
        """, "LL602", 5, "KLDivLoss called directly on probabilities", fixed="""
            import torch
            import torch.nn as nn

            def kd_loss(student, teacher):
                return nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(student, 1), torch.softmax(teacher, 1))
        """),
        Invalid("""
            import jax
            import optax

            def loss_fn(params, x, teacher_probs):
                p = jax.nn.softmax(apply(params, x))
                return optax.kl_divergence(p, teacher_probs).mean()
        """, "LL602", 6, "optax kl_divergence takes log_predictions", fixed="""
            import jax
            import optax

            def loss_fn(params, x, teacher_probs):
                p = jax.nn.log_softmax(apply(params, x))
                return optax.kl_divergence(p, teacher_probs).mean()
        """),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, y):
                p = F.softmax(logits, dim=1)
                entropy = -(p * p.clamp_min(1e-8).log()).sum(1).mean()
                return F.nll_loss(p, y) - 0.1 * entropy
        """, "LL602", 6, "probabilities also used for an entropy bonus: log_softmax is passed at the loss", fixed="""
            import torch.nn.functional as F

            def loss_fn(logits, y):
                p = F.softmax(logits, dim=1)
                entropy = -(p * p.clamp_min(1e-8).log()).sum(1).mean()
                return F.nll_loss(F.log_softmax(logits, dim=1), y) - 0.1 * entropy
        """),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.cross_entropy(torch.sigmoid(logits), target)
        """, "LL602", 5, "no fix: a sigmoid before cross_entropy (multi-label or multi-class is the user's call)"),
    ]
