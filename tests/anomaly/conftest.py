"""A tiny convolutional AE trained here on the real chest CT, saved as a real ``dae`` model package.

300 Adam steps on 64² patches of the chest's axial slices take 1-4 s on one thread; the AE then reconstructs
that anatomy far better than an inserted +400 HU lesion, which is all the anomaly tests need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.package import make_manifest, save_model_package
from medgan.transforms.intensity import HUNormalizer

AE_CFG = {"type": "ae_conv", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [8, 8, 8],
          "strides": [2, 2, 2]}
TRAIN_STEPS = 300


def train_ae(volume: torch.Tensor, steps: int = TRAIN_STEPS, seed: int = 0) -> dict[str, torch.Tensor]:
    """Train :data:`AE_CFG` with L1 on random 64² patches of ``volume``'s axial slices; returns its state dict."""
    from medgan.nets import build_net

    norm = HUNormalizer()
    torch.manual_seed(seed)
    net = build_net(AE_CFG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: two OpenMP threads only wait on each other on a busy machine
    try:
        return _fit(net, norm.forward(volume.as_tensor()[0]).permute(2, 0, 1)[:, None], steps, seed)
    finally:
        torch.set_num_threads(threads)


def _fit(net: torch.nn.Module, slices: torch.Tensor, steps: int, seed: int) -> dict[str, torch.Tensor]:
    """L1 reconstruction of random 64² patches of ``slices`` ``(Z, 1, X, Y)`` (normalised)."""
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(0, slices.shape[0], (4,), generator=gen)
        i, j = (int(v) for v in torch.randint(0, slices.shape[2] - 63, (2,), generator=gen))
        batch = slices[index][:, :, i:i + 64, j:j + 64]
        loss = (net(batch) - batch).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="session")
def chest(ct_chest_path):
    """The chest CT as medgan reads it: ``(1, 128, 128, 34)`` HU, 3.05 × 3.05 × 10 mm voxels."""
    from medgan.io import read_volume

    return read_volume(ct_chest_path)


@pytest.fixture(scope="session")
def ae_package(tmp_path_factory, chest) -> Path:
    """A ``dae`` package (recipe, manifest and safetensors as training writes them) of the trained AE."""
    state = train_ae(chest)
    manifest = make_manifest("dae", {"generator": AE_CFG}, "generator", 2, HUNormalizer().to_config(),
                             patch_size=[64, 64], description="test AE of the chest CT")
    folder = tmp_path_factory.mktemp("anomaly_model") / "model"
    return save_model_package(folder, {f"generator.{k}": v for k, v in state.items()}, manifest)


@pytest.fixture(scope="session")
def chest_result(ae_package, chest):
    """The AE's anomaly map of the (normal) chest CT."""
    from medgan.anomaly import AnomalyMapper

    return AnomalyMapper(ae_package, sigma_mm=1.0)(chest)


@pytest.fixture(scope="session")
def lesion_case(ae_package, chest, chest_result):
    """The chest with four +400 HU ellipsoids (radii 8–14 mm) in the body: ``(volume, mask, result)``."""
    from medgan.anomaly import AnomalyMapper
    from medgan.transforms.lesions import RandSyntheticLesions

    volume, mask = RandSyntheticLesions(count=4, radius_mm=(8.0, 14.0), contrast_hu=400.0, seed=1)(
        chest, region=chest_result.body[0])
    assert int(mask.sum()) > 100  # the lesions cover enough voxels for a stable AUROC
    return volume, mask, AnomalyMapper(ae_package, sigma_mm=1.0)(volume)


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
