"""The compound-scaling table, the paper's formulas and their errors."""

import math

import pytest

from mmdet_efficientdet.models.backbones.efficientnet_arch import (
    round_channels,
)
from mmdet_efficientdet.scaling import (
    ALPHA,
    BETA,
    GAMMA,
    OFFICIAL,
    compound_spec,
    efficientnet_multipliers,
    get_spec,
    scaled_config,
)

# Shared reference, section 1: input, backbone, BiFPN width, BiFPN layers,
# head convs, fusion, anchor scale, max level.
TABLE = {
    'd0': (512, 'b0', 64, 3, 3, 'fast', 4.0, 7),
    'd1': (640, 'b1', 88, 4, 3, 'fast', 4.0, 7),
    'd2': (768, 'b2', 112, 5, 3, 'fast', 4.0, 7),
    'd3': (896, 'b3', 160, 6, 4, 'fast', 4.0, 7),
    'd4': (1024, 'b4', 224, 7, 4, 'fast', 4.0, 7),
    'd5': (1280, 'b5', 288, 7, 4, 'fast', 4.0, 7),
    'd6': (1280, 'b6', 384, 8, 5, 'sum', 4.0, 7),
    'd7': (1536, 'b6', 384, 8, 5, 'sum', 5.0, 7),
    'd7x': (1536, 'b7', 384, 8, 5, 'sum', 4.0, 8),
    'lite0': (320, 'lite0', 64, 3, 3, 'sum', 3.0, 7),
    'lite1': (384, 'lite1', 88, 4, 3, 'sum', 3.0, 7),
    'lite2': (448, 'lite2', 112, 5, 3, 'sum', 3.0, 7),
    'lite3': (512, 'lite3', 160, 6, 4, 'sum', 4.0, 7),
    'lite3x': (640, 'lite3', 200, 6, 4, 'sum', 3.0, 7),
    'lite4': (640, 'lite4', 224, 7, 4, 'sum', 4.0, 7),
}
# Shared reference, section 1: backbone C3 / C4 / C5 channels.
BACKBONE_CHANNELS = {
    'b0': [40, 112, 320],
    'b1': [40, 112, 320],
    'b2': [48, 120, 352],
    'b3': [48, 136, 384],
    'b4': [56, 160, 448],
    'b5': [64, 176, 512],
    'b6': [72, 200, 576],
    'b7': [80, 224, 640],
}


@pytest.mark.parametrize('name', list(TABLE))
def test_official_table(name):
    spec = get_spec(name)
    assert (
        spec.image_size,
        spec.backbone,
        spec.width,
        spec.num_stages,
        spec.head_convs,
        spec.fusion,
        spec.anchor_scale,
        spec.max_level,
    ) == TABLE[name]
    assert spec.lite == name.startswith('lite')
    assert spec.strides == [2**level for level in range(3, spec.max_level + 1)]
    assert spec.act_cfg == dict(type='ReLU6' if spec.lite else 'SiLU')
    assert get_spec(name.upper()) == spec
    assert set(OFFICIAL) == set(TABLE)


@pytest.mark.parametrize('backbone', list(BACKBONE_CHANNELS))
def test_backbone_channels(backbone):
    spec = get_spec('d0')._replace(backbone=backbone)
    assert spec.backbone_channels == BACKBONE_CHANNELS[backbone]


def test_integer_phi_is_the_table_row():
    for phi in range(8):
        assert get_spec(phi) is OFFICIAL[f'd{phi}']
        assert get_spec(float(phi)) is OFFICIAL[f'd{phi}']
        assert get_spec(f'd{phi}').phi == phi
    assert get_spec('d7x').phi is None


def test_table_departs_from_the_formulas_where_documented():
    # Reference section 1: width at D2, D4, D7; depth and input at D5-D7
    # (D6's input happens to agree); D7 keeps B6 and anchor scale 5.
    expected = {
        2: {'width'},
        4: {'width'},
        5: {'num_stages', 'image_size'},
        6: {'num_stages'},
        7: {'width', 'num_stages', 'image_size', 'anchor_scale'},
    }
    fields = ('image_size', 'width', 'num_stages', 'head_convs', 'fusion')
    fields += ('anchor_scale', 'max_level')
    for phi in range(8):
        table, formula = get_spec(phi), compound_spec(phi)
        differ = {
            f for f in fields if getattr(table, f) != getattr(formula, f)
        }
        assert differ == expected.get(phi, set()), phi


def test_formulas_for_a_fractional_phi():
    spec = get_spec(1.5)
    assert spec.name == 'phi1.5' and spec.phi == 1.5
    # 512 + 128 * 1.5 = 704, the nearest multiple of 128 above the tie
    assert spec.image_size == 768
    assert spec.width == round_channels(64 * 1.35**1.5) == 104
    assert spec.num_stages == math.ceil(3 + 1.5) == 5
    assert spec.head_convs == 3
    assert spec.backbone == dict(width=1.1**1.5, depth=1.2**1.5, lite=False)
    assert (spec.fusion, spec.anchor_scale, spec.max_level) == ('fast', 4, 7)
    # the B-series lies below the rule: "B1.5" outgrows B2 (48, 120, 352)
    assert spec.backbone_channels == [48, 128, 368]
    assert spec.drop_path_rate == 0.2
    assert spec.backbone_init_cfg is None


def test_formulas_above_7():
    spec = get_spec(8)
    assert spec.image_size == 512 + 128 * 8
    assert spec.width == round_channels(64 * 1.35**8)
    assert (spec.num_stages, spec.head_convs, spec.fusion) == (11, 5, 'sum')
    assert spec.backbone['width'] == pytest.approx(1.1**8)


def test_efficientnet_multipliers():
    assert ALPHA * BETA**2 * GAMMA**2 == pytest.approx(1.92, abs=0.01)
    assert efficientnet_multipliers(0) == (1.0, 1.0, 1.0)
    width, depth, resolution = efficientnet_multipliers(3)
    assert (width, depth, resolution) == pytest.approx(
        (1.1**3, 1.2**3, 1.15**3)
    )


def test_training_details_follow_the_variant():
    assert get_spec('d0').drop_path_rate == 0.0  # official: none for B0
    assert get_spec('lite0').drop_path_rate == 0.0
    assert get_spec('d1').drop_path_rate == 0.2
    assert get_spec('lite2').mean_std == ([127.0] * 3, [128.0] * 3)
    assert get_spec('d2').mean_std[0] == [123.675, 116.28, 103.53]
    url = get_spec('d7').backbone_init_cfg['checkpoint']
    assert 'tf_efficientnet_b6_aa' in url


@pytest.mark.parametrize(
    'variant,error,match',
    [
        ('d8', ValueError, 'unknown EfficientDet variant'),
        ('b0', ValueError, 'unknown EfficientDet variant'),
        (-1, ValueError, 'phi must be a finite number >= 0'),
        (-0.5, ValueError, 'phi must be a finite number >= 0'),
        (float('nan'), ValueError, 'phi must be a finite number >= 0'),
        (float('inf'), ValueError, 'phi must be a finite number >= 0'),
        (True, TypeError, 'phi must be a number'),
        (None, TypeError, 'phi must be a number'),
    ],
)
def test_bad_variant(variant, error, match):
    with pytest.raises(error, match=match):
        get_spec(variant)


@pytest.mark.parametrize(
    'variant,changes,match',
    [
        (
            'd0',
            dict(image_size=500),
            'not divisible by the largest stride 128',
        ),
        ('d7x', dict(image_size=1408), 'largest stride 256 .*e.g. 1536'),
        ('lite0', dict(image_size=330), 'not divisible'),
        (1.5, dict(image_size=704), 'not divisible'),
        ('d0', dict(image_size=0), 'image_size must be a positive'),
        ('d0', dict(width=0), 'width must be a positive'),
        ('d0', dict(num_stages=2.5), 'num_stages must be a positive'),
        ('d0', dict(fusion='max'), 'unknown fusion'),
        ('d0', dict(anchor_scale=0), 'anchor_scale must be positive'),
        ('d0', dict(max_level=4), 'max_level must be >= 5'),
        ('d0', dict(backbone='b9'), 'unknown EfficientNet arch'),
        ('d0', dict(depth=3), 'unknown spec fields'),
    ],
)
def test_bad_spec(variant, changes, match):
    with pytest.raises(ValueError, match=match):
        get_spec(variant, **changes)


def test_official_sizes_off_the_stride_are_kept():
    # Lite0 and Lite2 run at 320 and 448 officially (feature sizes rounded
    # up); they stay valid as they are
    assert get_spec('lite0').image_size % 128 == 64
    assert get_spec('lite2').image_size % 128 == 64
    assert get_spec('d0', image_size=640).image_size == 640


def _base_config():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResize', scale=None, ratio_range=(0.1, 2.0)),
        dict(type='RandomCrop', crop_size=None),
        dict(type='Pad', size_divisor=32),
    ]
    return dict(
        model=dict(
            data_preprocessor=dict(type='DetDataPreprocessor'),
            backbone=dict(type='EfficientNetBackbone'),
            neck=dict(type='BiFPNNeck'),
            bbox_head=dict(
                type='EfficientDetHead',
                anchor_generator=dict(type='EfficientDetAnchorGenerator'),
            ),
        ),
        train_pipeline=pipeline,
        train_dataloader=dict(dataset=dict(pipeline=pipeline)),
        test_dataloader=dict(
            dataset=dict(
                pipeline=[dict(type='Resize', scale=None, keep_ratio=True)]
            )
        ),
        optim_wrapper=dict(type='OptimWrapper'),
    )


def test_scaled_config_writes_every_derived_value():
    base = _base_config()
    out = scaled_config(base, 'lite3x')
    assert set(out) == {
        'model',
        'train_pipeline',
        'train_dataloader',
        'test_dataloader',
        'efficientdet',
    }
    model = out['model']
    assert model['_delete_'] is True
    assert model['data_preprocessor']['pad_size_divisor'] == 640
    assert model['data_preprocessor']['mean'] == [127.0] * 3
    assert model['backbone']['arch'] == 'lite3'
    assert model['backbone']['drop_path_rate'] == 0.2
    assert model['neck'] == dict(
        type='BiFPNNeck',
        in_channels=[48, 136, 384],
        out_channels=200,
        num_outs=5,
        num_stages=6,
        fusion='sum',
        act_cfg=dict(type='ReLU6'),
    )
    head = model['bbox_head']
    assert (head['in_channels'], head['feat_channels']) == (200, 200)
    assert head['stacked_convs'] == 4
    assert head['anchor_generator']['strides'] == [8, 16, 32, 64, 128]
    assert head['anchor_generator']['anchor_scale'] == 3.0
    for pipeline in (
        out['train_pipeline'],
        out['train_dataloader']['dataset']['pipeline'],
    ):
        assert pipeline[1]['scale'] == (640, 640)
        assert pipeline[2]['crop_size'] == (640, 640)
        assert 'size' not in pipeline[3]  # a Pad by divisor stays one
    test_resize = out['test_dataloader']['dataset']['pipeline'][0]
    assert test_resize['scale'] == (640, 640)
    assert out['efficientdet']['name'] == 'lite3x'
    # the input is not modified
    assert base == _base_config()


def test_scaled_config_overwrites_another_variant():
    base = _base_config()
    once = scaled_config(base, 'd3')
    again = scaled_config({**base, **scaled_config(base, 'lite0')}, 'd3')
    for value in (*once.values(), *again.values()):
        if isinstance(value, dict):
            value.pop('_delete_', None)
    assert again == once


def test_backbone_weights_follow_the_backbone():
    base = _base_config()
    lite0 = scaled_config(base, 'lite0')['model']['backbone']
    assert lite0['init_cfg']['checkpoint'].endswith('lite0-0aa007d2.pth')
    # a checkpoint chosen for the same backbone survives a re-scaling
    local = dict(type='Pretrained', checkpoint='lite0.pth')
    base['model']['backbone'].update(arch='lite0', init_cfg=local)
    same = scaled_config(base, 'lite0', image_size=256)['model']['backbone']
    assert same['init_cfg'] == local
    # another backbone gets its own weights
    other = scaled_config(base, 'lite1')['model']['backbone']
    assert other['init_cfg']['checkpoint'].endswith('lite1-bde8b488.pth')
    assert scaled_config(base, 2.5)['model']['backbone']['init_cfg'] is None
