"""ImagePool behaves as the CycleGAN reference's pool."""

from __future__ import annotations

import pytest
import torch

from medgan.nets import ImagePool


def _batch(value: float, n: int = 2) -> torch.Tensor:
    return torch.full((n, 1, 4, 4), value)


def test_fills_then_mixes_history() -> None:
    pool = ImagePool(size=4, seed=0)
    out = pool.query(_batch(1.0, 4))
    assert torch.equal(out, _batch(1.0, 4)) and len(pool) == 4  # filling: returned as given
    seen_old = seen_new = 0
    for step in range(2, 30):
        out = pool.query(_batch(float(step), 2))
        assert out.shape == (2, 1, 4, 4) and len(pool) == 4
        values = out[:, 0, 0, 0]
        seen_new += int((values == step).sum())
        seen_old += int((values < step).sum())
    assert seen_old > 10 and seen_new > 10  # about half of each


def test_detached_and_stores_copies() -> None:
    pool = ImagePool(size=2)
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    out = pool.query(x * 2)
    assert not out.requires_grad
    out.add_(100)  # the caller modifying its batch must not change the history
    assert pool.images[0].abs().max() < 100


def test_size_zero_is_passthrough_and_seed_reproducible() -> None:
    x = torch.randn(3, 1, 4, 4)
    assert torch.equal(ImagePool(size=0).query(x), x)

    def run(seed: int) -> list[torch.Tensor]:
        pool = ImagePool(size=2, seed=seed)
        return [pool.query(_batch(float(i))) for i in range(8)]

    assert all(torch.equal(a, b) for a, b in zip(run(3), run(3)))
    with pytest.raises(ValueError, match="size"):
        ImagePool(size=-1)


def test_state_dict_round_trip() -> None:
    pool = ImagePool(size=3, seed=1)
    for i in range(5):
        pool.query(_batch(float(i)))
    clone = ImagePool(size=3)
    clone.load_state_dict(pool.state_dict())
    nxt = _batch(9.0)
    assert torch.equal(pool.query(nxt), clone.query(nxt))
