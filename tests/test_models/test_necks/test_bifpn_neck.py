"""BiFPNNeck: shapes at any size, structure, fusion, options, bad input."""

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmdet.registry import MODELS
from mmengine.model import revert_sync_batchnorm
from torch import nn

from mmdet_efficientdet.models.backbones import EfficientNetBackbone
from mmdet_efficientdet.models.layers import MaxPool2dSame
from mmdet_efficientdet.models.necks import BiFPNNeck, FeatureFusion


def same_chain(image_size, num_levels, first_level=3):
    """Sizes of levels ``first_level...`` under ceil halving (TF SAME)."""
    height, width = image_size
    sizes = []
    for level in range(1, first_level + num_levels):
        height, width = (height + 1) // 2, (width + 1) // 2
        if level >= first_level:
            sizes.append((height, width))
    return sizes


def make_inputs(in_channels, sizes, batch=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, c, *size, generator=gen)
        for c, size in zip(in_channels, sizes)
    )


@pytest.mark.parametrize(
    'in_channels, num_outs, first_level',
    [
        ([40, 112, 320], 5, 3),  # P3-P7 (D0-D7)
        ([40, 112, 320], 6, 3),  # P3-P8 (D7x)
        ([24, 40, 112, 320], 5, 2),  # P2-P6 (Faster R-CNN)
        ([24, 40, 112, 320], 6, 2),  # P2-P7
        ([16, 32], 2, 4),  # two levels, no extra level
        ([32, 32, 32], 4, 3),  # inputs already out_channels wide
    ],
)
def test_shapes_at_an_odd_non_square_size(in_channels, num_outs, first_level):
    neck = MODELS.build(
        dict(
            type='BiFPNNeck',
            in_channels=in_channels,
            out_channels=32,
            num_outs=num_outs,
            num_stages=2,
        )
    )
    sizes = same_chain((333, 517), num_outs, first_level)
    with torch.no_grad():
        outs = neck.eval()(make_inputs(in_channels, sizes))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 32, *s) for s in sizes]


def test_behind_the_efficientnet_backbone():
    backbone = EfficientNetBackbone('b0')
    neck = BiFPNNeck(backbone.out_channels, 64)
    with torch.no_grad():
        outs = neck(backbone(torch.rand(1, 3, 333, 517)))
    assert [tuple(o.shape[-2:]) for o in outs] == same_chain((333, 517), 5)


@pytest.mark.parametrize('padding', ['same', 'symmetric'])
def test_tiny_and_flooring_inputs(padding):
    neck = BiFPNNeck([8, 16, 24], 16, num_stages=1, padding=padding)
    # 64 px: P6 and P7 are 1x1
    outs = neck(make_inputs([8, 16, 24], same_chain((64, 64), 3), batch=2))
    assert [tuple(o.shape[-2:]) for o in outs] == [
        (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]  # fmt: skip
    # levels from a backbone that floors odd sizes are matched too
    sizes = [(42, 65), (21, 32), (10, 16)]
    outs = neck(make_inputs([8, 16, 24], sizes, batch=2))
    assert [tuple(o.shape[-2:]) for o in outs[:3]] == sizes


def test_fusion_methods():
    feats = [torch.full((1, 1, 2, 2), v) for v in (1.0, 2.0, 4.0)]
    fast = FeatureFusion(3, 'fast')
    with torch.no_grad():
        fast.weight.copy_(torch.tensor([1.0, -1.0, 3.0]))
    # the negative weight is clipped to 0 by the ReLU
    expected = (1.0 * 1 + 3.0 * 4) / (4.0 + 1e-4)
    torch.testing.assert_close(fast(feats), torch.full((1, 1, 2, 2), expected))

    soft = FeatureFusion(3, 'softmax')
    with torch.no_grad():
        soft.weight.copy_(torch.tensor([0.0, 1.0, 2.0]))
    w = torch.tensor([0.0, 1.0, 2.0]).softmax(0)
    expected = float(w @ torch.tensor([1.0, 2.0, 4.0]))
    torch.testing.assert_close(soft(feats), torch.full((1, 1, 2, 2), expected))

    plain = FeatureFusion(3, 'sum')
    assert plain.weight is None
    assert list(plain.parameters()) == []
    torch.testing.assert_close(plain(feats), torch.full((1, 1, 2, 2), 7.0))

    with pytest.raises(ValueError, match='>= 2 inputs'):
        FeatureFusion(1, 'sum')


@pytest.mark.parametrize('fusion', ['fast', 'softmax', 'sum'])
def test_every_parameter_learns(fusion):
    neck = BiFPNNeck([8, 16, 24], 16, num_stages=2, fusion=fusion)
    neck.init_weights()
    nodes = [node for stage in neck.stages for node in stage.nodes]
    if fusion != 'sum':
        # official initial fusion weights, untouched by init_weights
        assert all(torch.all(n.fusion.weight == 1) for n in nodes)
    inputs = make_inputs([8, 16, 24], same_chain((96, 80), 3), batch=2)
    sum(o.square().mean() for o in neck(inputs)).backward()
    for name, param in neck.named_parameters():
        assert param.grad is not None, name
        # a conv bias in front of a training-mode BN is removed with the
        # batch mean: its gradient is zero up to rounding
        if not name.endswith('conv.bias'):
            assert param.grad.abs().sum() > 0, name


def test_node_structure_is_tf_layout():
    neck = BiFPNNeck([40, 112, 320], 64, padding='same')
    node = neck.stages[0].nodes[0]
    dw, pw = node.conv.depthwise_conv, node.conv.pointwise_conv
    # activation, depthwise conv (no bias, no norm), pointwise conv with a
    # bias, then the norm
    assert dw.order == ('act', 'conv', 'norm')
    assert isinstance(dw.activate, nn.SiLU)
    assert dw.conv.bias is None and not dw.with_norm
    assert dw.conv.groups == 64 and dw.conv.kernel_size == (3, 3)
    assert pw.conv.bias is not None and pw.with_norm
    assert not pw.with_activation
    assert isinstance(dw.conv, Conv2dAdaptivePadding)
    assert isinstance(node.downsample, MaxPool2dSame)
    assert isinstance(neck.extra_pools[0], MaxPool2dSame)

    plain = BiFPNNeck([40, 112, 320], 64, padding='symmetric')
    dw = plain.stages[0].nodes[0].conv.depthwise_conv
    assert type(dw.conv) is nn.Conv2d and dw.conv.padding == (1, 1)
    assert type(plain.extra_pools[0]) is nn.MaxPool2d


def test_state_dict_keys():
    """The names a checkpoint converter maps onto (public API)."""
    keys = set(BiFPNNeck([40, 112, 320], 64).state_dict())
    # P6 projection of P5; P7 pools P6 without a conv
    assert {k for k in keys if k.startswith('extra_convs.')} == {
        'extra_convs.0.conv.weight',
        'extra_convs.0.conv.bias',
        'extra_convs.0.bn.weight',
        'extra_convs.0.bn.bias',
        'extra_convs.0.bn.running_mean',
        'extra_convs.0.bn.running_var',
        'extra_convs.0.bn.num_batches_tracked',
    }
    # one projection per backbone edge of layer one: P5 feeds nodes 1 and
    # 5, P4 nodes 2 and 4, P3 node 3 - always as the node's first input
    projected = {
        k.split('.input_convs')[0] for k in keys if '.input_convs.' in k
    }
    assert projected == {f'stages.0.nodes.{n}' for n in (1, 2, 3, 4, 5)}
    assert all('.input_convs.0.' in k for k in keys if 'input_convs' in k)
    node = 'stages.2.nodes.7.'
    assert {k for k in keys if k.startswith(node)} == {
        node + 'fusion.weight',
        node + 'conv.depthwise_conv.conv.weight',
        node + 'conv.pointwise_conv.conv.weight',
        node + 'conv.pointwise_conv.conv.bias',
        node + 'conv.pointwise_conv.bn.weight',
        node + 'conv.pointwise_conv.bn.bias',
        node + 'conv.pointwise_conv.bn.running_mean',
        node + 'conv.pointwise_conv.bn.running_var',
        node + 'conv.pointwise_conv.bn.num_batches_tracked',
    }


def test_norm_and_activation_options():
    inputs = make_inputs([8, 16, 24], same_chain((96, 80), 3), batch=2)
    gn = BiFPNNeck(
        [8, 16, 24],
        16,
        norm_cfg=dict(type='GN', num_groups=4),
        act_cfg=dict(type='ReLU6'),
    )
    outs = gn(inputs)
    assert len(outs) == 5
    assert 'stages.0.nodes.0.conv.pointwise_conv.gn.weight' in gn.state_dict()
    assert isinstance(
        gn.stages[0].nodes[0].conv.depthwise_conv.activate, nn.ReLU6
    )

    sync = BiFPNNeck([8, 16, 24], 16, norm_cfg=dict(type='SyncBN'))
    assert isinstance(sync.extra_convs[0].bn, nn.SyncBatchNorm)
    outs_bn = revert_sync_batchnorm(sync)(inputs)  # as mmengine does
    assert [o.shape for o in outs_bn] == [o.shape for o in outs]

    no_norm = BiFPNNeck([8, 16, 24], 16, norm_cfg=None, conv_bias=False)
    node = no_norm.stages[0].nodes[1]
    # without a norm every conv but the depthwise keeps its bias
    assert node.conv.pointwise_conv.conv.bias is not None
    assert node.input_convs[0].conv.bias is not None
    assert len(no_norm(inputs)) == 5


def test_gradient_checkpointing_matches():
    torch.manual_seed(0)
    plain = BiFPNNeck([8, 16, 24], 16, num_stages=2)
    ckpt = BiFPNNeck([8, 16, 24], 16, num_stages=2, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    grads = []
    for neck in (plain, ckpt):
        inputs = make_inputs([8, 16, 24], same_chain((96, 80), 3), batch=2)
        inputs = tuple(x.requires_grad_() for x in inputs)
        outs = neck(inputs)
        sum(o.square().mean() for o in outs).backward()
        grads.append(
            [p.grad for p in neck.parameters()] + [x.grad for x in inputs]
        )
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_forward_checks_its_inputs():
    neck = BiFPNNeck([40, 112, 320], 32, num_stages=1)
    sizes = same_chain((128, 128), 3)
    with pytest.raises(ValueError, match=r'3 inputs .*in_channels.* got 2'):
        neck(make_inputs([40, 112], sizes))
    with pytest.raises(ValueError, match=r'in_channels.*\[40, 112, 64\]'):
        neck(make_inputs([40, 112, 64], sizes))


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(in_channels=[40, 112, 320], num_outs=2), r'num_outs \(2\)'),
        (dict(fusion='attention'), 'unknown fusion method'),
        (dict(in_channels=[320]), '>= 2 input levels'),
        (dict(num_stages=0), 'num_stages'),
        (dict(padding='valid'), 'padding must be one of'),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(in_channels=[40, 112, 320], out_channels=32)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        BiFPNNeck(**args)


def test_nearest_upsampling_repeats_the_parent_pixel():
    """Odd sizes: fine pixel i reads coarse pixel i // 2, as TF SAME."""
    coarse = torch.arange(3.0).view(1, 1, 1, 3)
    up = F.interpolate(coarse, size=(1, 5), mode='nearest')
    assert up.flatten().tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]
