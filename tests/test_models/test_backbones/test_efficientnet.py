"""EfficientNetBackbone: sizes, parity with timm, checkpoints, bad input."""

import pytest
import timm
import torch
from mmdet.registry import MODELS
from torch import nn

from mmdet_efficientdet.models.backbones import (
    ARCHS,
    EfficientNetBackbone,
    convert_state_dict,
    decode_stages,
)

# Shared reference, section 2, "backbone" column (timm features_only with
# out_indices (2, 3, 4), i.e. stem and every block, no 1x1 head conv), and
# section 1, backbone output channels P3 / P4 / P5.
GOLDEN = {
    'b0': (3_595_388, [40, 112, 320]),
    'b1': (6_101_024, [40, 112, 320]),
    'b2': (7_202_562, [48, 120, 352]),
    'b3': (10_103_336, [48, 136, 384]),
    'b4': (16_742_216, [56, 160, 448]),
    'b5': (27_288_112, [64, 176, 512]),
    'b6': (39_403_992, [72, 200, 576]),
    'b7': (62_143_440, [80, 224, 640]),
    'lite0': (2_958_848, [40, 112, 320]),
    'lite1': (3_723_520, [40, 112, 320]),
    'lite2': (4_357_952, [48, 120, 352]),
    'lite3': (6_422_016, [48, 136, 384]),
    'lite4': (11_149_568, [56, 160, 448]),
}


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def timm_features(arch: str, **kwargs) -> nn.Module:
    name = f'tf_efficientnet_{arch}'
    return timm.create_model(
        name,
        pretrained=False,
        features_only=True,
        out_indices=(2, 3, 4),
        **kwargs,
    )


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, so that a wrong mapping shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def test_golden_table_covers_every_arch():
    assert sorted(GOLDEN) == sorted(ARCHS)


@pytest.mark.parametrize('arch', sorted(GOLDEN))
def test_param_count_and_channels(arch):
    ours = EfficientNetBackbone(arch)
    count, channels = GOLDEN[arch]
    assert num_params(ours) == count
    assert ours.out_channels == channels
    assert ours.strides == [8, 16, 32]
    reference = timm_features(arch)
    assert num_params(reference) == count
    assert reference.feature_info.channels() == channels


def test_registered_and_built_from_config():
    model = MODELS.build(dict(type='EfficientNetBackbone', arch='b1'))
    assert isinstance(model, EfficientNetBackbone)
    assert model.out_channels == [40, 112, 320]


def test_new_compound_coefficient_from_multipliers():
    # B0 widened by 1.1 and deepened by 1.2 is B2's block shapes.
    custom = EfficientNetBackbone(dict(width=1.1, depth=1.2))
    assert num_params(custom) == num_params(EfficientNetBackbone('b2'))


def test_out_indices_select_levels():
    model = EfficientNetBackbone('b0', out_indices=(0, 1, 3)).eval()
    outs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, 16, 32, 48),
        (1, 24, 16, 24),
        (1, 112, 4, 6),
    ]
    # stages past the last requested level are not built
    assert len(model.stages) == 5


def save_converted_timm(arch, path, seed=0):
    torch.manual_seed(seed)
    reference = timm_features(arch).eval()
    randomise_bn(reference, seed)
    torch.save(reference.state_dict(), path)
    return reference


@pytest.mark.parametrize('arch', ['b0', 'b3', 'lite0'])
def test_features_equal_timm(arch, tmp_path):
    path = str(tmp_path / f'tf_efficientnet_{arch}.pth')
    reference = save_converted_timm(arch, path)
    ours = EfficientNetBackbone(
        arch, init_cfg=dict(type='Pretrained', checkpoint=path)
    )
    ours.init_weights()
    ours.eval()
    torch.manual_seed(1)
    for shape in [(512, 512), (333, 517)]:
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            expected = reference(x)
            got = ours(x)
        assert len(got) == 3
        for e, g in zip(expected, got):
            assert e.shape == g.shape
            torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_symmetric_padding_equals_timm_pytorch_native(tmp_path):
    """``efficientnet_b0`` (no tf_ prefix) pads symmetrically, BN eps 1e-5."""
    torch.manual_seed(0)
    reference = timm.create_model(
        'efficientnet_b0',
        pretrained=False,
        features_only=True,
        out_indices=(2, 3, 4),
    ).eval()
    randomise_bn(reference)
    path = str(tmp_path / 'efficientnet_b0.pth')
    torch.save({'state_dict': reference.state_dict()}, path)
    ours = EfficientNetBackbone(
        'b0',
        padding='symmetric',
        norm_cfg=dict(type='BN', eps=1e-5),
        init_cfg=dict(type='Pretrained', checkpoint=path),
    )
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 160, 224)
    with torch.no_grad():
        for e, g in zip(reference(x), ours(x)):
            torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_same_padding_matters_on_odd_sizes():
    """Guards the parity test: symmetric padding must give other outputs."""
    torch.manual_seed(0)
    same = EfficientNetBackbone('b0', padding='same').eval()
    randomise_bn(same)
    sym = EfficientNetBackbone('b0', padding='symmetric').eval()
    sym.load_state_dict(same.state_dict())
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        diff = (same(x)[0] - sym(x)[0]).abs().max()
    assert diff > 1e-3  # 100x the tolerance of the parity tests


def test_checkpoint_of_our_layout_with_prefix(tmp_path):
    torch.manual_seed(0)
    source = EfficientNetBackbone('lite1')
    path = str(tmp_path / 'detector.pth')
    torch.save(
        {
            'meta': {},
            'state_dict': {
                f'backbone.{k}': v for k, v in source.state_dict().items()
            },
        },
        path,
    )
    target = EfficientNetBackbone(
        'lite1',
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'),
    )
    target.init_weights()
    for k, v in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[k], v)


def test_timm_keys_map_one_to_one():
    stages = decode_stages(ARCHS['b2'])
    full = timm.create_model('tf_efficientnet_b2', pretrained=False)
    backbone, head, unknown = convert_state_dict(full.state_dict(), stages)
    assert unknown == []
    assert set(head) == {
        'conv_head.weight',
        'bn_head.weight',
        'bn_head.bias',
        'bn_head.running_mean',
        'bn_head.running_var',
        'bn_head.num_batches_tracked',
        'fc.weight',
        'fc.bias',
    }
    assert set(backbone) == set(EfficientNetBackbone('b2').state_dict())


# --- training-time switches -------------------------------------------------


def test_frozen_stages_and_norm_eval():
    model = EfficientNetBackbone('b0', frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.stem, model.stages[0], model.stages[1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert not any(
        m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    )
    model = EfficientNetBackbone('b0', frozen_stages=0).train()
    assert not model.stem.training and model.stages[0].training


def test_drop_path_scaled_linearly():
    model = EfficientNetBackbone('b0', drop_path_rate=0.2)
    blocks = [b for stage in model.stages for b in stage]
    rates = [
        b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.0
        for b in blocks
    ]
    # official rule: rate * i / n for block i of n (only residual blocks
    # hold a DropPath; the others have nothing to drop)
    n = len(blocks)
    for i, (block, rate) in enumerate(zip(blocks, rates)):
        if block.with_res_shortcut and i > 0:
            assert rate == pytest.approx(0.2 * i / n)


def test_gradient_checkpointing_same_output_and_grads():
    torch.manual_seed(0)
    plain = EfficientNetBackbone('lite0', drop_path_rate=0.0)
    ckpt = EfficientNetBackbone('lite0', drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    outs = []
    for model in (plain, ckpt):
        model.train()
        y = model(x.clone().requires_grad_())
        sum(o.sum() for o in y).backward()
        outs.append((y, model.stem.conv.weight.grad.clone()))
    for a, b in zip(outs[0][0], outs[1][0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(outs[0][1], outs[1][1])


# --- bad input ---------------------------------------------------------------


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown EfficientNet arch 'b9'"):
        EfficientNetBackbone('b9')


@pytest.mark.parametrize('out_indices', [(2, 5), (), (-1,)])
def test_out_indices_out_of_range(out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        EfficientNetBackbone('b0', out_indices=out_indices)


def test_checkpoint_of_another_variant(tmp_path):
    path = str(tmp_path / 'b1.pth')
    save_converted_timm('b1', path)
    model = EfficientNetBackbone(
        'b0', init_cfg=dict(type='Pretrained', checkpoint=path)
    )
    with pytest.raises(ValueError) as err:
        model.init_weights()
    message = str(err.value)
    assert 'another variant' in message and path in message
    # B1 repeats each stage ceil(1.1 * n) times: its extra blocks (first
    # stages.0.1) are named as unexpected
    assert 'unexpected in checkpoint: stages.0.1.' in message


def test_checkpoint_of_another_width(tmp_path):
    path = str(tmp_path / 'b2.pth')
    save_converted_timm('b2', path)
    model = EfficientNetBackbone(
        'b1', init_cfg=dict(type='Pretrained', checkpoint=path)
    )
    with pytest.raises(
        ValueError, match=r'shape mismatches .*stages\.2\.0\.linear_conv'
    ):
        model.init_weights()


def test_missing_and_truncated_checkpoint(tmp_path):
    model = EfficientNetBackbone(
        'b0',
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth')),
    )
    with pytest.raises(FileNotFoundError, match='no.pth'):
        model.init_weights()
    path = tmp_path / 'cut.pth'
    torch.save(EfficientNetBackbone('b0').state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    model = EfficientNetBackbone(
        'b0', init_cfg=dict(type='Pretrained', checkpoint=str(path))
    )
    with pytest.raises(RuntimeError, match='could not read checkpoint'):
        model.init_weights()


def test_not_an_efficientnet_checkpoint(tmp_path):
    path = str(tmp_path / 'resnet.pth')
    torch.save(nn.Conv2d(3, 8, 3).state_dict(), path)
    model = EfficientNetBackbone(
        'b0', init_cfg=dict(type='Pretrained', checkpoint=path)
    )
    with pytest.raises(ValueError, match='not an EfficientNet checkpoint'):
        model.init_weights()
