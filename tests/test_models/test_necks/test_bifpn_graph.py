"""BiFPN topology: golden node lists against the official graph."""

import pytest
from effdet.config.fpn_config import bifpn_config

from mmdet_efficientdet.models.necks import (
    FusionNodeSpec,
    bifpn_nodes,
    output_indices,
)

# Shared reference, section 3, as (output level, input feature indices);
# the indices count the inputs P3..P7 as 0..4, then the nodes in order:
# P6' <- [P6, P7], P5' <- [P5, P6'], P4' <- [P4, P5'], P3'' <- [P3, P4'],
# P4'' <- [P4, P4', P3''], P5'' <- [P5, P5', P4''], P6'' <- [P6, P6', P5''],
# P7'' <- [P7, P6''].
GOLDEN_P3_P7 = [
    (6, (3, 4)),
    (5, (2, 5)),
    (4, (1, 6)),
    (3, (0, 7)),
    (4, (1, 7, 8)),
    (5, (2, 6, 9)),
    (6, (3, 5, 10)),
    (7, (4, 11)),
]
# The same rules over six levels (P3-P8 of D7x, or P2-P7 shifted by one).
GOLDEN_SIX_LEVELS = [
    (4, (4, 5)),
    (3, (3, 6)),
    (2, (2, 7)),
    (1, (1, 8)),
    (0, (0, 9)),
    (1, (1, 9, 10)),
    (2, (2, 8, 11)),
    (3, (3, 7, 12)),
    (4, (4, 6, 13)),
    (5, (5, 14)),
]


def absolute(nodes, min_level):
    return [(node.level + min_level, node.inputs) for node in nodes]


def test_p3_p7_is_the_official_graph():
    nodes = bifpn_nodes(5)
    assert all(isinstance(node, FusionNodeSpec) for node in nodes)
    assert absolute(nodes, 3) == GOLDEN_P3_P7
    assert output_indices(nodes, 5) == [8, 9, 10, 11, 12]


@pytest.mark.parametrize('min_level', [3, 2])
def test_six_levels(min_level):
    """P3-P8 (D7x) and P2-P7 (two-stage detectors)."""
    nodes = bifpn_nodes(6)
    expected = [(lvl + min_level, ins) for lvl, ins in GOLDEN_SIX_LEVELS]
    assert absolute(nodes, min_level) == expected
    assert output_indices(nodes, 6) == [10, 11, 12, 13, 14, 15]


@pytest.mark.parametrize(
    'min_level, max_level', [(3, 7), (3, 8), (2, 7), (2, 6), (3, 4), (1, 9)]
)
def test_matches_effdet_generator(min_level, max_level):
    """Same nodes as effdet's port of the official generator."""
    official = [
        (node['feat_level'], tuple(node['inputs_offsets']))
        for node in bifpn_config(min_level, max_level).nodes
    ]
    nodes = bifpn_nodes(max_level - min_level + 1)
    assert absolute(nodes, min_level) == official


@pytest.mark.parametrize('num_levels', range(2, 9))
def test_invariants(num_levels):
    nodes = bifpn_nodes(num_levels)
    assert len(nodes) == 2 * (num_levels - 1)
    for k, node in enumerate(nodes):
        # a node only reads features that exist when it runs, of its own
        # level or an adjacent one
        assert all(i < num_levels + k for i in node.inputs)
        levels = [
            i if i < num_levels else nodes[i - num_levels].level
            for i in node.inputs
        ]
        assert all(abs(lvl - node.level) <= 1 for lvl in levels)
        assert len(node.inputs) in (2, 3)
    # the outputs are the last num_levels nodes, finest first
    last = num_levels + len(nodes)
    assert output_indices(nodes, num_levels) == list(
        range(last - num_levels, last)
    )


@pytest.mark.parametrize('num_levels', [1, 0, -1])
def test_too_few_levels(num_levels):
    with pytest.raises(ValueError, match='>= 2 levels'):
        bifpn_nodes(num_levels)
