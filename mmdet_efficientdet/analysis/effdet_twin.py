"""The effdet model equivalent to one of our detectors, with its weights.

For side-by-side benchmarks: effdet (efficientdet-pytorch 0.4.1) builds the
same architecture from its own code; its randomly initialised weights are
converted into our detector (:func:`~..convert.convert_effdet_state_dict`)
so that both compute the same function and the post-processing of both
sees the same scores.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..convert import (
    check_converted,
    convert_effdet_state_dict,
    get_effdet_variant,
)


def effdet_name_for(spec_name: str) -> str:
    """effdet's TF-layout model name of one of our variants."""
    name = f'tf_efficientdet_{spec_name}'
    get_effdet_variant(name)  # raises on an unknown variant
    return name


def build_effdet_twin(
    model: nn.Module, name: str, num_classes: int, image_size: int
) -> nn.Module:
    """Build effdet's ``name`` and load its weights into ``model``.

    Args:
        model (nn.Module): Our detector; its weights are replaced.
        name (str): effdet model name, e.g. ``'tf_efficientdet_d0'``.
        num_classes (int): Classes of ``model``'s head.
        image_size (int): Square input size (effdet fixes its resampling
            and anchors for one size).

    Returns:
        nn.Module: effdet's ``EfficientDet`` network (no bench wrapper).

    Raises:
        ValueError: If the two architectures differ in any tensor.
    """
    from effdet import create_model

    bench = create_model(
        name,
        bench_task='',
        pretrained=False,
        pretrained_backbone=False,
        num_classes=num_classes,
        image_size=(image_size, image_size),
    )
    net = bench.eval()
    state, unknown = convert_effdet_state_dict(net.state_dict(), name)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_converted(state, unknown, expected, name)
    model.load_state_dict(state, strict=True)
    return net


@torch.no_grad()
def twin_difference(
    model: nn.Module, net: nn.Module, images: torch.Tensor
) -> Tuple[float, Optional[float]]:
    """Largest difference of the class outputs of ``model`` and ``net``.

    Returns:
        (max abs difference, max abs value of ours) over all levels.
    """
    ours, _ = model._forward(images)
    theirs, _ = net(images)
    diff = max(float((a - b).abs().max()) for a, b in zip(ours, theirs))
    scale = max(float(a.abs().max()) for a in ours)
    return diff, scale
