"""BiFPNNeck against the official sizes and effdet's TF-equivalent BiFPN."""

import pytest
import torch
from effdet.config import get_efficientdet_config
from effdet.efficientdet import BiFpn
from torch import nn

from mmdet_efficientdet.convert import neck_keys_from_effdet
from mmdet_efficientdet.models.necks import BiFPNNeck

# Shared reference, sections 1 and 2: backbone channels P3-P5, BiFPN
# width, layers, fusion, output levels, and the "BiFPN (+P6/P7 resample)"
# parameter count of effdet's tf_efficientdet_* (TF layout).
VARIANTS = {
    'd0': ([40, 112, 320], 64, 3, 'fast', 5, 196_281),
    'd1': ([40, 112, 320], 88, 4, 'fast', 5, 390_972),
    'd2': ([48, 120, 352], 112, 5, 'fast', 5, 708_159),
    'd3': ([48, 136, 384], 160, 6, 'fast', 5, 1_559_474),
    'd4': ([56, 160, 448], 224, 7, 'fast', 5, 3_349_829),
    'd5': ([64, 176, 512], 288, 7, 'fast', 5, 5_405_893),
    'd6': ([72, 200, 576], 384, 8, 'sum', 5, 10_583_808),
    'd7': ([72, 200, 576], 384, 8, 'sum', 5, 10_583_808),
    'd7x': ([80, 224, 640], 384, 8, 'sum', 6, 13_112_064),
    'lite0': ([40, 112, 320], 64, 3, 'sum', 5, 196_224),
    'lite1': ([40, 112, 320], 88, 4, 'sum', 5, 390_896),
    'lite2': ([48, 120, 352], 112, 5, 'sum', 5, 708_064),
    'lite3': ([48, 136, 384], 160, 6, 'sum', 5, 1_559_360),
    'lite3x': ([48, 136, 384], 200, 6, 'sum', 5, 2_333_200),
    'lite4': ([56, 160, 448], 224, 7, 'sum', 5, 3_349_696),
}


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_neck(variant: str, **overrides) -> BiFPNNeck:
    in_channels, width, stages, fusion, num_outs, _ = VARIANTS[variant]
    act = 'ReLU6' if variant.startswith('lite') else 'SiLU'
    kwargs = dict(
        in_channels=in_channels,
        out_channels=width,
        num_outs=num_outs,
        num_stages=stages,
        fusion=fusion,
        act_cfg=dict(type=act),
    )
    kwargs.update(overrides)
    return BiFPNNeck(**kwargs)


def build_effdet_fpn(variant, image_size, **overrides):
    """effdet's BiFPN alone, plus its input channels and config."""
    config = get_efficientdet_config(f'tf_efficientdet_{variant}')
    config.image_size = tuple(image_size)
    for key, value in overrides.items():
        setattr(config, key, value)
    config.num_levels = config.max_level - config.min_level + 1
    in_channels = VARIANTS[variant][0]
    if config.min_level == 2:  # a P2 input (B0's 24) in front of P3-P5
        in_channels = [24] + in_channels
    feature_info = [dict(num_chs=c) for c in in_channels]
    return BiFpn(config, feature_info), in_channels, config


def feature_sizes(image_size, levels):
    """Sizes of the given levels under SAME stride-2 halving (ceil)."""
    sizes = {0: tuple(image_size)}
    for level in range(1, max(levels) + 1):
        height, width = sizes[level - 1]
        sizes[level] = ((height + 1) // 2, (width + 1) // 2)
    return [sizes[level] for level in levels]


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_param_count_is_the_reference(variant):
    neck = build_neck(variant)
    assert num_params(neck) == VARIANTS[variant][-1]
    effdet_fpn, _, _ = build_effdet_fpn(variant, (64, 64))
    assert num_params(effdet_fpn) == VARIANTS[variant][-1]


def test_conv_bias_false_drops_only_biases():
    tf_layout = build_neck('d0')
    lean = build_neck('d0', conv_bias=False)
    # one bias of 64 per conv in front of a norm: the P6 projection, five
    # per-edge projections of layer one, 8 pointwise convs per layer
    assert num_params(tf_layout) - num_params(lean) == 64 * (1 + 5 + 3 * 8)
    assert not any(
        name.endswith('bias') and '.conv.' in name and 'bn' not in name
        for name, _ in lean.named_parameters()
    )


def randomise(module: nn.Module, seed: int = 0) -> None:
    """Random weights and batch statistics, so every tensor matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            values = torch.rand(tensor.shape, generator=gen)
            if name.endswith(('running_var', 'bn.weight')):
                tensor.copy_(0.5 + values)
            else:
                tensor.copy_(0.2 * (values - 0.5))


@pytest.mark.parametrize(
    'variant, image_size, neck_kwargs, effdet_overrides',
    [
        # D0 at a non-square size that is not a multiple of 128
        ('d0', (333, 517), {}, {}),
        # sum fusion and ReLU6
        ('lite0', (333, 517), {}, {}),
        (
            'd0',
            (256, 200),
            dict(fusion='softmax'),
            dict(fpn_name='bifpn_attn'),
        ),
        # PyTorch padding against effdet's symmetric ('') padding
        ('d0', (333, 517), dict(padding='symmetric'), dict(pad_type='')),
        # P3-P8 at full D7x width, P8 2x2 (below 2 pixels effdet stops
        # pooling a dimension that official TF refuses to resample)
        ('d7x', (300, 260), {}, {}),
        # P2-P6: four inputs, one extra level
        ('d0', (130, 98), {}, dict(min_level=2, max_level=6)),
    ],
)
def test_same_outputs_as_effdet(
    variant, image_size, neck_kwargs, effdet_overrides
):
    effdet_fpn, in_channels, config = build_effdet_fpn(
        variant, image_size, **effdet_overrides
    )
    randomise(effdet_fpn)
    neck = build_neck(
        variant,
        in_channels=in_channels,
        num_outs=config.num_levels,
        **neck_kwargs,
    )
    neck.load_state_dict(
        neck_keys_from_effdet(
            effdet_fpn.state_dict(), len(in_channels), config.num_levels
        ),
        strict=True,
    )
    neck.eval()
    effdet_fpn.eval()

    gen = torch.Generator().manual_seed(1)
    levels = range(config.min_level, config.min_level + len(in_channels))
    inputs = [
        torch.randn(1, channels, *size, generator=gen)
        for channels, size in zip(
            in_channels, feature_sizes(image_size, levels)
        )
    ]
    with torch.no_grad():
        expected = effdet_fpn(list(inputs))
        outputs = neck(tuple(inputs))
    assert len(outputs) == len(expected) == config.num_levels
    for out, ref in zip(outputs, expected):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
