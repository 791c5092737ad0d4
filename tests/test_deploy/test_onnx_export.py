"""ONNX export: onnxruntime computes what PyTorch computes (1e-4)."""

import copy
import os.path as osp

import onnx
import pytest
import torch
from mmdet.apis import init_detector

from helpers import REPO, coco_config, load_file, with_effdet_weights
from mmdet_efficientdet.deploy import prepare_for_deploy
from mmdet_efficientdet.deploy.onnx_export import (
    DetectorExport,
    compare_with_onnxruntime,
    export_onnx,
)

pytestmark = pytest.mark.slow  # exports ONNX

TOOL = 'tools/deploy/export_onnx.py'


@pytest.mark.parametrize(
    'variant,decode,deploy',
    [('d0', False, False), ('d0', True, True), ('lite0', True, False)],
)
def test_onnxruntime_matches_pytorch(tmp_path, variant, decode, deploy):
    torch.manual_seed(0)
    model = init_detector(coco_config(variant), None, device='cpu')
    size = model.cfg.efficientdet['image_size']
    with_effdet_weights(model, variant, size)
    shape = (1, 3, size, size)
    if deploy:
        prepare_for_deploy(model, shape)
    wrapper = DetectorExport(model, shape, decode=decode).eval()
    path = export_onnx(wrapper, str(tmp_path / f'{variant}.onnx'))

    graph = onnx.load(path)
    assert graph.opset_import[0].version >= 17
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == list(shape)
    ops = {node.op_type for node in graph.graph.node}
    if deploy:
        assert 'BatchNormalization' not in ops

    images = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    diffs = compare_with_onnxruntime(wrapper, path, images)
    assert set(diffs) == set(wrapper.output_names)
    assert max(diffs.values()) <= 1e-4, diffs
    with torch.no_grad():
        first, second = wrapper(images)
    # outputs of a size at which 1e-4 means something
    if decode:  # boxes spread over the image
        assert float(second.std()) > 1
    else:
        assert float(first.std()) > 0.5 and float(second.std()) > 0.5
    num_anchors = sum((-(-size // s)) ** 2 * 9 for s in (8, 16, 32, 64, 128))
    assert first.shape == (1, num_anchors, 80)
    assert second.shape == (1, num_anchors, 4)
    if decode:
        assert 0 <= float(first.min()) and float(first.max()) <= 1
        assert float(second.min()) >= 0 and float(second.max()) <= size


def test_tool_exports_and_checks(tmp_path, capsys):
    out = tmp_path / 'lite0.onnx'
    code = load_file(TOOL).main(
        [coco_config('lite0'), '--out', str(out), '--size', '128', '--deploy']
    )
    assert code == 0 and out.is_file()
    printed = capsys.readouterr().out
    assert 'check passed' in printed
    assert 'input images (1, 3, 128, 128)' in printed


def test_tool_rejects_low_opset(tmp_path):
    with pytest.raises(SystemExit):
        load_file(TOOL).main(
            [
                coco_config('d0'),
                '--out',
                str(tmp_path / 'x.onnx'),
                '--opset',
                '11',
            ]
        )


def test_full_conv_head_exports(tmp_path):
    """The fine-tuning family's head of full convs (use_depthwise=False)
    folds and exports like EfficientDet's: onnxruntime within 1e-4."""
    torch.manual_seed(0)
    config = osp.join(
        REPO, 'configs/finetune/efficientdet_lite0_1xb8-60e_photo-objects.py'
    )
    model = init_detector(config, None, device='cpu')
    head = model.bbox_head
    assert head.use_depthwise is False
    size = model.cfg.efficientdet['image_size']
    shape = (1, 3, size, size)
    prepare_for_deploy(model.eval(), shape)
    wrapper = DetectorExport(model, shape).eval()
    images = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # outputs of a size at which 1e-4 means something
        for conv, out in zip((head.conv_cls, head.conv_reg), wrapper(images)):
            conv.weight.div_(out.std())
            conv.bias.div_(out.std())
    path = export_onnx(wrapper, str(tmp_path / 'full_head.onnx'))
    diffs = compare_with_onnxruntime(wrapper, path, images)
    assert max(diffs.values()) <= 1e-4, diffs
    with torch.no_grad():
        scores, deltas = wrapper(images)
    assert float(scores.std()) > 0.5 and float(deltas.std()) > 0.5
    assert scores.shape[-1] == 1


def test_levels_are_the_heads_maps(tmp_path):
    """levels=True: the head's per-level maps, unflattened; flattened they
    are the raw export's outputs, and onnxruntime agrees within 1e-4."""
    torch.manual_seed(0)
    model = init_detector(coco_config('lite0'), None, device='cpu')
    size = model.cfg.efficientdet['image_size']
    with_effdet_weights(model, 'lite0', size)
    shape = (1, 3, size, size)
    prepare_for_deploy(model, shape)
    raw = DetectorExport(copy.deepcopy(model), shape).eval()
    wrapper = DetectorExport(model, shape, levels=True).eval()
    assert wrapper.output_names == [
        f'{name}_{level}'
        for name in ('cls_logits', 'box_deltas')
        for level in range(5)
    ]
    path = export_onnx(wrapper, str(tmp_path / 'levels.onnx'))
    images = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    diffs = compare_with_onnxruntime(wrapper, path, images)
    assert set(diffs) == set(wrapper.output_names)
    assert max(diffs.values()) <= 1e-4, diffs
    with torch.no_grad():
        maps = wrapper(images)
        logits, deltas = raw(images)
    sizes = [-(-size // stride) for stride in (8, 16, 32, 64, 128)]
    assert [tuple(m.shape) for m in maps] == [
        (1, 9 * channels, s, s) for channels in (80, 4) for s in sizes
    ]
    assert float(maps[0].std()) > 0.5 and float(maps[5].std()) > 0.5
    torch.testing.assert_close(raw.flatten(maps[:5], 80), logits)
    torch.testing.assert_close(raw.flatten(maps[5:], 4), deltas)


def test_levels_tool_writes_its_kind(tmp_path):
    out = tmp_path / 'lite0.onnx'
    code = load_file(TOOL).main(
        [
            coco_config('lite0'),
            '--out',
            str(out),
            '--size',
            '128',
            '--deploy',
            '--levels',
        ]
    )
    assert code == 0
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['outputs'] == '"levels"'
    assert len(model.graph.output) == 10
