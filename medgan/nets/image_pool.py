"""History of generated images fed to the discriminator (Shrivastava et al. 2017; CycleGAN)."""

from __future__ import annotations

import torch


class ImagePool:
    """Keeps up to ``size`` past generated images; D then sees a mix of current and older fakes, which
    damps the oscillation between G and D.

    As in the CycleGAN reference: while the pool is filling, images are stored and returned as they are;
    afterwards each image is, with probability 1/2, swapped for a random stored one (the new image takes
    its place) or returned unchanged.

    Args:
        size: pool capacity in images; 0 disables the pool (``query`` returns its input).
        seed: seed of the pool's own random generator, so a run is reproducible.
    """

    def __init__(self, size: int = 50, seed: int | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"ImagePool: size={size!r} must be an integer >= 0")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape as ``images`` ``(B, C, *spatial)``, detached, drawn as above."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                idx = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[idx].clone())
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    __call__ = query

    def state_dict(self) -> dict[str, object]:
        """Pool contents and RNG state, for a resumable checkpoint."""
        return {"size": self.size, "images": [i.cpu() for i in self.images],
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.size = int(state["size"])  # type: ignore[arg-type]
        self.images = list(state["images"])  # type: ignore[arg-type]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
