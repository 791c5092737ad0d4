"""Strided SAME convolutions as single ONNX ``Conv`` nodes.

Static SAME padding (:mod:`.static_padding`) writes the asymmetric case
(``(b, b + 1)``, even sizes under stride 2) the way PyTorch runs it
fastest, a convolution padded ``b + s`` on both sides followed by
:class:`~..models.layers.CropStart` (``F.conv2d`` pads symmetrically
only). Exported as it is, the crop becomes two ``Slice`` nodes, which
onnxruntime runs on their own (1.3 ms of Lite0's 15 on a CPU) and which
stop its CPU layout optimiser (NCHWc): the activation after the conv is
no longer fused into it, and the tensor is reordered out of the blocked
layout and back. An explicit zero ``Pad`` in front of an unpadded conv
is fused by onnxruntime's float optimiser, but not in an int8 (QDQ)
model, where it runs in float between a dequantize and a quantize node.

ONNX's ``Conv`` pads each side on its own (``pads``: the begins, then
the ends): :func:`asymmetric_conv_padding` replaces every conv + crop by
:class:`AsymmetricPadConv2d`, exported as one ``Conv`` with SAME's own
pads. Only export needs it: PyTorch runs it as a zero ``F.pad`` and an
unpadded conv, slower than the conv + crop it replaces (Lite0 on a CPU:
+10%), so :func:`~.prepare.prepare_for_deploy` keeps the crop.
"""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import CropStart

# ONNX Conv's order: top, left, bottom, right
Pads = Tuple[int, int, int, int]


class _PaddedConv(torch.autograd.Function):
    """``conv2d(pad(x))``, exported as one ``Conv`` with ``pads``."""

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        bias: Optional[Tensor],
        stride: Tuple[int, int],
        pads: Pads,
        dilation: Tuple[int, int],
        groups: int,
    ) -> Tensor:
        top, left, bottom, right = pads
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def symbolic(g, x, weight, bias, stride, pads, dilation, groups):
        # TorchScript-based exporter (torch.onnx.export(dynamo=False))
        inputs = [x, weight] if bias is None else [x, weight, bias]
        kernel = weight.type().sizes()[2:]
        return g.op(
            'Conv',
            *inputs,
            kernel_shape_i=list(kernel),
            strides_i=list(stride),
            pads_i=list(pads),
            dilations_i=list(dilation),
            group_i=groups,
        )


class AsymmetricPadConv2d(nn.Module):
    """A convolution after zero padding that may differ per side.

    Args:
        conv (nn.Conv2d): The convolution, whose own ``padding`` is
            ignored; its parameters are shared, not copied.
        pads (Sequence[int]): ``(top, left, bottom, right)``.

    Example:
        >>> conv = AsymmetricPadConv2d(nn.Conv2d(2, 4, 3, 2), (0, 0, 1, 1))
        >>> conv(torch.rand(1, 2, 8, 8)).shape
        torch.Size([1, 4, 4, 4])
    """

    def __init__(self, conv: nn.Conv2d, pads: Sequence[int]) -> None:
        super().__init__()
        if len(pads) != 4 or min(pads) < 0:
            raise ValueError(
                f'pads must be 4 amounts >= 0 (top, left, bottom, right), '
                f'got {tuple(pads)}'
            )
        self.conv = conv
        self.pads: Pads = tuple(int(p) for p in pads)

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        return _PaddedConv.apply(
            x,
            conv.weight,
            conv.bias,
            conv.stride,
            self.pads,
            conv.dilation,
            conv.groups,
        )

    def extra_repr(self) -> str:
        return f'pads={self.pads}'


def _same_pads(conv: nn.Conv2d, crop: CropStart) -> Pads:
    """SAME's pads of a conv + crop of :mod:`.static_padding`.

    A crop of one output row means SAME pads ``(b, b + 1)`` and the conv
    ``b + s`` (:func:`~..models.layers.same_conv_padding`); no crop, ``b``
    on both sides.
    """
    (pad_h, pad_w), (stride_h, stride_w) = conv.padding, conv.stride
    top = pad_h - crop.top * stride_h
    left = pad_w - crop.left * stride_w
    return top, left, top + crop.top, left + crop.left


def asymmetric_conv_padding(model: nn.Module) -> int:
    """Replace, in place, every ``Sequential(conv, CropStart)`` of static
    SAME padding by an :class:`AsymmetricPadConv2d` with SAME's pads; the
    outputs do not change. Returns how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not (
                isinstance(child, nn.Sequential)
                and len(child) == 2
                and type(child[0]) is nn.Conv2d
                and isinstance(child[1], CropStart)
            ):
                continue
            conv, crop = child
            parent._modules[name] = AsymmetricPadConv2d(
                conv, _same_pads(conv, crop)
            )
            replaced += 1
    return replaced
