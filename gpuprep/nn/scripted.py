"""What ``torch.jit.script`` compiles in place of :class:`gpuprep.Preprocess`.

TorchScript cannot compile the layer itself (it takes NumPy arrays, reuses host buffers and
checks shapes in plain Python), so ``Preprocess.__prepare_scriptable__`` hands it this module:
the same statistics, output dtype, layout and memory format, the same shape and dtype checks,
and the arithmetic as one expression (float32, one rounding at the end). Inside TorchScript
an error surfaces as ``torch.jit.Error`` whose message starts with the builtin's name
(``builtins.ValueError: ...``).
"""

# No ``from __future__ import annotations`` here: TorchScript reads these annotations.
# A leaf: it imports nothing of gpuprep (the layer hands over its own attributes).
import torch
from torch import Tensor, nn

__all__ = ["ScriptablePreprocess"]


class ScriptablePreprocess(nn.Module):
    """A TorchScript-compatible twin of a :class:`gpuprep.Preprocess` without ``augment``."""

    mean: Tensor
    std: Tensor

    def __init__(
        self, mean: Tensor, std: Tensor, dtype: torch.dtype, channels_last: bool, layout: str
    ) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().to(torch.float32))
        self.register_buffer("std", std.detach().clone().to(torch.float32))
        self.out_dtype = dtype
        self.channels_last = channels_last
        self.nhwc = layout == "NHWC"

    @classmethod
    def from_layer(cls, layer: nn.Module) -> "ScriptablePreprocess":
        """The twin of a :class:`gpuprep.Preprocess` (its statistics, dtype, memory format and
        layout).

        Raises:
            RuntimeError: a layer with ``augment``, ``geometry`` or ``pad``, which run in
                Python.
        """
        if layer.augment is not None:
            raise RuntimeError(
                "torch.jit.script cannot compile Preprocess with augment= (the augmentation "
                "runs in Python). Use torch.jit.trace(model, example), torch.export.export or "
                "torch.onnx.export, or script a Preprocess without augment."
            )
        if getattr(layer, "geometry", None) is not None:
            raise RuntimeError(
                "torch.jit.script cannot compile Preprocess with geometry= (its per-sample "
                "parameters are drawn and applied in Python). Keep that Preprocess in Python "
                "in front of the exported model, or script a Preprocess without geometry."
            )
        if getattr(layer, "pad", None) is not None:
            raise RuntimeError(
                "torch.jit.script cannot compile Preprocess with pad= (a padded batch of "
                "images of their own sizes is made in Python). Keep that Preprocess in Python "
                "in front of the exported model, or script a Preprocess without pad."
            )
        return cls(layer.mean, layer.std, layer.dtype, layer.channels_last, layer.layout)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            top = 255.0
        elif x.dtype == torch.uint16:
            top = 65535.0
        elif x.is_floating_point():
            top = 1.0
        else:
            raise TypeError("Expected an image batch of dtype uint8, uint16 or floating point.")
        shape = x.shape
        if self.nhwc:
            if x.dim() == 3:
                if shape[2] == 3 or shape[2] == 4:
                    raise ValueError(
                        f"Got shape {shape}, which reads two ways: one (H, W, C) image, or "
                        f"grayscale images {shape[2]} pixels wide. Pass x[None] for one image, "
                        f"x[..., None] for grayscale images."
                    )
                xv = x.unsqueeze(1)
            elif x.dim() == 4:
                if (shape[1] in [1, 3, 4]) and (shape[3] not in [1, 3, 4]):
                    raise ValueError(
                        f"Expected an NHWC batch (N, H, W, C). Got shape {shape}, which looks "
                        f'like an NCHW batch: pass layout="NCHW".'
                    )
                xv = x.permute(0, 3, 1, 2)
            else:
                raise ValueError(
                    f"Expected an NHWC batch of shape (N, H, W, C) or (N, H, W). Got {shape}."
                )
        else:
            if x.dim() != 4:
                raise ValueError(f"Expected an NCHW batch of shape (N, C, H, W). Got {shape}.")
            if (shape[1] not in [1, 3, 4]) and (shape[3] in [1, 3, 4]):
                raise ValueError(
                    f"Expected an NCHW batch (N, C, H, W). Got shape {shape}, which looks like "
                    f'an NHWC batch: pass layout="NHWC".'
                )
            xv = x
        c = xv.shape[1]
        k = self.mean.shape[1]
        if k != 1 and k != c:
            raise ValueError(
                f"Expected {k} channels to match mean/std of length {k}. Got a batch with {c} "
                f"channels, shape {shape}. Statistics that fit: length 1 or {c}."
            )
        if xv.shape[2] == 0 or xv.shape[3] == 0:
            raise ValueError(f"Expected images with at least one pixel. Got shape {shape}.")
        std = self.std.to(x.device)
        scale = 1.0 / (std * top)
        bias = -self.mean.to(x.device) / std
        y = torch.addcmul(bias, xv.to(torch.float32), scale).to(self.out_dtype)
        if self.channels_last:
            return y.contiguous(memory_format=torch.channels_last)
        return y.contiguous()
