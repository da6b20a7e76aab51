"""The ``validation:`` section and the HU windows it names (also used by the CLIs' ``--window``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from medgan.config.base import _Section
from medgan.errors import ConfigError


class Window(_Section):
    """An HU display/metric window."""

    center: float = Field(..., description="window centre (level), HU")
    width: float = Field(..., gt=0, description="window width, HU")


#: ldct-benchmark windows (Eulig et al. 2024): chest C-600/W1500, abdomen C50/W400, head C40/W80.
NAMED_WINDOWS: dict[str, tuple[float, float]] = {
    "chest": (-600.0, 1500.0),
    "abdomen": (50.0, 400.0),
    "head": (40.0, 80.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}


def parse_window(text: str) -> tuple[float, float]:
    """A window given on a command line, ``chest`` (any :data:`NAMED_WINDOWS` name) or ``CENTER,WIDTH`` in
    HU, as ``(low, high)`` HU.

    Raises:
        ConfigError: neither a known name nor two numbers, or a width that is not positive.
    """
    if text in NAMED_WINDOWS:
        center, width = NAMED_WINDOWS[text]
    else:
        try:
            center, width = (float(v) for v in text.split(","))
        except ValueError:
            raise ConfigError(
                f"got '{text}', expected one of {sorted(NAMED_WINDOWS)} or CENTER,WIDTH in HU (e.g. 40,400)"
            ) from None
        if width <= 0:
            raise ConfigError(f"width must be > 0, got {width:g}")
    return center - width / 2, center + width / 2


class DiversityConfig(_Section):
    """Mode-collapse monitor of generative recipes: mean pairwise distance of outputs of a fixed batch."""

    enabled: bool | None = Field(None, description="default: on for dcgan/cgan/cyclegan/pix2pix/srgan")
    samples: int = Field(8, ge=2, description="fixed inputs (latent vectors or validation slices)")
    warn_fraction: float = Field(0.25, gt=0, le=1, description="warn when diversity < this x its first value")
    min_diversity: float = Field(1e-3, ge=0, description="collapse also when diversity <= this (normalised units)")
    on_collapse: Literal["warn", "restore"] = Field(
        "warn", description="warn, or also restore the last healthy state (weights + optimisers) and lower the lr")
    lr_factor: float = Field(0.5, gt=0, le=1, description="on_collapse=restore: learning rates are multiplied by this")


class ValidationConfig(_Section):
    """Validation metrics (in HU, ldct-benchmark protocol) and figures."""

    window: str | Window = Field("chest", description=f"metric window: one of {sorted(NAMED_WINDOWS)} or {{center, width}}")
    panel_window: str | Window | None = Field(None, description="window of the PNG panels (default: window)")
    panels: int = Field(1, ge=0, description="PNG panels per validation (0: none)")
    monitor: Literal["ssim", "psnr", "rmse", "unpaired_gain_db"] = Field(
        "ssim", description="metric that selects best.ckpt (unpaired_gain_db: CycleGAN, needs no target)")
    diversity: DiversityConfig = DiversityConfig()

    @field_validator("window", "panel_window")
    @classmethod
    def _named(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in NAMED_WINDOWS:
            raise ValueError(f"unknown window '{v}'; allowed: {sorted(NAMED_WINDOWS)} or {{center, width}}")
        return v

    def hu_window(self, which: str = "window") -> tuple[float, float]:
        """``(low, high)`` HU of the metric window (``which="window"``) or of the panels."""
        w = getattr(self, which) if which == "window" or self.panel_window is not None else self.window
        center, width = NAMED_WINDOWS[w] if isinstance(w, str) else (w.center, w.width)
        return center - width / 2, center + width / 2
