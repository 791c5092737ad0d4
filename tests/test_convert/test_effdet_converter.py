"""effdet checkpoints through the converter: the same network, to 1e-4.

Each case builds an effdet model (pretrained off, so offline), randomises
every tensor that matters - batch-norm statistics, conv biases, fusion
weights - saves its state dict, runs ``tools/model_converters/
effdet_to_mmdet.py`` on it and loads the result into our model from the
variant's converted config (90 classes). Raw outputs of every level and
the final detections must equal effdet's.
"""

import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from effdet import DetBenchPredict, create_model
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from skimage import data as skimage_data
from torch import nn

from helpers import REPO, load_file
from mmdet_efficientdet.convert import box_channel_order, get_effdet_variant

TOOL = osp.join(REPO, 'tools', 'model_converters', 'effdet_to_mmdet.py')
# A multiple of 256, the largest stride of D7x (P8), at a fraction of the
# official input sizes.
SIZE = 256
CASES = [
    'tf_efficientdet_d0',
    'tf_efficientdet_d1',
    'tf_efficientdet_d7x',
    'tf_efficientdet_lite0',
    'efficientdet_d0',
]
TOLERANCE = 1e-4
# smallest batch-norm variance of the randomised models (see _measure)
VAR_FLOOR = 1e-2


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """A second intra-op thread mostly adds contention on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_tool(monkeypatch, *args):
    """The converter's main() in-process (a subprocess costs seconds)."""
    monkeypatch.setattr(sys, 'argv', [TOOL, *map(str, args)])
    return load_file(TOOL).main()


def randomise(model: nn.Module, seed: int, inputs: torch.Tensor) -> None:
    """Random batch-norm affine, conv biases and fusion weights; running
    statistics measured on ``inputs``; predictions scaled to stay within
    8 (logits) and 3 (deltas) on them.

    Uniform random statistics blow D7x's outputs up to 1e7, and statistics
    measured on other noise still leave a random BiFPN's outputs tens of
    times larger on new inputs: scores then saturate at 1, and ties decide
    the order of detections. Measured on the compared inputs (variances
    floored at ``VAR_FLOOR``), every layer stays of order one. Conv
    weights keep their fan-scaled init.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen)

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for module in norms:
            module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
            module.bias.copy_(uniform(module.bias.shape, -0.2, 0.2))
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                module.bias.copy_(uniform(module.bias.shape, -0.2, 0.2))
        for name, param in model.named_parameters():
            if name.endswith('edge_weights'):
                param.copy_(uniform(param.shape, 0.2, 1.5))
        # each norm's statistics are those of its input, in eval mode
        hooks = [m.register_forward_pre_hook(_measure) for m in norms]
        model.eval()
        model(inputs)
        for hook in hooks:
            hook.remove()
        # measured one input at a time, as compared: D7x's 1x1 P8 outputs
        # here were 100x those of the same images inside the batch
        # (measured; cause not found)
        outputs = [model(x[None]) for x in inputs]
        # logits within 8 (float32 sigmoid saturates from 17 on); deltas
        # within 3: mmdet's decoder clamps |dw|, |dh| at log(1000 / 16) =
        # 4.1, effdet's does not
        nets = ((model.class_net, 8.0), (model.box_net, 3.0))
        for i, (net, bound) in enumerate(nets):
            peak = max(out.abs().max() for o in outputs for out in o[i])
            scale = peak / bound
            net.predict.conv_pw.weight.div_(scale)
            net.predict.conv_pw.bias.div_(scale)


def _measure(norm: nn.BatchNorm2d, inputs) -> None:
    norm.running_mean.copy_(inputs[0].mean((0, 2, 3)))
    # D7x's P8 is 1x1 at this size: a channel's variance comes from two
    # values, often nearly equal, and dividing by it amplifies float noise
    # (batch 1 vs 2 kernels, AVX2 vs AVX-512) into outputs 100x the other
    # levels', leaving those at a std of 5e-4 after the rescaling below
    # (measured on an AVX-512 Xeon). A floor keeps every level of order one.
    norm.running_var.copy_(inputs[0].var((0, 2, 3)).clamp_min(VAR_FLOOR))


def build_ours(name: str) -> nn.Module:
    cfg = Config.fromfile(get_effdet_variant(name).config)
    init_default_scope('mmdet')
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def photo(cfg) -> torch.Tensor:
    """skimage's astronaut, resized to SIZE and normalised as configured."""
    image = torch.from_numpy(np.ascontiguousarray(skimage_data.astronaut()))
    image = image.permute(2, 0, 1)[None].float()
    image = F.interpolate(image, (SIZE, SIZE), mode='bilinear')
    preprocessor = cfg.model.data_preprocessor
    mean = torch.tensor(preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocessor.std).view(1, 3, 1, 1)
    return (image - mean) / std


def compared_inputs(name: str) -> dict:
    cfg = Config.fromfile(get_effdet_variant(name).config)
    gen = torch.Generator().manual_seed(1)
    return {
        'photo': photo(cfg),
        'random': torch.randn(1, 3, SIZE, SIZE, generator=gen),
    }


@pytest.fixture(scope='module')
def effdet_models():
    cache = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            torch.manual_seed(0)
            model = create_model(
                name,
                pretrained=False,
                pretrained_backbone=False,
                image_size=(SIZE, SIZE),
            ).eval()
            inputs = torch.cat(list(compared_inputs(name).values()))
            randomise(model, len(cache), inputs)
            cache[name] = model
        return cache[name]

    return get


@pytest.fixture(scope='module')
def effdet_checkpoint(effdet_models, tmp_path_factory):
    def get(name: str) -> str:
        path = tmp_path_factory.getbasetemp() / f'{name}_effdet.pth'
        if not path.exists():
            torch.save(effdet_models(name).state_dict(), path)
        return str(path)

    return get


def max_diffs(ours, theirs, order=None):
    diffs = []
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        a = a if order is None else a[:, order]
        diffs.append((a - b).abs().max().item())
    return diffs


def assert_same_detections(ours, theirs):
    """Each of our detections is one of effdet's (label, score, box),
    order free among equal scores."""
    theirs = theirs[theirs[:, 4] > 0]  # effdet pads with zero rows
    assert len(ours) == len(theirs) > 0
    expected = theirs.clone()
    used = torch.zeros(len(expected), dtype=torch.bool)
    for box, score, label in zip(ours.bboxes, ours.scores, ours.labels):
        close = (
            ~used
            & (expected[:, 5].long() == label + 1)
            & ((expected[:, 4] - score).abs() <= 1e-5)
            & ((expected[:, :4] - box).abs().max(1).values <= 1e-3)
        )
        assert close.any(), (box, score, label)
        used[close.nonzero()[0, 0]] = True


@pytest.mark.slow
@pytest.mark.parametrize('name', CASES)
def test_converted_model_equals_effdet(
    name,
    effdet_models,
    effdet_checkpoint,
    tmp_path,
    monkeypatch,
    record_property,
):
    theirs = effdet_models(name)
    dst = tmp_path / 'converted.pth'
    assert (
        run_tool(monkeypatch, effdet_checkpoint(name), dst, '--variant', name)
        == 0
    )
    ours = build_ours(name)
    load_checkpoint(ours, str(dst), map_location='cpu', strict=True)
    ours.eval()
    assert ours.bbox_head.num_classes == 90

    inputs = compared_inputs(name)
    order = box_channel_order(9)
    bench = DetBenchPredict(theirs)
    img_info = dict(
        img_scale=torch.ones(1), img_size=torch.tensor([[SIZE, SIZE]])
    )
    meta = dict(
        img_shape=(SIZE, SIZE),
        ori_shape=(SIZE, SIZE),
        pad_shape=(SIZE, SIZE),
        batch_input_shape=(SIZE, SIZE),
        scale_factor=(1.0, 1.0),
    )
    for kind, x in inputs.items():
        with torch.no_grad():
            their_cls, their_box = theirs(x)
            our_cls, our_box = ours._forward(x)
            expected = bench(x, img_info=img_info)[0]
            (result,) = ours.predict(x, [DetDataSample(metainfo=meta)])
        levels = len(their_cls)
        assert len(our_cls) == len(our_box) == levels
        assert levels == (6 if name.endswith('d7x') else 5)
        cls_diffs = max_diffs(our_cls, their_cls)
        box_diffs = max_diffs(our_box, their_box, order)
        # figures for the report: pytest --junitxml
        record_property(f'{kind}_cls_max_abs_diff', max(cls_diffs))
        record_property(f'{kind}_box_max_abs_diff', max(box_diffs))
        assert max(cls_diffs) <= TOLERANCE, (kind, cls_diffs)
        assert max(box_diffs) <= TOLERANCE, (kind, box_diffs)
        # the comparison means something: outputs vary, order one
        assert min(o.std() for o in their_cls + their_box) > 1e-3
        assert_same_detections(result.pred_instances, expected)
        record_property(f'{kind}_detections', len(result.pred_instances))


def assert_refused(capsys, dst, *phrases):
    err = capsys.readouterr().err
    for phrase in phrases:
        assert phrase in err, err
    assert 'nothing written' in err
    assert not dst.exists()


def test_checkpoint_of_another_variant(
    effdet_checkpoint, tmp_path, monkeypatch, capsys
):
    src = effdet_checkpoint('tf_efficientdet_d0')
    dst = tmp_path / 'out.pth'
    assert (
        run_tool(monkeypatch, src, dst, '--variant', 'tf_efficientdet_d1') == 1
    )
    assert_refused(
        capsys,
        dst,
        'does not fit effdet variant tf_efficientdet_d1',
        'shape mismatches',
        # B1 has a second block in its first stage
        'missing from checkpoint: ',
        'backbone.stages.0.1.depthwise_conv',
        "looks like one of ['tf_efficientdet_d0', 'tf_efficientdet_d0_ap']",
    )


def test_tf_checkpoint_as_pytorch_native(
    effdet_checkpoint, tmp_path, monkeypatch, capsys
):
    src = effdet_checkpoint('tf_efficientdet_d0')
    dst = tmp_path / 'out.pth'
    assert run_tool(monkeypatch, src, dst, '--variant', 'efficientdet_d0') == 1
    # the TF layout's conv biases in front of norms
    assert_refused(
        capsys,
        dst,
        'unexpected in checkpoint: ',
        'bbox_head.cls_convs.0.pointwise_conv.conv.bias',
    )


def test_missing_and_unknown_keys(
    effdet_models, tmp_path, monkeypatch, capsys
):
    state = effdet_models('tf_efficientdet_d0').state_dict()
    del state['box_net.predict.conv_pw.bias']
    del state['fpn.cell.1.fnode.2.combine.edge_weights']
    del state['backbone.conv_stem.weight']
    state['anchors.boxes'] = torch.zeros(1)
    src, dst = tmp_path / 'tf_efficientdet_d0.pth', tmp_path / 'out.pth'
    torch.save(state, src)
    # the variant comes from the file name
    assert run_tool(monkeypatch, src, dst) == 1
    assert_refused(
        capsys,
        dst,
        'backbone.stem.conv.weight',
        'bbox_head.conv_reg.pointwise_conv.conv.bias',
        'neck.stages.1.nodes.2.fusion.weight',
        'unexpected in checkpoint: anchors.boxes',
    )


def test_truncated_file(effdet_checkpoint, tmp_path, monkeypatch, capsys):
    with open(effdet_checkpoint('tf_efficientdet_lite0'), 'rb') as f:
        payload = f.read()
    src, dst = tmp_path / 'cut.pth', tmp_path / 'out.pth'
    src.write_bytes(payload[: len(payload) // 2])
    args = (src, dst, '--variant', 'tf_efficientdet_lite0')
    assert run_tool(monkeypatch, *args) == 1
    assert_refused(capsys, dst, 'could not read checkpoint', 'truncated')


def test_missing_file_and_unknown_variant(tmp_path, monkeypatch, capsys):
    dst = tmp_path / 'out.pth'
    src = tmp_path / 'tf_efficientdet_d0.pth'
    assert run_tool(monkeypatch, src, dst) == 1
    assert_refused(capsys, dst, 'does not exist')
    assert run_tool(monkeypatch, tmp_path / 'weights.pth', dst) == 2
    assert 'pass --variant' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, src, dst, '--variant', 'tf_efficientdet_d9')
    assert not dst.exists()
