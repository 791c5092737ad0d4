"""The BiFPN topology as data: a list of fusion nodes per layer.

Same graph as the official ``bifpn`` config (google/automl
``efficientdet/keras/fpn_configs.py``, ported as effdet's
``bifpn_config``), generated for any number of levels instead of a fixed
P3-P7.
"""

from typing import List, NamedTuple, Sequence, Tuple


class FusionNodeSpec(NamedTuple):
    """One fusion node of a BiFPN layer.

    Attributes:
        level (int): Pyramid level the node outputs, 0 being the finest
            level of the layer's inputs.
        inputs (tuple[int]): Features the node fuses, as indices into the
            layer's running feature list: ``0 .. num_levels - 1`` are the
            layer's inputs (finest first), ``num_levels + k`` is the output
            of node ``k``.
    """

    level: int
    inputs: Tuple[int, ...]


def bifpn_nodes(num_levels: int) -> List[FusionNodeSpec]:
    """Fusion nodes of one BiFPN layer over ``num_levels`` levels.

    A top-down pass from the second-coarsest level to the finest fuses each
    level's latest feature with the latest one a level coarser; a bottom-up
    pass from the second level to the coarsest fuses *every* feature of the
    level so far (input, top-down node) with the latest one a level finer.
    The finest top-down node and the bottom-up nodes are the outputs. For
    P3-P7, with the feature indices in brackets::

        P7 [4] ---------------------------------> P7 [12]
          |                                          ^
          v                                          |
        P6 [3] ---------> P6 [5] ---------------> P6 [11]
                            |                        ^
                            v                        |
        P5 [2] ---------> P5 [6] ---------------> P5 [10]
                            |                        ^
                            v                        |
        P4 [1] ---------> P4 [7] ---------------> P4 [9]
                            |                        ^
                            v                        |
        P3 [0] ---------------------------------> P3 [8]

    A horizontal arrow joins features of one level; the middle levels'
    inputs also reach their bottom-up nodes (long skip edges, not drawn):
    ``[9] <- [1, 7, 8]``, ``[10] <- [2, 6, 9]``, ``[11] <- [3, 5, 10]``.

    Example:
        >>> for node in bifpn_nodes(3):
        ...     print(node)
        FusionNodeSpec(level=1, inputs=(1, 2))
        FusionNodeSpec(level=0, inputs=(0, 3))
        FusionNodeSpec(level=1, inputs=(1, 3, 4))
        FusionNodeSpec(level=2, inputs=(2, 5))
    """
    if num_levels < 2:
        raise ValueError(f'a BiFPN needs >= 2 levels, got {num_levels}')
    # every feature of each level so far, oldest first
    level_feats = [[level] for level in range(num_levels)]
    nodes = []

    def add(level: int, inputs: Sequence[int]) -> None:
        nodes.append(FusionNodeSpec(level, tuple(inputs)))
        level_feats[level].append(num_levels + len(nodes) - 1)

    for level in range(num_levels - 2, -1, -1):  # top-down
        add(level, [level_feats[level][-1], level_feats[level + 1][-1]])
    for level in range(1, num_levels):  # bottom-up
        add(level, level_feats[level] + [level_feats[level - 1][-1]])
    return nodes


def output_indices(
    nodes: Sequence[FusionNodeSpec], num_levels: int
) -> List[int]:
    """Index of the last feature of each level, finest first.

    Example:
        >>> output_indices(bifpn_nodes(5), 5)
        [8, 9, 10, 11, 12]
    """
    last = list(range(num_levels))
    for k, node in enumerate(nodes):
        last[node.level] = num_levels + k
    return last
