"""A PyTorch training loop. Each `# BUG LLxxx` comment marks a line losslint must report."""

import torch
import torch.nn.functional as F


class MaskedMSELoss(torch.nn.Module):
    def forward(self, pred, target, mask):
        return ((pred - target) ** 2 * mask).sum() / mask.sum()  # BUG LL103: a batch with an empty mask


def weighted_bce(pred, target, pos_weight=2.0):
    return -(pos_weight * target * torch.log(pred) + (1 - target) * torch.log(1 - pred)).mean()  # BUG LL101: pred hits 0 and 1


def train(model, loader, optimizer):
    for x, y in loader:
        probs = model(x).softmax(dim=-1)
        loss = -(F.one_hot(y, 10) * probs.log()).sum(dim=1).mean()  # BUG LL102: log of softmax
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
