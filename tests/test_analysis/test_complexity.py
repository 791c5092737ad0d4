"""The complexity counter's MACs: TF's SAME convolution, not the layer's
cropped extra window."""

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from mmdet_efficientdet.analysis.complexity import same_padding_overcount
from mmdet_efficientdet.models.layers import Conv2dSame


def _macs(module, x):
    with same_padding_overcount(module) as extra, FlopCounterMode(
        display=False
    ) as counter:
        out = module(x)
    return out, counter.get_total_flops() // 2, sum(extra)


def test_overcount_is_the_cropped_window():
    conv = Conv2dSame(2, 3, 3, stride=2)
    out, counted, extra = _macs(conv, torch.randn(1, 2, 8, 8))
    assert out.shape == (1, 3, 4, 4)
    # the layer computes 5x5 windows of 2x3x3 MACs per output channel;
    # SAME's are 4x4
    assert counted == 5 * 5 * 3 * 18
    assert counted - extra == 4 * 4 * 3 * 18


def test_symmetric_padding_and_removed_hooks_count_nothing_extra():
    model = nn.Sequential(
        Conv2dSame(2, 4, 3), Conv2dSame(4, 4, 3, stride=2, groups=4)
    )
    x = torch.randn(2, 2, 9, 9)  # odd: SAME is symmetric at stride 2 too
    _, counted, extra = _macs(model, x)
    assert extra == 0
    assert counted == 2 * (9 * 9 * 4 * 18 + 5 * 5 * 4 * 9)
    assert not any(m._forward_hooks for m in model.modules())
