"""The EfficientDet configs: sizes, consistency, CPU loss / predict."""

import ast
import glob
import os.path as osp

import effdet
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.config.utils import ConfigParsingError
from torch.utils.flop_counter import FlopCounterMode

from helpers import QUICKSTART, REPO, load_file
from mmdet_efficientdet.scaling import get_spec, spec_as_dict

CONFIG_DIR = osp.join(REPO, 'configs', 'efficientdet')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
# variants whose full-size model takes seconds to count or run: in the
# slow tier only (pytest -m 'not slow' keeps D0-D4 and Lite0-3)
HEAVY = {'d5', 'd6', 'd7', 'd7x', 'lite3x', 'lite4'}
D0 = osp.join(CONFIG_DIR, 'efficientdet_d0_8xb16-300e_coco.py')

# Shared reference, section 2: total parameters (90 classes, TF layout) and
# MACs measured with torch's flop counter (None: not measured there).
REFERENCE = {
    'd0': (3_880_067, 2.492),
    'd1': (6_625_898, 6.003),
    'd2': (8_097_039, 10.83),
    'd3': (12_032_296, 24.57),
    'd4': (20_723_675, 54.58),
    'd5': (33_653_315, None),
    'd6': (51_871_782, None),
    'd7': (51_871_782, None),
    'd7x': (77_147_166, None),
    'lite0': (3_243_470, 0.974),
    'lite1': (4_248_318, 1.967),
    'lite2': (5_252_334, 3.371),
    'lite3': (8_350_862, 7.480),
    'lite3x': (9_280_862, 13.98),
    'lite4': (15_130_894, 20.17),
}
# Paper, table 2: FLOPs (multiply-adds) of the variants the flop counter
# was not run on in the reference.
PAPER_MACS = {'d5': 135, 'd6': 226, 'd7': 325, 'd7x': 410}


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny inputs: a second intra-op thread only adds synchronisation,
    which on a busy 2-core machine costs up to 100x (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


tool = load_file(
    'tools/analysis/efficientdet_complexity.py', name='complexity'
)


def config_id(path):
    return osp.basename(path)[: -len('.py')]


def variant_of(path):
    return osp.basename(path).split('_')[1]


def heavy_slow(paths):
    return [
        pytest.param(p, marks=pytest.mark.slow)
        if variant_of(p) in HEAVY
        else p
        for p in paths
    ]


def test_one_config_per_variant():
    assert sorted(variant_of(p) for p in CONFIGS) == sorted(REFERENCE)


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_leaf_states_only_its_variant(path):
    """`_base_`, the import, and scaled_config with the variant: no numbers."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    base, imported, call = tree.body
    assert isinstance(base, ast.Assign) and base.targets[0].id == '_base_'
    assert isinstance(imported, ast.ImportFrom)
    assert imported.module == 'mmdet_efficientdet.scaling'
    assert ast.unparse(call) == (
        f"globals().update(scaled_config(_base_, '{variant_of(path)}'))"
    )
    numbers = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and not isinstance(node.value, str)
    ]
    assert numbers == []


def effdet_macs(name):
    """MACs of effdet's tf_efficientdet_<name>, same counter, meta device."""
    with torch.device('meta'):
        model = effdet.create_model(
            f'tf_efficientdet_{name}',
            pretrained=False,
            pretrained_backbone=False,
        ).eval()
        inputs = torch.empty(1, 3, *model.config.image_size)
    with FlopCounterMode(display=False) as counter:
        model(inputs)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize('path', heavy_slow(CONFIGS), ids=config_id)
def test_sizes_are_the_reference(path):
    """Total parameters exact; MACs within 2% (FlopCounterMode / 2)."""
    cfg = Config.fromfile(path)
    name = cfg.efficientdet.name
    params, macs = tool.count(cfg.model, tool.input_size(cfg), num_classes=90)
    ref_params, ref_macs = REFERENCE[name]
    assert params == ref_params
    if ref_macs is not None:
        assert macs / 1e9 == pytest.approx(ref_macs, rel=0.02)
    else:
        # not measured in the reference: effdet, counted here, and the paper
        assert macs == pytest.approx(effdet_macs(name), rel=0.02)
        assert macs / 1e9 == pytest.approx(PAPER_MACS[name], rel=0.02)


def _transforms(cfg, type_):
    """Every transform of the type in every pipeline of the config."""
    found = []
    pipelines = [cfg.train_pipeline, cfg.test_pipeline]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipelines.append(cfg[key].dataset.pipeline)
    for pipeline in pipelines:
        found += [t for t in pipeline if t.type == type_]
    return found


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_table_config_and_modules_agree(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    spec = get_spec(variant_of(path))
    assert cfg.efficientdet.to_dict() == spec_as_dict(spec)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    backbone, neck, head = model.backbone, model.neck, model.bbox_head
    # neck in_channels are what the backbone puts out
    assert neck.in_channels == backbone.out_channels == spec.backbone_channels
    assert backbone.strides == [8, 16, 32]
    # one width from the neck through the head
    assert neck.out_channels == head.in_channels == head.feat_channels
    assert head.feat_channels == spec.width
    assert len(neck.stages) == spec.num_stages
    assert len(head.cls_convs) == len(head.reg_convs) == spec.head_convs
    # one pyramid: neck outputs, head norms, anchor levels
    generator = head.prior_generator
    assert neck.num_outs == generator.num_levels == spec.num_levels
    assert [s[0] for s in generator.strides] == spec.strides
    assert all(len(norms) == spec.num_levels for norms in head.cls_norms)
    assert generator.anchor_scale == spec.anchor_scale
    # one image size everywhere
    size = (spec.image_size, spec.image_size)
    assert cfg.model.data_preprocessor.pad_size_divisor == spec.image_size
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    for type_, key in [
        ('RandomResize', 'scale'),
        ('RandomCrop', 'crop_size'),
        ('Resize', 'scale'),
    ]:
        found = _transforms(cfg, type_)
        assert found and all(t[key] == size for t in found)
    # the variant's normalisation and activation
    mean, std = spec.mean_std
    assert cfg.model.data_preprocessor.mean == mean
    assert cfg.model.data_preprocessor.std == std
    act = spec.act_cfg['type']
    assert type(head.act).__name__ == act
    assert cfg.model.neck.act_cfg.type == act


@pytest.mark.parametrize('path', heavy_slow(CONFIGS), ids=config_id)
def test_loss_and_predict_on_cpu(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    # a small input: 64 px instead of the variant's (P7, and D7x's P8, 1x1)
    cfg.model.data_preprocessor.pad_size_divisor = 64
    cfg.model.backbone.init_cfg = None  # no ImageNet download in tests
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = demo_mm_inputs(
        2, [(3, 50, 64), (3, 64, 45)], num_items=[3, 1], num_classes=80
    )
    model.train()
    batch = model.data_preprocessor(data, True)
    assert batch['inputs'].shape == (2, 3, 64, 64)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, False)
        results = model.predict(batch['inputs'], batch['data_samples'])
    assert [len(r.pred_instances) for r in results] == [100, 100]
    assert results[0].pred_instances.labels.max() < 80


NEW_PHI = """\
_base_ = '{d0}'
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 1.5))
"""


def test_new_phi_in_a_few_lines(tmp_path):
    path = tmp_path / 'efficientdet_phi1.5_8xb16-300e_coco.py'
    path.write_text(NEW_PHI.format(d0=D0))
    cfg = Config.fromfile(str(path))
    assert cfg.efficientdet.phi == 1.5
    assert cfg.model.neck.out_channels == 104
    assert cfg.model.neck.num_stages == 5
    assert cfg.model.data_preprocessor.pad_size_divisor == 768
    assert cfg.model.backbone.init_cfg is None  # no ImageNet B1.5
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (768, 768)
    params, macs = tool.count(cfg.model, 768, num_classes=90)
    d1, d2 = REFERENCE['d1'][0], REFERENCE['d2'][0]
    assert d1 < params < 2 * d2
    assert REFERENCE['d1'][1] * 1e9 < macs < REFERENCE['d3'][1] * 1e9


def test_cfg_options_and_dumped_config(tmp_path):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'efficientdet_lite0_8xb16-300e_coco.py')
    )
    cfg.merge_from_dict(
        {'model.bbox_head.num_classes': 3, 'train_dataloader.batch_size': 2}
    )
    dumped = tmp_path / 'dumped.py'
    cfg.dump(str(dumped))
    reloaded = Config.fromfile(str(dumped))
    assert reloaded.model.to_dict() == cfg.model.to_dict()
    assert reloaded.model.bbox_head.num_classes == 3
    assert reloaded.efficientdet.name == 'lite0'
    register_all_modules()
    MODELS.build(reloaded.model)


@pytest.mark.parametrize(
    'call,error,match',
    [
        ("'d9'", ValueError, 'unknown EfficientDet variant'),
        ('-1', ValueError, 'phi must be a finite number >= 0'),
        ("'d0', image_size=700", ValueError, 'not divisible by the largest'),
    ],
)
def test_bad_variant_in_a_config(tmp_path, call, error, match):
    path = tmp_path / 'bad.py'
    path.write_text(NEW_PHI.format(d0=D0).replace('1.5', call))
    with pytest.raises(error, match=match):
        Config.fromfile(str(path))


def test_base_must_come_before_the_import(tmp_path):
    # mmengine reads a config whose first statement imports a package as a
    # pure-Python (lazy) config, which cannot inherit these classic ones
    lines = NEW_PHI.format(d0=D0).splitlines()
    path = tmp_path / 'swapped.py'
    path.write_text('\n'.join([lines[1], lines[0], *lines[2:]]))
    with pytest.raises(ConfigParsingError, match='lazy_import'):
        Config.fromfile(str(path))


@pytest.mark.slow
def test_analysis_tool(tmp_path):
    rows = tool.config_rows([D0], num_classes=90)
    table = tool.markdown(rows).splitlines()
    assert table[0] == '| config | variant | phi | input | params | MACs |'
    assert table[2] == (
        '| efficientdet_d0_8xb16-300e_coco | d0 | 0 | 512 | 3,880,067 | '
        '2.492 G |'
    )
    assert [config_id(p) for p in tool.default_configs()][:2] == [
        'efficientdet_d0_8xb16-300e_coco',
        'efficientdet_d1_8xb16-300e_coco',
    ]
    curves = tool.scaling_curves(max_phi=1, num_classes=90)
    assert set(curves) == set(tool.DIMENSIONS)
    assert len({macs[0] for macs in curves.values()}) == 1  # all D0
    assert curves['compound'][1] > max(
        curves[d][1] for d in ('width', 'depth', 'resolution')
    )
    png = tmp_path / 'scaling.png'
    tool.plot(curves, str(png))
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_former_quickstart_name_is_an_alias():
    """Users' configs inherit the quickstart under its first name."""
    former = osp.join(
        REPO, 'configs', 'quickstart', 'efficientdet-lite0_1xb8-12e_shapes.py'
    )
    assert Config.fromfile(former).to_dict() == (
        Config.fromfile(QUICKSTART).to_dict()
    )


@pytest.mark.parametrize('path', [D0, QUICKSTART], ids=config_id)
def test_tta_flips_at_the_variant_size_before_padding(path):
    """`tools/test.py --tta`: flip / no flip at the variant's input size;
    a flip after padding would mirror the padding into the image."""
    cfg = Config.fromfile(path)
    size = cfg.efficientdet.image_size
    assert cfg.tta_model.type == 'DetTTAModel'
    (aug,) = [t for t in cfg.tta_pipeline if t.type == 'TestTimeAug']
    steps = [[t.type for t in branch] for branch in aug.transforms]
    assert steps[0] == ['Resize']
    assert tuple(aug.transforms[0][0].scale) == (size, size)
    flip = steps.index(['RandomFlip', 'RandomFlip'])
    assert [t.prob for t in aug.transforms[flip]] == [1.0, 0.0]
    assert all(i > flip for i, s in enumerate(steps) if s == ['Pad'])
    pack = aug.transforms[-1][0]
    assert {'flip', 'flip_direction', 'scale_factor'} <= set(pack.meta_keys)
