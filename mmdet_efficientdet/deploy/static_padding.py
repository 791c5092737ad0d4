"""Replace runtime TF "SAME" padding by padding fixed for one input size.

``Conv2dAdaptivePadding`` (mmcv; a padded copy of the input),
:class:`~..models.layers.Conv2dSame` and :class:`MaxPool2dSame` work out
their padding from the input's size on every call. For a fixed input size
the padding is known in advance:

- a stride-1 convolution pads ``(k - 1) * d`` in total whatever the size,
  symmetrically for odd kernels, so it becomes a plain ``nn.Conv2d`` with
  built-in padding;
- a strided convolution gets the padding of the size it was called with:
  built-in when symmetric, else (the asymmetric even-size case, a handful
  of convs in the backbone) Conv2dSame's form of it, a plain conv with
  built-in padding followed by :class:`~..models.layers.CropStart`
  (:func:`~..models.layers.same_conv_padding`);
- SAME max-pooling becomes ``nn.MaxPool2d`` with the padding of
  :func:`~..models.layers.same_pool_padding` and ``ceil_mode=True``.

Sizes are recorded by one forward pass at the deployment size; a module
called with sizes that need different paddings is left as it was.
"""

from typing import Callable, Dict, List, Set, Tuple

import torch
import torch.nn as nn
from mmcv.cnn.bricks import Conv2dAdaptivePadding

from ..models.layers import (
    CropStart,
    MaxPool2dSame,
    same_conv_padding_2d,
    same_pool_padding,
)

# ((padding, crop) of the height, (padding, crop) of the width)
Pads = Tuple[Tuple[int, int], Tuple[int, int]]


def _plain_conv(conv: nn.Conv2d, padding: Tuple[int, int]) -> nn.Conv2d:
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    new.weight = conv.weight
    if conv.bias is not None:
        new.bias = conv.bias
    return new


def _static_conv(conv: nn.Conv2d, pads: Set[Pads]) -> nn.Module:
    kernel, dilation = conv.kernel_size, conv.dilation
    if conv.stride == (1, 1) and all(
        (k - 1) * d % 2 == 0 for k, d in zip(kernel, dilation)
    ):
        # stride 1: the same symmetric padding at every size
        return _plain_conv(
            conv, tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation))
        )
    if len(pads) != 1:
        return conv
    (pad_h, crop_h), (pad_w, crop_w) = next(iter(pads))
    plain = _plain_conv(conv, (pad_h, pad_w))
    if not crop_h and not crop_w:
        return plain
    return nn.Sequential(plain, CropStart(crop_h, crop_w))


def _static_pool(
    pool: MaxPool2dSame, sizes: Set[Tuple[int, int]]
) -> nn.Module:
    k, s = pool.kernel_size, pool.stride
    paddings = {
        tuple(same_pool_padding(n, k, s) for n in size) for size in sizes
    }
    if len(paddings) != 1 or None in next(iter(paddings)):
        return pool
    return nn.MaxPool2d(k, s, padding=paddings.pop(), ceil_mode=True)


def static_same_padding(
    model: nn.Module, run: Callable[[], object]
) -> Dict[str, int]:
    """Fix the SAME padding of ``model`` for the sizes ``run()`` feeds it.

    Args:
        model (nn.Module): Model to change in place.
        run (callable): Runs ``model`` once at the deployment input size.

    Returns:
        dict: How many convolutions and poolings were replaced
        (``'conv'``, ``'pool'``), left because they need several paddings
        (``'kept'``), and left because ``run()`` never called them
        (``'unused'``; e.g. the BiFPN's top-down nodes never downsample).
    """
    targets = (Conv2dAdaptivePadding, MaxPool2dSame)
    sizes: Dict[nn.Module, Set[Tuple[int, int]]] = {}
    handles: List[torch.utils.hooks.RemovableHandle] = []

    def record(module, args):
        sizes.setdefault(module, set()).add(tuple(args[0].shape[-2:]))

    for module in model.modules():
        if isinstance(module, targets):
            handles.append(module.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()

    counts = dict(conv=0, pool=0, kept=0, unused=0)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv2dAdaptivePadding):
                pads = {
                    same_conv_padding_2d(
                        size, child.kernel_size, child.stride, child.dilation
                    )
                    for size in sizes.get(child, ())
                }
                new, kind = _static_conv(child, pads), 'conv'
            elif isinstance(child, MaxPool2dSame):
                new = _static_pool(child, sizes.get(child, set()))
                kind = 'pool'
            else:
                continue
            if child not in sizes:
                counts['unused'] += 1
            elif new is child:
                counts['kept'] += 1
            else:
                parent._modules[name] = new
                counts[kind] += 1
    return counts
