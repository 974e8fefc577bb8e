"""Per-member losses of a stack's output `[M, batch, classes]`: one value per member.

Exact mode calls the reference's own function member by member (the same bits); fast mode
is one batched computation whose per-member reductions do not depend on the batch-mates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(out: torch.Tensor, y: torch.Tensor, exact: bool) -> torch.Tensor:
    """Mean softmax cross-entropy per member, `[M]`; y `[batch]` holds class indices."""
    if exact:
        return torch.stack([F.cross_entropy(out[m], y) for m in range(out.shape[0])])
    logp = torch.log_softmax(out, dim=-1)
    picked = logp.gather(-1, y.expand(out.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    return -picked.mean(dim=1)


def accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of samples classified correctly per member, `[M]` (float64)."""
    return (out.argmax(dim=-1) == y).double().mean(dim=1)
