"""TF SAME padding layers equal their padded-copy definitions."""

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmcv.cnn.bricks import Conv2dAdaptivePadding

from mmdet_efficientdet.models.layers import (
    Conv2dSame,
    MaxPool2dSame,
    conv_cfg_for,
    same_pad_amounts,
)


@pytest.mark.parametrize(
    'kernel,stride,dilation,size',
    [
        (3, 1, 1, (7, 8)),
        (5, 1, 1, (9, 9)),
        (3, 1, 2, (9, 9)),
        (2, 1, 1, (6, 6)),
        (3, 2, 1, (8, 8)),
        (3, 2, 1, (9, 7)),
        (5, 2, 1, (10, 11)),
    ],
)
def test_conv2d_same_equals_mmcv_adaptive_padding(
    kernel, stride, dilation, size
):
    torch.manual_seed(0)
    ref = Conv2dAdaptivePadding(3, 4, kernel, stride=stride, dilation=dilation)
    conv = Conv2dSame(3, 4, kernel, stride=stride, dilation=dilation)
    conv.load_state_dict(ref.state_dict())
    # the padding is the conv's own exactly when it is size-independent
    assert conv.fixed_padding == (
        stride == 1 and (kernel - 1) * dilation % 2 == 0
    )
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(conv(x), ref(x), atol=1e-6, rtol=1e-6)


def test_same_conv_cfg_builds_conv2d_same_outside_any_scope():
    conv = build_conv_layer(conv_cfg_for('same'), 2, 2, 3)
    assert type(conv) is Conv2dSame


@pytest.mark.parametrize('size', [(8, 8), (9, 7), (2, 3), (1, 1), (64, 33)])
def test_max_pool_same_equals_padded_pooling(size):
    x = torch.randn(1, 2, *size)
    top, bottom = same_pad_amounts(size[0], 3, 2)
    left, right = same_pad_amounts(size[1], 3, 2)
    padded = F.pad(x, (left, right, top, bottom), value=float('-inf'))
    torch.testing.assert_close(
        MaxPool2dSame(3, 2)(x), F.max_pool2d(padded, 3, 2)
    )
