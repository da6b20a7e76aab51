"""Latent regularisers: ``kl`` (VAE) and ``sparsity`` (sparse autoencoder)."""

from __future__ import annotations

import torch
import torch.nn as nn

from medgan.errors import ConfigError


class KLDivergenceLoss(nn.Module):
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent units, averaged over the batch
    (Kingma & Welling 2014).

    Args:
        weight: factor (the beta of beta-VAE).

    ``forward(mu, logvar)``: both ``(B, latent_size)`` (any trailing shape; flattened per sample).
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        return self.weight * kl.flatten(1).sum(1).mean()


class SparsityLoss(nn.Module):
    """Activity penalty on an autoencoder code (``ae_sparse.last_code``).

    Args:
        weight: factor on the penalty.
        mode: ``kl``: ``sum_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` the batch-mean activation of unit j
            (Ng 2011; needs codes in (0, 1), e.g. ``ae_sparse``'s sigmoid); ``l1``: ``mean |code|``.
        target: the desired mean activation ``rho`` of ``kl``.

    ``forward(code)``: ``(B, latent_size)``.
    """

    def __init__(self, weight: float = 1.0, mode: str = "kl", target: float = 0.05) -> None:
        super().__init__()
        if mode not in ("kl", "l1"):
            raise ConfigError(f"loss 'sparsity': mode={mode!r} is not allowed; allowed: kl, l1")
        if not 0 < target < 1:
            raise ConfigError(f"loss 'sparsity': target={target!r} must be in (0, 1)")
        self.weight, self.mode, self.target = float(weight), mode, float(target)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.mode == "l1":
            return self.weight * code.abs().mean()
        rho = self.target
        # clamping keeps log finite for saturated units without changing the gradient elsewhere
        rho_hat = code.flatten(1).mean(0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return self.weight * kl.sum()
