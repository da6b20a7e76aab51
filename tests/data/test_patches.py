"""Slice stacks, slice mapping between geometries, padding and aligned crops."""

from __future__ import annotations

import numpy as np
import torch

from medgan.data.patches import centre_start, crop, map_slice, pad_to, random_start, slice_stack


def _volume(x=6, y=5, z=4):
    return torch.arange(x * y * z, dtype=torch.float32).reshape(1, x, y, z)


def test_slice_stack_repeats_edges():
    vol = _volume()
    stack = slice_stack(vol, 0, context=1)
    assert stack.shape == (3, 6, 5)
    assert torch.equal(stack[0], vol[0, :, :, 0]) and torch.equal(stack[1], vol[0, :, :, 0])
    assert torch.equal(stack[2], vol[0, :, :, 1])
    assert torch.equal(slice_stack(vol, 3, context=2)[4], vol[0, :, :, 3])
    assert torch.equal(slice_stack(vol, 2)[0], vol[0, :, :, 2])


def test_map_slice_uses_world_positions():
    # source: 2.5 mm slices starting at z=10; target: 1.25 mm slices starting at z=9.375 (same extent)
    source = torch.eye(4, dtype=torch.float64)
    source[2, 2], source[2, 3] = 2.5, 10.0
    target = torch.eye(4, dtype=torch.float64)
    target[2, 2], target[2, 3] = 1.25, 9.375
    assert map_slice(0, source, target, 8) == 0  # 10.0 mm -> index 0.5 -> rounds to 0
    assert map_slice(1, source, target, 8) == 2  # 12.5 mm -> index 2.5 -> banker's 2
    assert map_slice(3, source, target, 8) == 6  # 17.5 mm -> 6.5 -> 6
    assert map_slice(9, source, target, 8) == 7  # clamped to the last slice


def test_pad_to_pads_at_the_end_with_value():
    img = torch.zeros(1, 3, 4)
    out = pad_to(img, (5, 4), value=-1024.0)
    assert out.shape == (1, 5, 4) and not hasattr(out, "affine")
    assert (out[:, 3:] == -1024).all() and (out[:, :3] == 0).all()
    assert pad_to(img, (2, 2), 0.0) is img


def test_scaled_crops_stay_aligned():
    high = torch.randn(1, 12, 10)
    low = high[:, ::2, ::2]  # nearest-neighbour "low res": low[i, j] = high[2i, 2j]
    start = random_start(low.shape[1:], (3, 4), np.random.default_rng(0))
    a = crop(low, start, (3, 4))
    b = crop(high, [2 * s for s in start], (6, 8))
    assert torch.equal(a, b[:, ::2, ::2])
    assert centre_start((10, 7), (4, 9)) == [3, 0]
    starts = {tuple(random_start((20,), (5,), np.random.default_rng(s))) for s in range(200)}
    assert min(starts)[0] == 0 and max(starts)[0] == 15  # every corner reachable, none out of bounds
