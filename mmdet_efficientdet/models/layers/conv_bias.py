"""A conv bias in front of a norm layer: the layout of TF EfficientDet."""

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule


def add_conv_bias(module: ConvModule) -> ConvModule:
    """Give the conv of ``module`` a zero-initialised bias; return ``module``.

    The official EfficientDet keeps a bias on every conv that feeds a batch
    norm (effdet calls it ``redundant_bias``). The norm's shift could learn
    the same thing, but TF checkpoints carry these tensors and the
    reference parameter counts include them. ``ConvModule(bias=True)``
    followed by BN warns about exactly this redundancy on every build, so
    the bias is added after construction instead.

    Example:
        >>> module = add_conv_bias(
        ...     ConvModule(8, 4, 1, norm_cfg=dict(type='BN'), act_cfg=None))
        >>> module.conv.bias.shape
        torch.Size([4])
    """
    conv = module.conv
    if conv.bias is None:
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
        module.with_bias = True
    return module
