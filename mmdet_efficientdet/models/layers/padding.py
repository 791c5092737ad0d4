"""TF "SAME" padding, needed for parity with TF-trained weights.

TensorFlow pads ``max(0, (ceil(i / s) - 1) * s + (k - 1) * d + 1 - i)``
pixels, the odd one at the bottom/right; PyTorch's symmetric ``k // 2``
padding shifts every strided output by one pixel on even input sizes.
Convolutions use :class:`Conv2dSame` (mmcv's ``Conv2dAdaptivePadding``
without its padded copy of the input), max-pooling :class:`MaxPool2dSame`
(``ceil_mode`` pooling in place of a padded copy).
"""

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmengine.registry import MODELS
from torch import Tensor

PADDING_MODES = ('same', 'symmetric')


def check_padding(padding: str) -> str:
    """Return ``padding`` if it is a known mode, else raise ValueError."""
    if padding not in PADDING_MODES:
        raise ValueError(
            f'padding must be one of {PADDING_MODES}, got {padding!r}'
        )
    return padding


def conv_cfg_for(padding: str) -> Optional[dict]:
    """The mmcv ``conv_cfg`` that gives convolutions ``padding``."""
    if check_padding(padding) == 'same':
        return dict(type='Conv2dSame')
    return None


# mmengine's root registry, where mmcv's ConvModule looks up conv types
# whatever the default scope (mmcv registers Conv2dAdaptivePadding there)
@MODELS.register_module('Conv2dSame')
class Conv2dSame(Conv2dAdaptivePadding):
    """Convolution with TF SAME padding and no padded copy of the input.

    SAME padding is symmetric except on sizes where it puts one more cell
    after the input than before (``(b, b + 1)``; even sizes under stride
    2). Symmetric padding is the convolution's own. The asymmetric case
    pads ``b + s`` on both sides instead and drops the first output row /
    column: the windows then start one stride early, so the rest are
    exactly SAME's, and the extra ``s - 1`` cells after the input are
    never reached (:func:`same_conv_padding`). mmcv's
    ``Conv2dAdaptivePadding`` makes a padded copy of the input on every
    call instead, which costs more than the one extra output row and
    column (a strided depthwise conv at 160x160: ~3x). Same parameters and
    state dict as ``Conv2dAdaptivePadding``, of which this is a subclass.

    The padding lives in :meth:`_conv_forward`, so mmcv's
    ``efficient_conv_bn_eval`` (which calls it with folded weights) pads
    too.

    Example:
        >>> import torch
        >>> conv = Conv2dSame(2, 2, 3)
        >>> conv.padding, conv(torch.rand(1, 2, 5, 6)).shape
        ((1, 1), torch.Size([1, 2, 5, 6]))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_padding = self.stride == (1, 1) and all(
            (k - 1) * d % 2 == 0
            for k, d in zip(self.kernel_size, self.dilation)
        )
        if self.fixed_padding:
            self.padding = tuple(
                (k - 1) * d // 2
                for k, d in zip(self.kernel_size, self.dilation)
            )

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight, self.bias)

    def _conv_forward(
        self, x: Tensor, weight: Tensor, bias: Optional[Tensor]
    ) -> Tensor:
        if self.fixed_padding:
            return nn.Conv2d._conv_forward(self, x, weight, bias)
        (pad_h, crop_h), (pad_w, crop_w) = same_conv_padding_2d(
            x.shape[-2:], self.kernel_size, self.stride, self.dilation
        )
        out = F.conv2d(
            x,
            weight,
            bias,
            self.stride,
            (pad_h, pad_w),
            self.dilation,
            self.groups,
        )
        return crop_start(out, crop_h, crop_w)


class CropStart(nn.Module):
    """Drops the first ``top`` rows and ``left`` columns of a map (the
    fixed-size form of :class:`Conv2dSame`'s asymmetric case)."""

    def __init__(self, top: int, left: int) -> None:
        super().__init__()
        self.top, self.left = top, left

    def forward(self, x: Tensor) -> Tensor:
        return crop_start(x, self.top, self.left)

    def extra_repr(self) -> str:
        return f'top={self.top}, left={self.left}'


def crop_start(x: Tensor, top: int, left: int) -> Tensor:
    """``x[..., top:, left:]`` as a dense tensor in ``x``'s memory format."""
    if not top and not left:
        return x
    channels_last = (
        x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )
    return x[..., top:, left:].contiguous(
        memory_format=torch.channels_last
        if channels_last
        else torch.contiguous_format
    )


def same_conv_padding(
    size: int, kernel: int, stride: int, dilation: int = 1
) -> Tuple[int, int]:
    """SAME padding of one dim as (symmetric padding, outputs to drop).

    ``(b, 0)`` when SAME pads ``b`` on both sides; ``(b + s, 1)`` when it
    pads ``(b, b + 1)``: padding ``s`` more on each side adds one window a
    stride before SAME's first, dropped, and the windows after it are
    SAME's (the last one reaches ``b + 1`` cells past the input, never the
    extra ``s - 1``).
    """
    before, after = same_pad_amounts(size, kernel, stride, dilation)
    if before == after:
        return before, 0
    return before + stride, 1


def same_conv_padding_2d(
    size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """:func:`same_conv_padding` of the height and of the width."""
    return tuple(
        same_conv_padding(*dim) for dim in zip(size, kernel, stride, dilation)
    )


def same_pad_amounts(
    size: int, kernel: int, stride: int, dilation: int = 1
) -> Tuple[int, int]:
    """(before, after) padding of one spatial dim under TF SAME rules."""
    total = max(
        (math.ceil(size / stride) - 1) * stride
        + (kernel - 1) * dilation
        + 1
        - size,
        0,
    )
    return total // 2, total - total // 2


def same_pool_padding(size: int, kernel: int, stride: int) -> Optional[int]:
    """Padding that makes ``ceil_mode`` max-pooling equal SAME pooling.

    PyTorch pads max-pooling with -inf and, with ``ceil_mode=True``, lets
    the last window hang over the end, which equals SAME's extra padding
    cell after the input. Returns the padding before the input, or None
    when no such padding gives SAME's output (e.g. a kernel that would
    need more than half its size).
    """
    before, after = same_pad_amounts(size, kernel, stride)
    if after - before not in (0, 1) or 2 * before > kernel:
        return None
    out = -(-(size + 2 * before - kernel) // stride) + 1
    # ceil_mode drops a last window that starts in the right padding
    if (out - 1) * stride >= size + before:
        out -= 1
    return before if out == -(-size // stride) else None


class MaxPool2dSame(nn.MaxPool2d):
    """Max-pooling with TF SAME padding (padded cells never win).

    Example:
        >>> import torch
        >>> pool = MaxPool2dSame(kernel_size=3, stride=2)
        >>> pool(torch.rand(1, 8, 7, 10)).shape
        torch.Size([1, 8, 4, 5])
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__(kernel_size, stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size, self.stride
        pad_h = same_pool_padding(x.shape[-2], k, s)
        pad_w = same_pool_padding(x.shape[-1], k, s)
        if pad_h is not None and pad_w is not None:
            # no padded copy of the input
            return F.max_pool2d(x, k, s, (pad_h, pad_w), ceil_mode=True)
        top, bottom = same_pad_amounts(x.shape[-2], k, s)
        left, right = same_pad_amounts(x.shape[-1], k, s)
        x = F.pad(x, (left, right, top, bottom), value=float('-inf'))
        return F.max_pool2d(x, k, s)


def build_max_pool(
    padding: str, kernel_size: int = 3, stride: int = 2
) -> nn.Module:
    """Max-pool of ``kernel_size`` / ``stride`` with the given padding."""
    if check_padding(padding) == 'same':
        return MaxPool2dSame(kernel_size, stride)
    return nn.MaxPool2d(kernel_size, stride, padding=kernel_size // 2)
