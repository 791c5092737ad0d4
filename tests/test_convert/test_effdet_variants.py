"""Every effdet variant maps key for key onto its converted config."""

import re

import pytest
import torch
from effdet import create_model
from mmengine.config import Config

from mmdet_efficientdet.convert import (
    EFFDET_VARIANTS,
    check_converted,
    convert_effdet_state_dict,
    converted_config,
    get_effdet_variant,
    guess_variant,
    matching_variants,
    model_shapes,
)

# one of each kind in the quick tier: TF, AdvProp, PyTorch-native, Lite
QUICK_VARIANTS = {
    'tf_efficientdet_d0',
    'tf_efficientdet_d0_ap',
    'efficientdet_d0',
    'tf_efficientdet_lite0',
}


def effdet_state(name):
    # shapes only: the meta device allocates nothing
    with torch.device('meta'):
        model = create_model(name, pretrained=False, pretrained_backbone=False)
    return model.state_dict()


@pytest.mark.parametrize(
    'name',
    [
        n if n in QUICK_VARIANTS else pytest.param(n, marks=pytest.mark.slow)
        for n in sorted(EFFDET_VARIANTS)
    ],
)
def test_every_tensor_maps_with_its_shape(name):
    state = effdet_state(name)
    converted, unknown = convert_effdet_state_dict(state, name)
    expected = model_shapes(get_effdet_variant(name).config)
    check_converted(converted, unknown, expected, name, state)
    assert len(converted) == len(state) == len(expected)
    assert name in matching_variants(state)


def test_every_effdet_model_with_weights_is_covered():
    from effdet.config.model_config import efficientdet_model_param_dict

    released = {
        name
        for name, params in efficientdet_model_param_dict.items()
        if params.get('url')
    }
    # the paper's models; effdet's own (efficientdetv2_*, efficientdet_q*,
    # cspresdet50, ...) use other backbones or anchors
    ours = {
        n
        for n in released
        if re.fullmatch(r'(tf_)?efficientdet_(d\d+x?|lite\d+x?)(_ap)?', n)
    }
    assert ours == set(EFFDET_VARIANTS)


@pytest.mark.parametrize(
    'name, checks',
    [
        (
            'efficientdet_d0',
            {
                'backbone.padding': 'symmetric',
                'backbone.norm_cfg.eps': 1e-5,
                'neck.padding': 'symmetric',
                'neck.conv_bias': False,
                'neck.norm_cfg.eps': 1e-3,
                'bbox_head.padding': 'symmetric',
                'bbox_head.conv_bias': False,
                'data_preprocessor.mean': [123.675, 116.28, 103.53],
            },
        ),
        (
            'tf_efficientdet_d3_ap',
            {
                'backbone.padding': 'same',
                'backbone.norm_cfg.eps': 1e-3,
                'neck.conv_bias': True,
                'data_preprocessor.mean': [127.5] * 3,
                'data_preprocessor.std': [127.5] * 3,
            },
        ),
        (
            'tf_efficientdet_lite2',
            {
                'backbone.arch': 'lite2',
                'data_preprocessor.mean': [127.0] * 3,
                'data_preprocessor.std': [128.0] * 3,
            },
        ),
    ],
)
def test_converted_configs(name, checks):
    cfg = Config.fromfile(get_effdet_variant(name).config)
    assert cfg.model.bbox_head.num_classes == 90
    assert cfg.model.backbone.init_cfg is None
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoCategoryIdMetric'
        assert evaluator.label_offset == 1
        assert evaluator.ann_file.endswith('instances_val2017.json')
    for path, value in checks.items():
        node = cfg.model
        for part in path.split('.'):
            node = node[part]
        assert node == value, path


def test_converted_config_wants_the_matching_base():
    with pytest.raises(ValueError, match="converts to our 'd1' variant"):
        converted_config(dict(efficientdet=dict(name='d0')), 'efficientdet_d1')


@pytest.mark.parametrize(
    'path, name',
    [
        ('w/tf_efficientdet_d0_34-f153e0cf.pth', 'tf_efficientdet_d0'),
        ('tf_efficientdet_d0_ap-d0cdbd0a.pth', 'tf_efficientdet_d0_ap'),
        ('tf_efficientdet_d7x-f390b87c.pth', 'tf_efficientdet_d7x'),
        ('tf_efficientdet_d7_53-6d1d7a95.pth', 'tf_efficientdet_d7'),
        ('tf_efficientdet_lite3x-8404c57b.pth', 'tf_efficientdet_lite3x'),
        ('efficientdet_d1-bb7e98fe.pth', 'efficientdet_d1'),
        ('model_best.pth', None),
    ],
)
def test_guess_variant(path, name):
    assert guess_variant(path) == name
