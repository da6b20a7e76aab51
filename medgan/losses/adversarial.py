"""Adversarial losses: ``vanilla`` (non-saturating BCE), ``lsgan``, ``hinge``, ``wgan_gp`` and ``r1``.

One calling convention for all of them, on raw discriminator logits (never pass them through a
sigmoid first), a tensor or a list of tensors (multi-scale D, averaged):

    loss_d = gan(d(real), True) + gan(d(fake.detach()), False) + gan.penalty(d, real, fake.detach())
    loss_g_adv = gan(d(fake), True, for_discriminator=False)

``penalty`` is 0 except for ``wgan_gp`` (gradient penalty on interpolates, Gulrajani et al. 2017) and
``r1`` (gradient penalty on reals, Mescheder et al. 2018). For a conditional D pass a callable, e.g.
``functools.partial(d, labels=labels)``; for Pix2Pix pass the concatenated (source, image) pairs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss

Logits = torch.Tensor | list[torch.Tensor]
Critic = Callable[[torch.Tensor], torch.Tensor]


def _as_list(logits: Logits) -> list[torch.Tensor]:
    return list(logits) if isinstance(logits, list | tuple) else [logits]


def _input_gradient(critic: Critic, x: torch.Tensor) -> torch.Tensor:
    """d(sum critic(x)) / dx with a graph, so a penalty on it trains the critic."""
    x = x.detach().requires_grad_(True)
    out = sum(o.sum() for o in _as_list(critic(x)))
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    return grad


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP term ``mean((||grad critic(x_hat)||_2 - 1)^2)`` at random interpolates ``x_hat`` of real
    and fake (one mixing weight per sample); 0 for a 1-Lipschitz linear critic."""
    alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
    grad = _input_gradient(critic, x_hat)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(discriminator: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1 term ``mean(||grad D(real)||_2^2)``: pushes D's gradient on real data to zero."""
    grad = _input_gradient(discriminator, real)
    return grad.pow(2).flatten(1).sum(1).mean()


class AdversarialLoss(nn.Module, abc.ABC):
    """Base class; subclasses define :meth:`_single`.

    Args:
        weight: factor on the returned loss (e.g. SRGAN's 1e-3 for the generator).
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    @abc.abstractmethod
    def _single(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        """The loss of one logits tensor (before ``weight``)."""

    def forward(self, logits: Logits, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        """Scalar loss for D logits of real (``target_is_real=True``) or fake images.

        For the generator call it with ``target_is_real=True, for_discriminator=False``.
        """
        if not for_discriminator and not target_is_real:
            raise ValueError("the generator loss is computed with target_is_real=True")
        terms = [self._single(x, target_is_real, for_discriminator) for x in _as_list(logits)]
        return self.weight * torch.stack(terms).mean()

    def penalty(self, discriminator: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Regulariser to add to the D loss; 0 unless the loss defines one."""
        return real.new_zeros(())

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """``loss(real, True) + loss(fake, False)`` (the references average the two; halve if wanted)."""
        return self(real_logits, True) + self(fake_logits, False)

    def g_loss(self, fake_logits: Logits) -> torch.Tensor:
        """Generator loss on the logits D gives its fakes."""
        return self(fake_logits, True, for_discriminator=False)


class VanillaGANLoss(AdversarialLoss):
    """Binary cross-entropy on logits (Goodfellow et al. 2014), non-saturating for G; Pix2Pix/DCGAN.

    Written with ``binary_cross_entropy_with_logits`` rather than MONAI's sigmoid + ``BCELoss``: the fused
    form stays exact for large logits and is allowed under autocast (AMP), where ``BCELoss`` is refused.
    """

    def _single(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
        return F.binary_cross_entropy_with_logits(logits, target)


class LSGANLoss(AdversarialLoss):
    """Least squares (Mao et al. 2017): ``(D - 1)^2`` for reals, ``D^2`` for fakes; CycleGAN's loss.

    MONAI's ``PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)``.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.monai_loss = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)

    def _single(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        return self.monai_loss(logits, target_is_real=target_is_real, for_discriminator=for_discriminator)


class HingeGANLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D ``relu(1 - D(real)) + relu(1 + D(fake))``,
    G ``-D(fake)``.

    Not MONAI's ``criterion="hinge"``, which squashes logits with tanh and gives G the D-side hinge.
    """

    def _single(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()


class WGANGPLoss(AdversarialLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017).

    Critic: ``-D(real)`` and ``+D(fake)``; G: ``-D(fake)``; ``penalty`` = ``lambda_gp`` ×
    :func:`gradient_penalty`. Use a critic without batch norm (the penalty is per sample).

    Args:
        weight: factor on the Wasserstein terms.
        lambda_gp: factor on the penalty (10 in the paper).
    """

    def __init__(self, weight: float = 1.0, lambda_gp: float = 10.0) -> None:
        super().__init__(weight)
        self.lambda_gp = float(lambda_gp)

    def _single(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        return -logits.mean() if target_is_real else logits.mean()

    def penalty(self, discriminator: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.lambda_gp * gradient_penalty(discriminator, real, fake)


class R1GANLoss(VanillaGANLoss):
    """Non-saturating BCE with the R1 penalty on reals (Mescheder et al. 2018), StyleGAN's choice.

    Args:
        weight: factor on the BCE terms.
        gamma: the penalty is ``gamma / 2 *`` :func:`r1_penalty` (10 is common for 256² images).
    """

    def __init__(self, weight: float = 1.0, gamma: float = 10.0) -> None:
        super().__init__(weight)
        self.gamma = float(gamma)

    def penalty(self, discriminator: Critic, real: torch.Tensor, fake: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * self.gamma * r1_penalty(discriminator, real)
