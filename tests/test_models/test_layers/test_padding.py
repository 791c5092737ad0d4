"""TF SAME padding layers equal their padded-copy definitions."""

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmcv.cnn.bricks import Conv2dAdaptivePadding

from mmdet_efficientdet.models.layers import (
    Conv2dSame,
    MaxPool2dSame,
    conv_cfg_for,
    same_conv_padding,
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
        (4, 2, 1, (8, 9)),
        (3, 3, 1, (10, 12)),
        (3, 2, 2, (12, 13)),
        (1, 2, 1, (8, 8)),
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


@pytest.mark.parametrize('stride', [1, 2, 3])
@pytest.mark.parametrize('kernel,dilation', [(1, 1), (2, 1), (3, 1), (3, 2)])
def test_same_conv_padding_windows_are_same_windows(kernel, dilation, stride):
    """Window starts and the padding reached, position by position."""
    span = (kernel - 1) * dilation + 1
    for size in range(1, 20):
        before, after = same_pad_amounts(size, kernel, stride, dilation)
        expected = [-before + stride * i for i in range(-(-size // stride))]
        padding, crop = same_conv_padding(size, kernel, stride, dilation)
        count = (size + 2 * padding - span) // stride + 1
        starts = [-padding + stride * i for i in range(count)][crop:]
        assert starts == expected
        # the last window reaches SAME's padding after the input, no more
        assert max(starts[-1] + span - size, 0) == after


def test_conv2d_same_gradients_and_channels_last():
    torch.manual_seed(0)
    ref = Conv2dAdaptivePadding(4, 4, 3, stride=2, groups=4)
    conv = Conv2dSame(4, 4, 3, stride=2, groups=4)
    conv.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 10, 12, requires_grad=True)
    grads = []
    for module in (ref, conv):
        x.grad = None
        module(x).square().sum().backward()
        grads.append((x.grad.clone(), module.weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)
    out = conv.to(memory_format=torch.channels_last)(x_cl)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert out.shape == (2, 4, 5, 6)


def test_conv2d_same_pads_under_efficient_conv_bn_eval():
    """mmcv's eval-mode conv-BN fusion calls _conv_forward directly."""
    torch.manual_seed(0)
    block = ConvModule(
        3,
        4,
        3,
        stride=2,
        conv_cfg=conv_cfg_for('same'),
        norm_cfg=dict(type='BN'),
    )
    block.norm.running_mean.uniform_(-1, 1)
    block.norm.running_var.uniform_(0.5, 2)
    block.eval()
    x = torch.randn(1, 3, 8, 8)
    expected = block(x)
    block.turn_on_efficient_conv_bn_eval()
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


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
