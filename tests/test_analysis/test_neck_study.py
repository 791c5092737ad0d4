"""The neck study's necks, width matching and run configs."""

import pytest
from mmengine.config import Config

from helpers import QUICKSTART
from mmdet_efficientdet.analysis import neck_study as ns
from mmdet_efficientdet.analysis.complexity import count_neck
from mmdet_efficientdet.analysis.study_rules import BASES
from mmdet_efficientdet.analysis.study_runner import run_config

SPEC, FROZEN = BASES[ns.BASE]
SIZES = [16, 8, 4]  # P3-P5 at 128 px


@pytest.fixture(scope='module')
def quickstart():
    return Config.fromfile(QUICKSTART).to_dict()


@pytest.fixture(scope='module')
def bifpn(quickstart):
    cfg = run_config(
        quickstart, SPEC, ns.NECK_SETTINGS['short'], '/d', '/w', 0, FROZEN
    )
    return cfg.model.neck.to_dict()


def test_the_necks_of_the_issue():
    assert list(ns.NECKS) == [
        'fpn',
        'pafpn',
        'bifpn-fast',
        'bifpn-softmax',
        'bifpn-sum',
        'bifpn-x1',
        'bifpn-x2',
        'bifpn-x3',
    ]
    assert (
        ns.NECKS[ns.REFERENCE] == ns.NECKS['bifpn-x3']
    )  # one model, trained once
    assert [ns.NECKS[f'bifpn-x{n}'].num_stages for n in (1, 2, 3)] == [1, 2, 3]


def test_unknown_neck_names_the_choices():
    with pytest.raises(ValueError, match=r"\['bifpn-max'\]; expected .*'fpn'"):
        ns.check_necks(['fpn', 'bifpn-max'])
    with pytest.raises(ValueError, match='at least one neck'):
        ns.check_necks([])
    assert ns.check_necks(['fpn', 'fpn', 'pafpn']) == ['fpn', 'pafpn']


def test_fpn_configs_read_the_bifpn_inputs(bifpn):
    fpn = ns.neck_cfg(bifpn, ns.NECKS['pafpn'], 24)
    assert fpn == dict(
        type='PAFPN',
        in_channels=[40, 112, 320],
        out_channels=24,
        num_outs=3,
        norm_cfg=bifpn['norm_cfg'],
    )
    sum3 = ns.neck_cfg(bifpn, ns.NECKS['bifpn-sum'], 40)
    assert (sum3['fusion'], sum3['num_stages'], sum3['out_channels']) == (
        'sum',
        3,
        40,
    )


@pytest.mark.parametrize('name', ['fpn', 'pafpn', 'bifpn-x1', 'bifpn-sum'])
def test_costs_are_quadratic_in_the_width(bifpn, name):
    def counted(width):
        cfg = ns.neck_cfg(bifpn, ns.NECKS[name], width)
        return ns.Matched(width, *count_neck(cfg, bifpn['in_channels'], SIZES))

    curve = ns._CostCurve(counted)
    for width in (13, 41, 100):
        assert counted(width) == (
            width,
            curve(width, 'params'),
            curve(width, 'macs'),
        )
    if name.startswith('bifpn'):
        # but at a backbone level's width BiFPN needs no projection there
        assert counted(40).macs < curve(40, 'macs')


def test_widths_match_macs_and_state_both(bifpn):
    necks = ['fpn', 'bifpn-x1', ns.REFERENCE]
    matched, target = ns.match_widths(bifpn, necks, 32, 'macs')
    assert matched[ns.REFERENCE].width == 32
    assert target == matched[ns.REFERENCE].macs == 2688512
    for name, m in matched.items():
        assert abs(m.macs / target - 1) < 0.03, name
    # MACs matched, parameters not: FPN is narrower, one BiFPN layer wider
    assert matched['fpn'].width < 32 < matched['bifpn-x1'].width
    assert matched['fpn'].params < matched[ns.REFERENCE].params
    by_params, _ = ns.match_widths(bifpn, ['fpn'], 32, 'params')
    assert (
        abs(by_params['fpn'].params / matched[ns.REFERENCE].params - 1) < 0.05
    )


def test_a_width_that_cannot_match_names_the_valid_ones(bifpn):
    with pytest.raises(ValueError) as error:
        ns.match_widths(bifpn, ['fpn', 'bifpn-x1'], 400)
    message = str(error.value)
    assert "neck 'bifpn-x1' cannot match the macs of bifpn-fast" in message
    assert f'closest width in 8-{ns.MAX_WIDTH}, {ns.MAX_WIDTH}' in message
    assert 'Widths at which every neck of' in message
    assert message.endswith('(by the fitted curves): 8-321')
    with pytest.raises(ValueError, match='integer in 8-512, got 4'):
        ns.match_widths(bifpn, ['fpn'], 4)
    with pytest.raises(ValueError, match=r"'flops'; expected one of"):
        ns.match_widths(bifpn, ['fpn'], 32, 'flops')


def test_run_config_swaps_the_neck(quickstart, bifpn):
    fpn = ns.neck_cfg(bifpn, ns.NECKS['fpn'], 26)
    cfg = run_config(
        quickstart, SPEC, ns.NECK_SETTINGS['short'], '/d', '/w', 1, FROZEN, fpn
    )
    assert cfg.model.neck.type == 'FPN'
    assert cfg.model.bbox_head.in_channels == 26
    assert cfg.model.bbox_head.feat_channels == SPEC.width
    assert cfg.model.backbone.frozen_stages == 7
    assert cfg.randomness.seed == 1


def test_default_setting_shares_the_scaling_study_data():
    from mmdet_efficientdet.analysis.scaling_study import SETTINGS

    default, scaling = ns.NECK_SETTINGS['default'], SETTINGS['default']
    assert len(default.seeds) >= 2
    assert (default.num_train, default.num_val, default.lr) == (
        scaling.num_train,
        scaling.num_val,
        scaling.lr,
    )
