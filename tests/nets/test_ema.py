"""EMA of generator weights."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import EMA, build_net


def test_ema_update_rule_and_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.9)
    ema.update(model)  # first update copies
    assert torch.equal(ema.module[0].weight, model[0].weight)
    old = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
    ema.update(model)
    assert torch.allclose(ema.module[0].weight, 0.9 * old + 0.1 * (old + 1.0))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 0.2))
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())  # the tracked model is untouched


def test_ema_forward_and_state_dict() -> None:
    gen = build_net({"type": "rescnn_lite", "feature_size": 4, "num_layers": 3}).eval()
    ema = EMA(gen, decay=0.5)
    ema.update(gen)
    ema.eval()
    x = torch.randn(1, 1, 8, 8)
    assert torch.allclose(ema(x), gen(x))
    other = EMA(gen, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert int(other.n_averaged) == 1


@pytest.mark.parametrize("decay", [1.0, -0.1, "0.9"])
def test_bad_decay(decay: object) -> None:
    with pytest.raises(ValueError, match="decay"):
        EMA(torch.nn.Linear(1, 1), decay=decay)  # type: ignore[arg-type]
