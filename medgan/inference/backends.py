"""Where the network runs: PyTorch or onnxruntime, behind one callable.

A backend maps a batch of normalised windows ``(B, C, *spatial)`` float32 to the net's image output
``(B, C_out, *spatial·scale)`` float32, so the sliding-window code does not care which runtime is used.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.inference.loading import first_output


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is a user error.

    Under ``torchrun`` each rank takes its own GPU (``LOCAL_RANK``) for ``"auto"`` and ``"cuda"``.
    """
    local = os.environ.get("LOCAL_RANK")
    if str(device) in ("auto", "cuda") and local is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{int(local) % torch.cuda.device_count()}")
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine; use 'auto' or 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: allowed 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return dev


def memory_format(net: nn.Module) -> torch.memory_format | None:
    """The channels-last layout for a conv net's dimensionality (``None`` for nets without convolutions).

    oneDNN's CPU convolutions (and cuDNN's with fp16/bf16) run natively on NHWC / NDHWC: with the default
    NCHW layout every convolution reorders its input and output, which made the torch CPU path 1.7-3.8x
    slower than onnxruntime on the same graph.
    """
    dims = {m.weight.ndim for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)}
    if dims == {4}:
        return torch.channels_last
    if dims == {5}:
        return torch.channels_last_3d
    return None


def fold_batch_norms(net: nn.Module) -> int:
    """Fold each eval-mode batch norm that directly follows a (transposed) convolution in an ``nn.Sequential`` into
    that convolution's weights (PyTorch's ``fuse_conv_bn_eval``), in place; returns how many were folded.

    onnxruntime folds them when it loads a graph; eager PyTorch does not, and on CPU the separate
    normalisation pass over every feature map made DnCNN-style nets (``rescnn_lite``) about 1.8x slower
    per 512² slice than with the norms folded. Inference only: a folded net must not be trained further.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = seq._modules[first], seq._modules[second]
            if (isinstance(conv, nn.modules.conv._ConvNd) and conv.groups == 1
                    and isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training
                    and norm.track_running_stats and norm.num_features == conv.out_channels):
                seq._modules[first] = fuse_conv_bn_eval(conv, norm, transpose=conv.transposed)
                seq._modules[second] = nn.Identity()
                folded += 1
    return folded


PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"16"`` (fp16 autocast) on CUDA, where tensor cores double the throughput, else
    ``"32"``; an explicit ``"32"``, ``"bf16"`` or ``"16"`` is kept (fp16 on a CPU is a user error)."""
    if precision == "auto":
        return "16" if device.type == "cuda" else "32"
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: allowed 'auto', {', '.join(repr(p) for p in PRECISIONS)}")
    if precision == "16" and device.type == "cpu":
        raise ConfigError("--precision 16: fp16 needs a GPU; on a CPU use 32 or bf16")
    return precision


class TorchBackend:
    """Runs an ``nn.Module`` without autograd on ``device``, in the channels-last layout where it has one.

    Args:
        net: the generator in eval mode.
        device: where the windows are computed; results come back on the windows' device (contiguous).
        channels_last: store weights and feed windows channels-last (conv nets; see :func:`memory_format`).
        fold_norms: fold batch norms into the convolutions before them (see :func:`fold_batch_norms`).
        precision: ``"32"``, or ``"bf16"`` / ``"16"`` to run the net under autocast. Residual nets keep their
            input in float32 (only the predicted correction is computed at low precision), and the output
            always comes back as float32 HU-normalised values.

    Call it under ``torch.inference_mode()`` (as :class:`medgan.inference.slabs.SlabInferer` does) for the
    least overhead; it also works outside.
    """

    name = "torch"

    def __init__(self, net: nn.Module, device: torch.device, channels_last: bool = True,
                 fold_norms: bool = True, precision: str = "32") -> None:
        self.net = net.to(device).eval()
        self.precision = resolve_precision(precision, device)
        if fold_norms:
            fold_batch_norms(self.net)
        self.device = device
        self.layout = memory_format(self.net) if channels_last else None
        if self.layout is not None:
            self.net = self.net.to(memory_format=self.layout)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32)
        if self.layout is not None and x.ndim == (4 if self.layout is torch.channels_last else 5):
            x = x.contiguous(memory_format=self.layout)
        dtype = PRECISIONS[self.precision]
        with torch.no_grad(), torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            y = first_output(self.net(x))
        return y.float().to(x.device).contiguous()


class OnnxBackend:
    """Runs an exported ONNX graph with onnxruntime (CPU provider unless ``providers`` says otherwise).

    Args:
        model: path to the ``.onnx`` file or its serialised bytes.
        providers: onnxruntime execution providers, best first.
        threads: intra-op threads (``None``: onnxruntime's default, all cores).
    """

    name = "onnx"

    def __init__(self, model: str | os.PathLike | bytes, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        src: Any = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(src, sess_options=opts,
                                            providers=providers or ["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        y = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(y).to(x.device)
