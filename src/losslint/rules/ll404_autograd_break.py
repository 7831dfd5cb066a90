"""LL404 autograd-break: `.item()` / `.detach()` / `.data` / `torch.tensor(t)` / the `requires_grad = True` hack in a
PyTorch loss path."""

from __future__ import annotations

import libcst as cst

from losslint.analysis.dataflow import DataFlow
from losslint.rules.base import Invalid, Rule, Valid


class AutogradBreak(Rule):
    code = "LL404"
    name = "autograd-break"
    summary = "torch .item()/.detach()/.data/torch.tensor(x)/`requires_grad = True` hack inside the loss path"
    what_it_does = (
        "In PyTorch code, finds `.item()`, `.tolist()`, `.detach()`, `.data`, `.numpy()` and re-wrapping with "
        "`torch.tensor(t)` / `torch.Tensor(t)` / `t.new_tensor(...)` applied to a value derived from the model's "
        "output, when the loss `.backward()` is called on (or a loss function's or loss module's return value) - or "
        "one additive term of it - depends on the output only through them. It also finds `loss.requires_grad = True` "
        "/ `loss.requires_grad_()` on a loss that has no gradient path from the model. A detached value used only as "
        "a weight, a target or a straight-through estimator, labels, and logging after `backward()` are not reported."
    )
    why_bad = (
        "Each of these returns a constant to autograd. If the whole loss goes through one, `backward()` raises "
        "\"element 0 of tensors does not require grad and does not have a grad_fn\"; the popular workaround - "
        "setting `requires_grad = True` on the loss - silences the error, but the loss is a new leaf: no parameter "
        "ever receives a gradient and the model never learns (ronghuaiyang/arcface-pytorch#56). If only one term goes "
        "through one, that term silently contributes nothing."
    )
    example = """\
        out = model(x)
        loss = torch.tensor(1 - dice_score(out.detach().cpu().numpy(), y.numpy()))
        loss.requires_grad = True
        loss.backward()
    """
    use_instead = """\
        out = model(x)
        probs = torch.sigmoid(out)
        inter = (probs * y).sum()
        loss = 1 - (2 * inter + 1) / (probs.sum() + y.sum() + 1)    # torch ops on tensors with a grad_fn
        loss.backward()
    """
    fix_safety = "No automatic fix: the loss has to be rewritten with differentiable torch ops."
    # `loss.requires_grad = True` sits between the statements that compute the loss and `.backward()`, outside the
    # backward slice: the rule looks at every statement and names the loss's scope itself.
    scoped = False

    def _df(self) -> DataFlow:
        return DataFlow.of(self.context.index, self.context.scopes, self.context.facts)

    def _check(self, node: cst.CSTNode) -> None:
        if self.context.scope is None:
            return
        finding = self._df().finding(node, "break")
        if finding is None:
            return
        consequence = finding.consequence("the loss has no gradient path from the model (backward() raises, or "
                                          "trains nothing if requires_grad is forced)")
        self.report(node, f"{finding.culprit.what} in `{self.source_of(node, 50)}` cuts the value from the autograd "
                          f"graph: {consequence}; keep the tensor and compute with torch ops")

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_":
            enable = not node.args or (isinstance(node.args[0].value, cst.Name) and node.args[0].value.value == "True")
            if enable:
                self._hack(node, func.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "data":
            self._check(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        if not (isinstance(node.value, cst.Name) and node.value.value == "True"):
            return
        for t in node.targets:
            target = t.target
            if isinstance(target, cst.Attribute) and target.attr.value == "requires_grad":
                self._hack(target, target.value)

    def _hack(self, node: cst.CSTNode, tensor: cst.BaseExpression) -> None:
        stmt = self.stmt
        df = self._df()
        if stmt is None or not isinstance(tensor, cst.Name) or not df.is_torch(stmt):
            return
        roots = df.roots_through(tensor.value, stmt)
        # the hack on a loss whose break LL404 already reports (`.detach()` upstream) is the same bug: one finding
        if roots and all(not r.dep.grad and not any(df.culprits[c].kind == "break" for c in r.dep.cut)
                         for r in roots):
            message = (f"`requires_grad = True` on `{tensor.value}`, which has no gradient path from the model: it "
                       f"silences the backward() error, but no parameter ever receives a gradient; compute the loss "
                       f"with torch ops on the model's output instead")
            self.report(node, message, fallback_scope=self._scope_of(roots[0]))

    def _scope_of(self, root):  # type: ignore[no-untyped-def]
        scopes = self.context.scopes
        stmt = root.stmt
        return scopes.by_stmt.get(id(stmt.node)) or scopes.scope_of_func(stmt.func) or next(
            (scopes.by_stmt[id(d.stmt.node)] for name in [self.source_of(root.expr)]
             for d in (stmt.func.defs if stmt.func is not None else scopes.index.module_defs).get(name, [])
             if d.stmt is not None and id(d.stmt.node) in scopes.by_stmt), None)

    VALID = [
        Valid("""
            import torch
            import torch.nn.functional as F

            def train(model, loader, optimizer):
                total = 0.0
                for x, y in loader:
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item()
        """, "loss.item() for logging after backward()"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def distillation_loss(student_logits, teacher_logits, target, T=4.0):
                soft = F.softmax(teacher_logits.detach() / T, dim=-1)
                kd = F.kl_div(F.log_softmax(student_logits / T, dim=-1), soft, reduction="batchmean") * T * T
                return kd + F.cross_entropy(student_logits, target)
        """, "a detached teacher as the target of a differentiable term"),
        Valid("""
            import torch

            def vq_loss(z, codebook):
                d = torch.cdist(z, codebook)
                q = codebook[d.argmin(dim=-1)]
                z_q = z + (q - z).detach()
                return ((q.detach() - z) ** 2).mean() + ((q - z.detach()) ** 2).mean() + z_q.pow(2).mean() * 0.0
        """, "VQ-VAE: detach inside commitment terms and the straight-through estimator"),
        Valid("""
            import torch
            import torch.nn.functional as F

            class FocalLoss(torch.nn.Module):
                def forward(self, logits, target, gamma=2.0):
                    logp = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
                    weight = (1 - logp.exp()).detach() ** gamma
                    return -(weight * logp).mean()
        """, "a detached weight of a differentiable term"),
        Valid("""
            import torch

            def fgsm(model, x, y, loss_fn, eps=0.03):
                x = x.clone().detach()
                x.requires_grad = True
                loss = loss_fn(model(x), y)
                loss.backward()
                return (x + eps * x.grad.sign()).detach()
        """, "requires_grad on an input leaf, not on the loss"),
        Valid("""
            import torch
            import torch.nn.functional as F

            def train_step(model, x, y, optimizer):
                out = model(x)
                loss = F.mse_loss(out, y.float())
                with torch.no_grad():
                    scale = out.abs().mean().item()
                loss = loss / max(scale, 1.0)
                loss.backward()
                optimizer.step()
        """, "a scale read with .item() under no_grad: a weight, not a term"),
        Valid("""
            import torch

            def smooth_labels_loss(logits, target, eps=0.1):
                n = logits.size(-1)
                soft = torch.full_like(logits, eps / (n - 1)).scatter_(1, target.unsqueeze(1), 1 - eps)
                return -(soft * logits.log_softmax(-1)).sum(-1).mean()
        """, "targets built from labels"),
        Valid("""
            import numpy as np
            import torch

            def lovasz_softmax_loss(probas, labels, class_weights=None):
                if class_weights is not None and isinstance(class_weights, np.ndarray):
                    class_weights = torch.from_numpy(class_weights).to(probas.device)
                errors = (labels.float() - probas).abs()
                return errors.mean() if class_weights is None else (errors * class_weights).mean()
        """, "torch.from_numpy of a NumPy array is no re-wrap of a tensor (smp 0.6)"),
        Valid("""
            import torch

            def check_module_backward(module, inp):
                inp.requires_grad_(True)
                out = module(inp)
                grad_out = out.data.clone().normal_()
                out.backward(grad_out)
                return inp.grad
        """, "out.backward(gradient): the argument is the output's gradient, not the loss (torch 2.13 tests)"),
    ]
    INVALID = [
        Invalid("""
            import torch
            from sklearn.metrics import f1_score

            def train_step(model, x, y, optimizer):
                preds = model(x).argmax(dim=1)
                loss = 1 - torch.tensor(f1_score(y.numpy(), preds.numpy()), dtype=torch.float32)
                loss.requires_grad = True
                loss.backward()
                optimizer.step()
        """, "LL404", 7, "the requires_grad = True hack (ronghuaiyang/arcface-pytorch#56)"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def train(model, loader, optimizer):
                for x, y in loader:
                    out = model(x)
                    loss = F.cross_entropy(out, y) + 0.01 * out.norm().item()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        """, "LL404", 7, ".item() in a regulariser term: it contributes no gradient"),
        Invalid("""
            import torch

            class MultiTaskLoss(torch.nn.Module):
                def forward(self, outputs, targets):
                    losses = [torch.nn.functional.mse_loss(o, t) for o, t in zip(outputs, targets)]
                    return torch.tensor(losses).sum()
        """, "LL404", 6, "torch.tensor() re-wraps the task losses"),
        Invalid("""
            import torch

            def iou_loss(pred, target):
                p = pred.detach()
                inter = (p * target).sum()
                return 1 - inter / (p.sum() + target.sum() - inter + 1e-6)
        """, "LL404", 4, ".detach() of the whole prediction"),
        Invalid("""
            import torch

            def contrastive_loss(emb_a, emb_b, label, margin=1.0):
                d = (emb_a.data - emb_b.data).pow(2).sum(1)
                return (label * d + (1 - label) * torch.relu(margin - d.sqrt()).pow(2)).mean()
        """, "LL404", 4, ".data of the embeddings"),
        Invalid("""
            import torch
            import torch.nn.functional as F

            def train(model, loader, optimizer):
                for x, y in loader:
                    scores = model(x).detach().cpu().numpy()
                    loss = torch.tensor(custom_metric(scores, y))
                    loss.requires_grad_()
                    loss.backward()
        """, "LL404", 6, ".detach() of the model output: reported there, not again at the requires_grad_() hack"),
    ]
