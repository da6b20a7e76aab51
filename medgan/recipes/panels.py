"""Validation panels: PNG files in ``RUN/samples/`` and the same image in TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback


class PanelWriter(Callback):
    """Collects the panel rows that ``validation_step`` returns (``outputs["panel"]``, HU arrays) and, at
    the end of each validation, saves ``samples/val_step<iteration>.png`` and logs the image to every
    TensorBoard logger under ``val/panel``.

    Args:
        run_dir: the run directory.
        rows: rows per panel (``validation.panels``; 0 turns panels off).
        window: ``(low, high)`` HU display window.
    """

    def __init__(self, run_dir: str | Path, rows: int, window: tuple[float, float]) -> None:
        self.run_dir = Path(run_dir)
        self.rows = int(rows)
        self.window = window
        self.collected: list[dict[str, np.ndarray]] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.collected = []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        rows = (outputs or {}).get("panel") if isinstance(outputs, dict) else None
        for row in rows or []:
            if len(self.collected) < self.rows:
                self.collected.append(row)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows, self.collected = self.collected, []
        if not rows or trainer.sanity_checking or not trainer.is_global_zero:
            return
        from medgan.figures import save_panel

        step = pl_module.iteration
        path = save_panel(self.run_dir / "samples" / f"val_step{step:07d}.png", rows, self.window,
                          title=f"{pl_module.recipe_name}, step {step}")
        self.log_image(trainer, path, step)

    @staticmethod
    def log_image(trainer: pl.Trainer, path: Path, step: int) -> None:
        """Send the PNG at ``path`` to every TensorBoard logger (as ``val/panel`` at ``step``)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        import matplotlib.image

        image = matplotlib.image.imread(str(path))[..., :3]  # (H, W, 3) float in [0, 1]
        for logger in loggers:
            logger.experiment.add_image("val/panel", image, global_step=step, dataformats="HWC")
