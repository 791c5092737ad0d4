"""Budget parsing and the largest-phi search (synthetic costs)."""

import math

import pytest

from mmdet_efficientdet.analysis.budget import (
    format_cost,
    largest_phi,
    parse_budget,
)
from mmdet_efficientdet.scaling import get_spec


@pytest.mark.parametrize(
    'kind, text, value',
    [
        ('macs', '2.5G', 2.5e9),
        ('macs', '6.1g', 6.1e9),
        ('macs', '2500000000', 2.5e9),
        ('params', '4M', 4e6),
        ('params', '1.5e3K', 1.5e6),
        ('latency', '30ms', 0.03),
        ('latency', '0.5 s', 0.5),
        ('latency', '250us', 250e-6),
        ('train_memory', '2GiB', 2 * 2**30),
        ('train_memory', '512MiB', 512 * 2**20),
        ('train_memory', '3GB', 3e9),
        ('train_memory', '1024', 1024.0),
    ],
)
def test_parse_budget(kind, text, value):
    assert parse_budget(kind, text) == pytest.approx(value)


@pytest.mark.parametrize(
    'kind, text, match',
    [
        ('macs', '2.5X', "unit 'X'"),
        ('macs', 'lots', "'lots'"),
        ('macs', '0G', 'positive'),
        ('macs', '-1G', "'-1G'"),
        ('latency', '30', 'bare number'),
        ('latency', '30G', "unit 'G'"),
        ('train_memory', '2G', "unit 'G'"),
        ('flops', '1G', "'flops'"),
    ],
)
def test_parse_budget_errors_name_the_value(kind, text, match):
    with pytest.raises(ValueError, match=match):
        parse_budget(kind, text)


def test_format_cost():
    assert format_cost('macs', 2.492e9) == '2.492 G'
    assert format_cost('params', 3.88e6) == '3.880 M'
    assert format_cost('latency', 0.0412) == '41.2 ms'
    assert format_cost('train_memory', 3 * 2**30) == '3.000 GiB'


def synthetic_macs(spec):
    """A cost that grows with every dimension, like MACs: monotone within
    the table and within the formulas, not across them."""
    arch = spec.backbone
    if isinstance(arch, str):
        arch = {'b0': 1.0, 'b1': 1.1, 'b2': 1.25, 'b3': 1.45}.get(arch, 2.0)
    else:
        arch = arch['width'] * arch['depth']
    neck = spec.width**2 * (spec.num_stages + spec.head_convs) / 64**2
    return {'macs': spec.image_size**2 * (arch + 0.5 * neck)}


def brute_force(costs, budget, max_phi, step=0.01):
    """The largest phi of the grid whose model fits, by trying them all."""
    phis = [round(i * step, 9) for i in range(int(max_phi / step) + 1)]
    fitting = [p for p in phis if costs(get_spec(p))['macs'] <= budget]
    return max(fitting)


def counted(costs):
    calls = []

    def wrapped(spec):
        calls.append(spec.phi)
        return costs(spec)

    return wrapped, calls


@pytest.mark.parametrize('phi', [0, 0.5, 1, 1.5, 2, 2.7, 3])
def test_search_matches_brute_force(phi):
    """Budgets at, between and just above table entries; the search
    agrees with trying every phi of the grid, in a few evaluations."""
    for budget in (
        synthetic_macs(get_spec(phi))['macs'],
        synthetic_macs(get_spec(phi))['macs'] * 1.02,
    ):
        costs, calls = counted(synthetic_macs)
        result = largest_phi(costs, {'macs': budget}, max_phi=4.0)
        assert result.best.phi == brute_force(synthetic_macs, budget, 4.0)
        assert result.best.costs['macs'] <= budget
        assert result.next_larger.costs['macs'] > budget
        assert result.next_larger.phi > result.best.phi
        assert len(calls) == len(set(calls)) <= 16
        assert not result.capped


def test_table_entry_beyond_failing_formula():
    """D2 is smaller than the formulas just below phi 2: a budget of D2
    skips them and lands on the table."""
    budget = synthetic_macs(get_spec(2))['macs']
    assert synthetic_macs(get_spec(1.99))['macs'] > budget
    result = largest_phi(synthetic_macs, {'macs': budget}, max_phi=4.0)
    assert result.best.phi == 2.0
    assert result.best.source == 'official table'
    assert result.best.spec.name == 'd2'


def test_formula_phi_between_table_entries():
    budget = synthetic_macs(get_spec(1.5))['macs']
    result = largest_phi(synthetic_macs, {'macs': budget}, max_phi=4.0)
    assert 1.5 <= result.best.phi < 2
    assert result.best.source == 'paper formulas'
    assert math.isclose(result.best.phi * 100, round(result.best.phi * 100))


def test_every_budget_must_hold():
    def costs(spec):
        return {'macs': synthetic_macs(spec)['macs'], 'params': spec.phi}

    d3 = synthetic_macs(get_spec(3))['macs']
    result = largest_phi(costs, {'macs': d3, 'params': 1.0}, max_phi=4.0)
    assert result.best.phi == 1.0


def test_budget_below_d0_is_refused():
    d0 = synthetic_macs(get_spec(0))['macs']
    with pytest.raises(ValueError, match=r'D0 \(phi 0\).*MACs'):
        largest_phi(synthetic_macs, {'macs': d0 * 0.9})


def test_budget_above_max_phi_is_capped():
    result = largest_phi(synthetic_macs, {'macs': 1e30}, max_phi=2.5)
    assert result.capped
    assert result.best.phi == 2.5
    assert result.next_larger is None


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(budgets={}), 'at least one budget'),
        (dict(budgets={'flops': 1.0}), "'flops'"),
        (dict(budgets={'macs': 1.0}, step=0), 'step'),
        (dict(budgets={'macs': 1.0}, max_phi=-1), 'max_phi'),
    ],
)
def test_search_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        largest_phi(synthetic_macs, **kwargs)
