"""LL602 criterion-input-contract: CrossEntropyLoss given probabilities, NLLLoss/KLDivLoss given non-log ones."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.contracts import input_kind, loss_call
from losslint.rules.base import Invalid, Rule, Valid


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
        "outputs lie within a factor e of each other, so the loss cannot go below about log(C) - 1 and the gradients "
        "are squashed: training is slow or plateaus. `NLLLoss` and `KLDivLoss` read their input as log-probabilities: "
        "given probabilities, `NLLLoss` returns -p (a negative loss that is minimised by pushing the true class "
        "probability up linearly, not logarithmically) and `kl_div` computes sum t * (log t - p), which is not a "
        "divergence and is often negative. Nothing raises."
    )
    example = """\
        probs = F.softmax(model(x), dim=1)
        loss = F.nll_loss(probs, y)
    """
    use_instead = """\
        loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)   # or F.cross_entropy(model(x), y)
    """

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
                              f"(pass the logits)")
        elif spec.expects == "log-probabilities" and kind in ("softmax", "sigmoid"):
            if "kl" in spec.name.lower():
                self.report(node, f"{lc.via} expects log-probabilities as input, but `{what}` is a {kind} output: it "
                                  f"computes sum t * (log t - p), not a KL divergence, and can be negative (pass "
                                  f"log_softmax(...))")
            else:
                self.report(node, f"{lc.via} expects log-probabilities, but `{what}` is a {kind} output: the loss is "
                                  f"-p, negative and not a cross-entropy (pass log_softmax(...), or the logits to "
                                  f"cross_entropy)")

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
    ]
    INVALID = [
        Invalid("""
            import torch.nn as nn
            import torch.nn.functional as F

            criterion = nn.CrossEntropyLoss()
            probs = F.softmax(model(x), dim=1)
            loss = criterion(probs, y)
            loss.backward()
        """, "LL602", 6, "softmax output to a CrossEntropyLoss bound to a name"),
        Invalid("""
            import torch.nn.functional as F

            def loss_fn(logits, target):
                return F.nll_loss(F.softmax(logits, dim=1), target)
        """, "LL602", 4, "nll_loss on probabilities: the loss is negative"),
        Invalid("""
            import torch.nn.functional as F

            def distill_loss(student_logits, teacher_logits):
                return F.kl_div(F.softmax(student_logits, dim=1), F.softmax(teacher_logits, dim=1))
        """, "LL602", 4, "kl_div input must be log-probabilities (pytorch#60928)"),
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
        """, "LL602", 9, "NLLLoss held on self, given softmax probabilities"),
        Invalid("""
            import torch
            import torch.nn as nn

            def kd_loss(student, teacher):
                return nn.KLDivLoss(reduction="batchmean")(torch.softmax(student, 1), torch.softmax(teacher, 1))
        """, "LL602", 5, "KLDivLoss called directly on probabilities"),
        Invalid("""
            import jax
            import optax

            def loss_fn(params, x, teacher_probs):
                p = jax.nn.softmax(apply(params, x))
                return optax.kl_divergence(p, teacher_probs).mean()
        """, "LL602", 6, "optax kl_divergence takes log_predictions"),
    ]
