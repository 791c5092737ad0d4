"""The scaling rules of the study, as specs and configs."""

import pytest
from mmengine.config import Config

from helpers import QUICKSTART
from mmdet_efficientdet.analysis.complexity import count
from mmdet_efficientdet.analysis.scaling_study import SETTINGS, run_config
from mmdet_efficientdet.analysis.study_rules import (
    BASES,
    SINGLE_RULES,
    Coefficients,
    grid_candidates,
    scale_spec,
    spec_key,
)

FROZEN = BASES['frozen-lite0'].spec
SCRATCH = BASES['scratch'].spec


@pytest.fixture(scope='module')
def quickstart():
    return Config.fromfile(QUICKSTART).to_dict()


def test_single_rules_double_flops_per_phi():
    for coefficients in SINGLE_RULES.values():
        assert coefficients.flops_factor == pytest.approx(2.0)


def test_grid_candidates_meet_the_constraint():
    grid = grid_candidates([(1.2, 1.1), (1.2, 1.2), (1.4, 1.1)])
    assert Coefficients(1.2, 1.1, 1.17) in grid
    assert len(grid) == 3
    for c in grid:
        assert c.gamma >= 1
        assert c.flops_factor == pytest.approx(2.0, abs=0.05)
    # no room left for resolution: dropped
    assert grid_candidates([(2.0, 1.2)]) == []
    with pytest.raises(ValueError, match='0.9'):
        grid_candidates([(0.9, 1.1)])


def test_each_rule_scales_its_dimension_only():
    width = scale_spec(SCRATCH, SINGLE_RULES['width'], 2)
    assert width.width == 2 * SCRATCH.width
    assert width.backbone['width'] == pytest.approx(1.0)
    assert width.backbone['depth'] == SCRATCH.backbone['depth']
    assert (width.num_stages, width.image_size) == (3, 128)
    depth = scale_spec(SCRATCH, SINGLE_RULES['depth'], 1)
    assert (depth.num_stages, depth.head_convs) == (6, 6)
    assert depth.backbone['depth'] == pytest.approx(1.0)
    assert (depth.width, depth.image_size) == (32, 128)
    resolution = scale_spec(SCRATCH, SINGLE_RULES['resolution'], 1)
    assert resolution.image_size == 192  # 181 rounded to a multiple of 32
    assert spec_key(resolution._replace(image_size=128)) == spec_key(SCRATCH)
    assert spec_key(resolution) != spec_key(SCRATCH)
    with pytest.raises(ValueError, match='-1'):
        scale_spec(SCRATCH, SINGLE_RULES['width'], -1)


def test_frozen_backbone_is_not_scaled():
    for coefficients in SINGLE_RULES.values():
        spec = scale_spec(FROZEN, coefficients, 2, scale_backbone=False)
        assert spec.backbone == 'lite0'
    depth = scale_spec(FROZEN, SINGLE_RULES['depth'], 2, scale_backbone=False)
    assert (depth.num_stages, depth.head_convs) == (12, 12)


@pytest.mark.slow
def test_macs_grow_with_every_rule(quickstart):
    """From scratch every rule at phi 1 costs 1.5-3x the base's MACs
    (rounding and the unscaled stem keep them off 2x); on the frozen
    backbone only resolution scales the backbone's MACs (x 192^2 / 128^2).
    """
    for base, frozen in BASES.values():
        macs = count(_model(quickstart, base, frozen), base.image_size)[1]
        for rule, coefficients in SINGLE_RULES.items():
            spec = scale_spec(base, coefficients, 1, scale_backbone=not frozen)
            model = _model(quickstart, spec, frozen)
            ratio = count(model, spec.image_size)[1] / macs
            if not frozen:
                assert 1.5 < ratio < 3, (rule, ratio)
            elif rule == 'resolution':
                assert ratio == pytest.approx(2.25, rel=0.02)
            else:
                assert 1.0 < ratio < 1.2, (rule, ratio)


def _model(quickstart, spec, frozen):
    return run_config(
        quickstart, spec, SETTINGS['short'], '/d/', '/w/run', 0, frozen
    ).model


def test_run_config(quickstart):
    spec = scale_spec(
        FROZEN, SINGLE_RULES['resolution'], 1, scale_backbone=False
    )
    cfg = run_config(
        quickstart, spec, SETTINGS['short'], '/data/shapes', '/work/run', 3
    )
    backbone = cfg.model.backbone
    assert backbone.init_cfg == quickstart['model']['backbone']['init_cfg']
    assert (backbone.frozen_stages, backbone.norm_eval) == (7, True)
    assert backbone.drop_path_rate == 0
    assert cfg.model.bbox_head.num_classes == 3
    assert cfg.model.neck.num_outs == 3
    assert cfg.model.bbox_head.anchor_generator.strides == [8, 16, 32]
    assert cfg.train_dataloader.dataset.data_root == '/data/shapes/'
    assert cfg.val_evaluator.ann_file == '/data/shapes/annotations/val.json'
    assert cfg.train_cfg.max_epochs == SETTINGS['short'].epochs
    assert cfg.randomness.seed == 3
    # no EMA; the training checks and the fine-tuning load stay
    assert [h.type for h in cfg.custom_hooks] == [
        'NumClassCheckHook',
        'CheckFiniteHook',
        'InputSizeCheckHook',
        'SkipMismatchedWeightsHook',
    ]
    assert cfg.visualizer.name == 'run'
    assert cfg.efficientdet.image_size == 192
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (192, 192)
    assert '_delete_' not in cfg.model
    scratch = run_config(
        quickstart, SCRATCH, SETTINGS['short'], '/d', '/w/run', 0, False
    )
    assert scratch.model.backbone.init_cfg is None
    assert 'frozen_stages' not in scratch.model.backbone


def test_run_config_refuses_bad_settings(quickstart):
    with pytest.raises(ValueError, match='epochs must be >= 2'):
        run_config(
            quickstart,
            FROZEN,
            SETTINGS['short']._replace(epochs=1),
            '/d',
            '/w',
            0,
        )
    with pytest.raises(ValueError, match='needs the weights'):
        run_config(quickstart, SCRATCH, SETTINGS['short'], '/d', '/w', 0)
