"""One intra-op thread for these tiny-tensor tests.

With tensors this small, thread hand-off costs more than the work; on a shared 2-core machine the second
thread waits for a busy core and a 8×8 forward pass took 0.35 s instead of 0.2 ms.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
