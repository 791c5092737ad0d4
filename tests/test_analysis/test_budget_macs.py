"""The budget search on real models: MACs and parameters counted on the
meta device, and the config it writes."""

import os.path as osp

import pytest
from mmengine.config import Config

from helpers import REPO, coco_config
from mmdet_efficientdet.analysis.budget import largest_phi
from mmdet_efficientdet.analysis.complexity import count, input_size
from mmdet_efficientdet.analysis.config_file import (
    base_reference,
    variant_literal,
    write_scaled_config,
)
from mmdet_efficientdet.analysis.costs import ModelCosts
from mmdet_efficientdet.scaling import get_spec

D0 = coco_config('d0')
# Shared reference: MACs of D0-D4 with torch's flop counter, 90 classes.
REFERENCE_GMACS = {'d0': 2.492, 'd1': 6.003, 'd2': 10.83, 'd3': 24.57}
# A coarser grid than the tool's 0.01 keeps the counting to seconds; the
# CLI test runs the default.
STEP = 0.05


@pytest.fixture(scope='module')
def costs():
    """MACs and parameters at 90 classes, each spec counted once."""
    model_costs = ModelCosts(
        Config.fromfile(D0).to_dict(), ['macs', 'params'], num_classes=90
    )
    cache = {}

    def cached(spec):
        key = repr(spec._replace(name='', phi=None))
        if key not in cache:
            cache[key] = model_costs(spec)
        return cache[key]

    return cached


# 2.5 G -> D0 runs through the command line in
# tests/test_tools/test_scale_to_budget.py
@pytest.mark.slow
@pytest.mark.parametrize('budget, variant', [(6.1e9, 'd1'), (25e9, 'd3')])
def test_mac_budgets_give_the_official_variants(costs, budget, variant):
    result = largest_phi(
        lambda s: {'macs': costs(s)['macs']}, {'macs': budget}
    )
    best = result.best
    assert best.spec.name == variant
    assert best.source == 'official table'
    assert best.costs['macs'] / 1e9 == pytest.approx(
        REFERENCE_GMACS[variant], rel=0.02
    )
    # the next larger model evaluated is a formula phi just above the
    # table entry, and it is over budget
    after = result.next_larger
    assert after.costs['macs'] > budget
    assert best.phi < after.phi <= best.phi + 1


@pytest.mark.slow
def test_mac_budget_between_table_entries_gives_a_formula_phi(costs):
    """8 G lies between D1 (6.0 G) and D2 (10.8 G): a fractional phi."""
    result = largest_phi(
        lambda s: {'macs': costs(s)['macs']}, {'macs': 8e9}, step=STEP
    )
    assert 1 < result.best.phi < 2
    assert result.best.source == 'paper formulas'
    assert 6.003e9 < result.best.costs['macs'] <= 8e9
    assert result.next_larger.costs['macs'] > 8e9


def test_too_small_mac_budget_is_refused(costs):
    with pytest.raises(
        ValueError, match=r'D0 \(phi 0\), needs MACs 2\.492 G > 1\.000 G'
    ):
        largest_phi(lambda s: {'macs': costs(s)['macs']}, {'macs': 1e9})


def test_params_budget(costs):
    """7 M parameters: D1 has 6.6 M, D2 8.1 M, and the formulas just above
    phi 1 already exceed 7 M."""
    result = largest_phi(
        lambda s: {'params': costs(s)['params']}, {'params': 7e6}, step=STEP
    )
    assert 1 <= result.best.phi < 2
    assert result.best.costs['params'] <= 7e6
    assert result.next_larger.costs['params'] > 7e6


def test_config_literal_and_base_path(tmp_path):
    assert variant_literal(3.0) == "'d3'"
    assert variant_literal(1.37) == '1.37'
    assert variant_literal(8) == '8.0'
    inside = osp.join(REPO, 'work_dirs', 'x', 'cfg.py')
    assert base_reference(D0, inside) == osp.join(
        '..', '..', 'configs', 'efficientdet', osp.basename(D0)
    )
    assert base_reference(D0, '/cfg.py') == D0


@pytest.mark.slow
@pytest.mark.parametrize('phi', [1.37])
def test_written_config_loads_and_fits(tmp_path, costs, phi):
    path = str(tmp_path / 'scaled.py')
    write_scaled_config(path, D0, phi, comment=['a test'], num_classes=90)
    text = open(path).read()
    assert text.splitlines()[1].startswith('_base_ = ')
    cfg = Config.fromfile(path)
    assert cfg.efficientdet.phi == phi
    assert cfg.model.bbox_head.num_classes == 90
    size = input_size(cfg)
    assert size == cfg.efficientdet.image_size
    macs = count(cfg.model, size)[1]
    assert macs == costs(get_spec(phi))['macs']


def test_write_scaled_config_needs_the_base(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        write_scaled_config(str(tmp_path / 'x.py'), 'nowhere.py', 1.0)
