"""Parameters and MACs of a detector config, counted on the meta device.

MACs are ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2:
convolutions and matrix products over backbone, neck and head at batch 1;
norms, activations, pooling and resampling are not counted; SAME
padding as TF defines it (:func:`~..models.layers.padded_copy_same_convs`).
The model is
built on the ``meta`` device, so nothing is computed and even D7x counts in
seconds. With 90 classes (the TF checkpoints' COCO ids) the totals are the
official ones.
"""

from typing import Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict
from torch.utils.flop_counter import FlopCounterMode

from ..models.layers import padded_copy_same_convs


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
    register_all_modules()
    model_cfg = ConfigDict(model_cfg)
    model_cfg.pop('_delete_', None)
    if num_classes is not None:
        model_cfg.bbox_head.num_classes = num_classes
    with torch.device('meta'):
        model = MODELS.build(model_cfg).eval()
        inputs = torch.empty(1, 3, image_size, image_size)
    params = sum(p.numel() for p in model.parameters())
    with padded_copy_same_convs(), FlopCounterMode(display=False) as counter:
        model._forward(inputs)
    return params, counter.get_total_flops() // 2


def input_size(cfg: Config) -> int:
    """The config's square input size (what every image is padded to)."""
    return cfg.model.data_preprocessor.pad_size_divisor
