"""The deploy rewrites keep the outputs and remove the work they promise."""

import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config

from helpers import coco_config
from mmdet_efficientdet.deploy import (
    FoldedEfficientDetHead,
    count_batchnorms,
    fold_batchnorms,
    fold_bn_into_conv,
    prepare_for_deploy,
    static_same_padding,
)
from mmdet_efficientdet.models.backbones import EfficientNetBackbone
from mmdet_efficientdet.models.dense_heads import EfficientDetHead
from mmdet_efficientdet.models.layers import MaxPool2dSame


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine terms, so folding shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def build_detector(variant: str) -> nn.Module:
    register_all_modules()
    cfg = Config.fromfile(coco_config(variant))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    randomise_bn(model)
    return model.eval()


def assert_outputs_close(ours, ref, atol=1e-4):
    for a, b in zip(ours, ref):
        for x, y in zip(a, b):
            assert x.shape == y.shape
            torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


def test_fold_bn_into_conv_keeps_the_function():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(6)
    randomise_bn(nn.Sequential(bn))
    x = torch.randn(2, 4, 9, 9)
    expected = bn.eval()(conv(x))
    fold_bn_into_conv(conv, bn)
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)


def test_fold_refuses_training_mode():
    with pytest.raises(RuntimeError, match='eval mode'):
        fold_batchnorms(EfficientNetBackbone('lite0').train())


class WiderHead(EfficientDetHead):
    """A user's subclass: folding keeps its class's own behaviour."""

    def forward(self, x):
        cls_scores, bbox_preds = super().forward(x)
        return [2 * c for c in cls_scores], bbox_preds


@pytest.mark.parametrize(
    'head_type, use_depthwise',
    [(EfficientDetHead, True), (WiderHead, True), (EfficientDetHead, False)],
)
def test_fold_head_gives_each_level_its_conv(head_type, use_depthwise):
    torch.manual_seed(0)
    head = head_type(
        3, 8, feat_channels=8, stacked_convs=2, use_depthwise=use_depthwise
    ).eval()
    randomise_bn(head)
    feats = [torch.randn(1, 8, s, s) for s in (8, 4, 2, 1, 1)]
    with torch.no_grad():
        expected = head(feats)
    assert fold_batchnorms(head) == 2 * 2 * 5
    assert isinstance(head, FoldedEfficientDetHead)
    assert isinstance(head, head_type)
    assert count_batchnorms(head) == 0
    assert len(head.cls_convs[1]) == 5  # one conv per level
    with torch.no_grad():
        assert_outputs_close(head(feats), expected, atol=1e-5)
    assert fold_batchnorms(head) == 0


def test_head_with_other_norms_is_left_as_built():
    head = EfficientDetHead(
        3, 8, feat_channels=8, norm_cfg=dict(type='GN', num_groups=2)
    ).eval()
    assert fold_batchnorms(head) == 0
    assert type(head) is EfficientDetHead


def test_static_padding_of_backbone_at_odd_size():
    torch.manual_seed(0)
    model = EfficientNetBackbone('b0').eval()
    randomise_bn(model)
    x = torch.randn(1, 3, 97, 75)
    with torch.no_grad():
        expected = model(x)
    counts = static_same_padding(model, lambda: model(x))
    assert counts['kept'] == 0 and counts['conv'] > 0
    assert not any(
        isinstance(m, Conv2dAdaptivePadding) for m in model.modules()
    )
    with torch.no_grad():
        got = model(x)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('size', [(64, 64), (65, 33), (7, 10)])
def test_static_max_pool_equals_same_pool(size):
    pool = MaxPool2dSame(3, 2)
    holder = nn.Sequential(pool)
    x = torch.randn(1, 2, *size)
    expected = holder(x)
    counts = static_same_padding(holder, lambda: holder(x))
    assert counts == dict(conv=0, pool=1, kept=0, unused=0)
    assert type(holder[0]) is nn.MaxPool2d
    torch.testing.assert_close(holder(x), expected)


def test_module_called_at_two_paddings_is_kept():
    conv = Conv2dAdaptivePadding(2, 2, 3, stride=2)
    holder = nn.Sequential(conv)
    counts = static_same_padding(
        holder,
        lambda: (
            holder(torch.randn(1, 2, 8, 8)),
            holder(torch.randn(1, 2, 9, 9)),
        ),
    )
    assert counts == dict(conv=0, pool=0, kept=1, unused=0)
    assert holder[0] is conv


@pytest.mark.parametrize(
    'variant,channels_last', [('d0', False), ('lite0', True)]
)
def test_prepare_for_deploy_keeps_detector_outputs(variant, channels_last):
    model = build_detector(variant)
    size = model.data_preprocessor.pad_size_divisor
    x = torch.randn(
        1, 3, size, size, generator=torch.Generator().manual_seed(1)
    )
    deployed = copy.deepcopy(model)
    report = prepare_for_deploy(deployed, x.shape, channels_last=channels_last)
    assert report['folded_bn'] > 0
    assert report['left_bn'] == count_batchnorms(deployed) == 0
    assert report['dynamic_padding'] == 0
    # every module left with runtime padding is one the size never uses
    assert not any(
        isinstance(m, Conv2dAdaptivePadding) for m in deployed.modules()
    )
    pools = [m for m in deployed.modules() if isinstance(m, MaxPool2dSame)]
    assert len(pools) == report['unused_padding']
    if channels_last:
        x_in = x.contiguous(memory_format=torch.channels_last)
    else:
        x_in = x
    with torch.no_grad():
        assert_outputs_close(deployed._forward(x_in), model._forward(x))
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                scale_factor=(1.0, 1.0),
                batch_input_shape=(size, size),
            )
        )
        ref = model.predict(x, [copy.deepcopy(sample)])[0].pred_instances
        got = deployed.predict(x_in, [sample])[0].pred_instances
    torch.testing.assert_close(got.scores, ref.scores, atol=1e-4, rtol=0)
    # random weights score many anchors alike, so which of the tied boxes
    # NMS keeps is down to float rounding; the network outputs are compared
    # above, the post-processing is the same code
    assert len(got) == len(ref)
