"""The PyTorch training loop written safely: losslint must stay silent on this file."""

import torch
import torch.nn.functional as F


class MaskedMSELoss(torch.nn.Module):
    def forward(self, pred, target, mask):
        return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1)


class SoftDiceLoss(torch.nn.Module):
    def __init__(self, smooth=1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits, target):
        probs = torch.sigmoid(logits)
        inter = (probs * target).sum(dim=(1, 2))
        union = probs.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
        return (1 - (2 * inter + self.smooth) / (union + self.smooth)).mean()


def weighted_bce(pred, target, pos_weight=2.0, eps=1e-7):
    pred = pred.clamp(eps, 1 - eps)
    return -(pos_weight * target * torch.log(pred) + (1 - target) * torch.log(1 - pred)).mean()


def train(model, loader, optimizer):
    for x, y in loader:
        logits = model(x)
        log_probs = F.log_softmax(logits, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(dim=1).mean()
        loss = F.nll_loss(log_probs, y) - 0.01 * entropy
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
