"""Parameters and MACs of a detector config, counted on the meta device.

MACs are ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2:
convolutions and matrix products over backbone, neck and head at batch 1;
norms, activations, pooling and resampling are not counted; SAME
padding as TF defines it (:func:`same_padding_overcount`). The model is
built on the ``meta`` device, so nothing is computed and even D7x counts in
seconds. With 90 classes (the TF checkpoints' COCO ids) the totals are the
official ones.
"""

import contextlib
import copy
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict
from torch.utils.flop_counter import FlopCounterMode

from ..models.layers import Conv2dSame, same_conv_padding_2d


@contextlib.contextmanager
def same_padding_overcount(model: nn.Module) -> Iterator[List[int]]:
    """MACs that :class:`~..models.layers.Conv2dSame` computes beyond TF's
    SAME convolution, collected from forward hooks while inside.

    Where SAME pads one cell more after the input than before, the layer
    computes one extra output row / column and drops it instead of padding
    a copy of the input (+0.07% of D0's MACs); a FLOP counter sees that
    extra window. The architecture's MACs are the counter's FLOPs / 2 less
    the sum of the list this yields.
    """
    extra: List[int] = []

    def hook(conv: Conv2dSame, inputs: tuple, output: torch.Tensor) -> None:
        (_, crop_h), (_, crop_w) = same_conv_padding_2d(
            inputs[0].shape[-2:], conv.kernel_size, conv.stride, conv.dilation
        )
        batch, _, height, width = output.shape
        computed = (height + crop_h) * (width + crop_w)
        # one MAC per weight per output position
        extra.append((computed - height * width) * batch * conv.weight.numel())

    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if isinstance(module, Conv2dSame) and not module.fixed_padding
    ]
    try:
        yield extra
    finally:
        for handle in handles:
            handle.remove()


def count(
    model_cfg: dict, image_size: int, num_classes: Optional[int] = None
) -> Tuple[int, int]:
    """(parameters, MACs) of a detector config at a square input.

    Args:
        model_cfg (dict): The config's ``model``.
        image_size (int): Side of the square input.
        num_classes (int, optional): Replaces the head's classes.

    Returns:
        tuple[int, int]: Parameters and multiply-accumulates.
    """
    model_cfg = ConfigDict(model_cfg)
    model_cfg.pop('_delete_', None)
    if num_classes is not None:
        model_cfg.bbox_head.num_classes = num_classes
    model = _build_on_meta(model_cfg)
    with torch.device('meta'):
        inputs = torch.empty(1, 3, image_size, image_size)
    return _count(model, lambda: model._forward(inputs))


def count_neck(
    neck_cfg: dict, channels: Sequence[int], sizes: Sequence[int]
) -> Tuple[int, int]:
    """(parameters, MACs) of a neck alone on square feature maps of
    ``channels`` and ``sizes`` (the backbone's outputs), batch 1."""
    neck = _build_on_meta(neck_cfg)
    with torch.device('meta'):
        feats = [torch.empty(1, c, s, s) for c, s in zip(channels, sizes)]
    return _count(neck, lambda: neck(feats))


def _build_on_meta(cfg: dict) -> nn.Module:
    register_all_modules()
    with torch.device('meta'):
        return MODELS.build(copy.deepcopy(cfg)).eval()


def _count(model: nn.Module, forward: Callable[[], Any]) -> Tuple[int, int]:
    params = sum(p.numel() for p in model.parameters())
    with same_padding_overcount(model) as extra, FlopCounterMode(
        display=False
    ) as counter:
        forward()
    return params, counter.get_total_flops() // 2 - sum(extra)


def input_size(cfg: Config) -> int:
    """The config's square input size (what every image is padded to)."""
    return cfg.model.data_preprocessor.pad_size_divisor
