"""The mode-collapse monitor acts: it flags a constant generator and not a healthy one, covers each class of
a cGAN, and restores the last healthy state with a lower learning rate."""

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from medgan.nets import build_net
from medgan.recipes.diversity import DiversityMonitor

Z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(8) % 2


class Stub(nn.Module):
    """What the monitor needs of a LightningModule: ``log``, ``iteration`` and a state dict."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.logged, self.iteration = net, {}, 0

    def log(self, name, value, **_):
        self.logged[name] = value


def _generator(constant: bool = False, classes: int = 0) -> nn.Module:
    torch.manual_seed(1)
    net = build_net({"type": "dcgan_generator", "latent_size": 8, "feature_size": 4, "img_size": 16,
                     "num_classes": classes}).eval()
    if constant:  # the output layer ignores its input: every z gives tanh(bias)
        last = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
        nn.init.zeros_(last.weight)
    return net


def _trainer(module: nn.Module):
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return SimpleNamespace(sanity_checking=False, is_global_zero=True, optimizers=[opt],
                           lr_scheduler_configs=[SimpleNamespace(scheduler=sched)])


def _validate(monitor, trainer, stub, labels=None):
    """One validation of the fixed latent batch; returns the warnings raised."""
    with torch.no_grad():
        out = stub.net(Z, labels) if labels is not None else stub.net(Z)
    outputs = {"diversity": out}
    if labels is not None:
        outputs.update(diversity_labels=labels, class_names=["lung", "soft"])
    monitor.on_validation_epoch_start(trainer, stub)
    monitor.on_validation_batch_end(trainer, stub, outputs, None, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_validation_epoch_end(trainer, stub)
    return [str(w.message) for w in caught if "collapse" in str(w.message) or "restored" in str(w.message)]


@pytest.mark.parametrize("constant", [False, True])
def test_flags_a_constant_generator_and_not_a_healthy_one(tmp_path, constant):
    stub = Stub(_generator(constant))
    monitor = DiversityMonitor(tmp_path, samples=8, warn_fraction=0.25, min_diversity=1e-3)
    found = _validate(monitor, _trainer(stub), stub)
    assert bool(found) == constant, found
    assert (stub.logged["val/diversity"] <= 1e-3) == constant


def test_per_class_coverage_sees_a_generator_that_only_follows_the_label(tmp_path):
    class LabelOnly(nn.Module):  # a different image per class, the same for every z: collapsed within classes
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, z, labels):
            return self.scale * labels.float().reshape(-1, 1, 1, 1).expand(-1, 1, 16, 16)

    stub = Stub(LabelOnly())
    monitor = DiversityMonitor(tmp_path, samples=8, warn_fraction=0.25, min_diversity=1e-3)
    found = _validate(monitor, _trainer(stub), stub, LABELS)
    assert stub.logged["val/diversity"] > 0.1  # the overall spread alone looks healthy
    assert stub.logged["val/class_coverage"] == 0.0
    assert any("class 'lung'" in f for f in found) and any("class 'soft'" in f for f in found)

    healthy = Stub(_generator(classes=2))
    monitor = DiversityMonitor(tmp_path, samples=8, warn_fraction=0.25, min_diversity=1e-3)
    assert _validate(monitor, _trainer(healthy), healthy, LABELS) == []
    assert healthy.logged["val/class_coverage"] == 1.0 and healthy.logged["val/diversity_soft"] > 1e-3


def test_restore_puts_back_the_last_healthy_weights_and_lowers_the_lr(tmp_path):
    stub = Stub(_generator())
    trainer = _trainer(stub)
    monitor = DiversityMonitor(tmp_path, samples=8, warn_fraction=0.25, min_diversity=1e-3,
                               on_collapse="restore", lr_factor=0.5)
    assert _validate(monitor, trainer, stub) == []  # healthy: remembered
    healthy = {k: v.clone() for k, v in stub.state_dict().items()}
    stub.iteration = 100
    last = [m for m in stub.net.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.weight.zero_()  # the generator collapses
    found = _validate(monitor, trainer, stub)
    assert any("collapse" in f for f in found) and any("restored" in f and "step 0" in f for f in found)
    assert all(torch.equal(v, healthy[k]) for k, v in stub.state_dict().items())
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05)
    assert trainer.lr_scheduler_configs[0].scheduler.base_lrs == [pytest.approx(0.05)]
    assert monitor.restores == [(100, 0)]
    # warn-only (the default) leaves the weights alone
    warn_only = DiversityMonitor(tmp_path, samples=8, warn_fraction=0.25, min_diversity=1e-3)
    _validate(warn_only, trainer, stub)
    with torch.no_grad():
        last.weight.zero_()
    assert _validate(warn_only, trainer, stub) and float(last.weight.abs().sum()) == 0
