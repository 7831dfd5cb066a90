"""PyTorch Lightning: `training_step`'s returned value and `manual_backward(loss)` are loss scopes."""

from __future__ import annotations

import textwrap

from losslint.api import lint_source

LIGHTNING = textwrap.dedent('''
    import torch
    import lightning as L


    class Manual(L.LightningModule):
        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            x, y = batch
            p = torch.sigmoid(self(x))
            loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
            self.manual_backward(loss)
            opt.step()


    class Inline(L.LightningModule):
        def training_step(self, batch, batch_idx):
            x, y = batch
            p = torch.sigmoid(self(x))
            return -(y * torch.log(p)).mean()


    class Logged(L.LightningModule):
        def training_step(self, batch, batch_idx):
            x, y = batch
            probs = torch.softmax(self(x), dim=-1)
            loss = torch.nn.functional.nll_loss(torch.log(probs), y)
            self.log("train_loss", loss)
            return {"loss": loss}


    class NotLightning:
        def training_step(self, batch, batch_idx):
            x, y = batch
            p = torch.sigmoid(self(x))
            return -(y * torch.log(p)).mean()
''')


def _found() -> list[tuple[str, int, str | None]]:
    result = lint_source(LIGHTNING, "module.py")
    return [(d.code, d.range.start.line + 1, d.scope) for d in result.diagnostics]


def test_training_step_return_and_manual_backward_are_scopes() -> None:
    found = _found()
    lines = {line for _, line, _ in found}
    assert {11, 20, 27} <= lines, found  # manual_backward slice, inline return, returned dict
    inline = [s for _, line, s in found if line == 20]
    assert inline and "Inline.training_step" in inline[0] and "Lightning" in inline[0]


def test_a_training_step_outside_a_lightning_module_is_not_a_scope() -> None:
    assert not [f for f in _found() if f[1] >= 36], _found()
