"""Numbers of the schedules and loss weightings every recipe relies on: the lr schedule, the VAE's KL
warm-up, CycleGAN's identity weighting and SRGAN's switch from pre-training to the adversarial phase."""

from __future__ import annotations

import pytest
import torch

from medgan.config import validate_config
from medgan.recipes import build_recipe
from medgan.recipes.schedule import LRSchedule

from ._configs import tiny_config


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("constant", {}, {0: 1.0, 5: 1.0, 99: 1.0}),
        # CycleGAN: constant for the first half, then linearly to 0 at the last step
        ("linear_decay", {"decay_start": 0.5}, {0: 1.0, 5: 1.0, 6: 0.8, 9: 0.2, 10: 0.0, 12: 0.0}),
        ("cosine", {}, {0: 1.0, 5: 0.5, 10: 0.0, 20: 0.0}),
        ("step", {"step_size": 3, "gamma": 0.5}, {0: 1.0, 2: 1.0, 3: 0.5, 6: 0.25}),
        ("constant", {"warmup": 4}, {0: 0.25, 1: 0.5, 3: 1.0, 8: 1.0}),
        ("linear_decay", {"decay_start": 0.5, "warmup": 2}, {0: 0.5, 1: 1.0, 8: 0.4}),
    ],
)
def test_lr_schedule_multipliers(kind, kwargs, expected):
    schedule = LRSchedule(kind, total=10, **kwargs)
    assert {step: round(schedule(step), 6) for step in expected} == pytest.approx(expected)


def test_lambda_lr_applies_the_schedule_per_optimiser_step():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=2.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LRSchedule("linear_decay", total=4, decay_start=0.5))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0, 2.0, 2.0, 1.0])
    # the schedule's fields travel in the scheduler's state (checkpoints)
    assert sched.state_dict()["lr_lambdas"][0] == {"kind": "linear_decay", "total": 4, "decay_start": 0.5,
                                                   "warmup": 0, "step_size": 1000, "gamma": 0.5}


def _at_iteration(monkeypatch, recipe, n: int) -> None:
    monkeypatch.setattr(type(recipe), "iteration", property(lambda self: n))


def test_vae_kl_weight_ramps_linearly_over_the_warmup(tmp_path, monkeypatch):
    raw = tiny_config("vae", tmp_path, recipe={"kl_weight": 0.01, "kl_warmup_steps": 4})
    recipe = build_recipe(validate_config(raw))
    weights = []
    for n in (0, 1, 3, 10):
        _at_iteration(monkeypatch, recipe, n)
        weights.append(recipe.kl_weight())
    assert weights == pytest.approx([0.0025, 0.005, 0.01, 0.01])
    no_warmup = build_recipe(validate_config(tiny_config("vae", tmp_path, recipe={"kl_weight": 0.01})))
    assert no_warmup.kl_weight() == pytest.approx(0.01)


def test_cyclegan_identity_weight_is_a_fraction_of_the_cycle_weight(tmp_path):
    raw = tiny_config("cyclegan", tmp_path, recipe={"lambda_cycle": 10.0, "lambda_identity": 0.5})
    recipe = build_recipe(validate_config(raw))
    a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.2)
    assert float(recipe.loss_cycle(a, b)) == pytest.approx(10.0 * 0.2)  # L1 x lambda_cycle
    assert float(recipe.loss_idt(a, b)) == pytest.approx(5.0 * 0.2)  # L1 x lambda_cycle x lambda_identity


def test_srgan_switches_from_pixel_loss_to_the_adversarial_phase(tmp_path, monkeypatch):
    raw = tiny_config("srgan", tmp_path, recipe={"pretrain_steps": 2, "adv_weight": 0.5, "pixel_weight": 3.0})
    recipe = build_recipe(validate_config(raw))
    monkeypatch.setattr(recipe, "optimize", lambda loss, index=0: None)  # no trainer: only the losses matter
    low, high = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 32, 32)
    seen = {}
    for n in (0, 1, 2, 5):
        _at_iteration(monkeypatch, recipe, n)
        torch.manual_seed(0)
        losses, _ = recipe.backward_g(low, high)
        seen[n] = losses
    assert set(seen[0]) == set(seen[1]) == {"loss_g_pix"}
    assert set(seen[2]) == set(seen[5]) == {"loss_g_pix", "loss_g_feat", "loss_g_adv"}
    # the adversarial phase weights the same pixel loss by pixel_weight
    assert float(seen[2]["loss_g_pix"]) == pytest.approx(3.0 * float(seen[1]["loss_g_pix"]), rel=1e-5)
