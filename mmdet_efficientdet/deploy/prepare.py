"""One call that turns a built detector into its deployment form."""

from typing import Dict, Sequence

import torch
import torch.nn as nn

from .fold_bn import count_batchnorms, fold_batchnorms
from .static_padding import static_same_padding


@torch.no_grad()
def prepare_for_deploy(
    model: nn.Module,
    input_shape: Sequence[int],
    channels_last: bool = False,
) -> Dict[str, int]:
    """Rewrite ``model`` in place for inference at one input shape.

    Puts the model in eval mode, folds its batch norms (and the conv biases
    in front of them) into the convolutions (:func:`fold_batchnorms`),
    fixes its SAME padding for ``input_shape`` (:func:`static_same_padding`)
    and, with ``channels_last``, stores its weights NHWC (feed it
    ``x.contiguous(memory_format=torch.channels_last)``). The outputs stay
    those of the original model up to float rounding; the model can no
    longer be trained, and other input sizes may need other padding.

    Args:
        model (nn.Module): A detector (called as ``model(x)``, mmdet's
            ``mode='tensor'``) or any module taking one image batch.
        input_shape (Sequence[int]): ``(N, C, H, W)`` of the deployment
            input.
        channels_last (bool): Convert the weights to channels-last.

    Returns:
        dict: ``folded_bn``, ``left_bn`` (norms that could not be folded),
        ``static_conv``, ``static_pool``, ``dynamic_padding`` (modules
        left with runtime padding) and ``unused_padding`` (padded modules
        the input size never calls).
    """
    if len(input_shape) != 4:
        raise ValueError(
            f'input_shape must be (N, C, H, W), got {tuple(input_shape)}'
        )
    model.eval()
    folded = fold_batchnorms(model)
    param = next(model.parameters())
    example = torch.zeros(
        tuple(input_shape), dtype=param.dtype, device=param.device
    )
    padding = static_same_padding(model, lambda: model(example))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return dict(
        folded_bn=folded,
        left_bn=count_batchnorms(model),
        static_conv=padding['conv'],
        static_pool=padding['pool'],
        dynamic_padding=padding['kept'],
        unused_padding=padding['unused'],
    )
