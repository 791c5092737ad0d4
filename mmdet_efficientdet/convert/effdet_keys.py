"""effdet's BiFPN and head tensors under this package's names.

effdet (``efficientdet-pytorch``) names the BiFPN by TF's fusion nodes
(``fpn.cell.S.fnode.N``) and the head by repeat (``conv_rep`` /
``bn_rep``); :class:`~..models.BiFPNNeck` and
:class:`~..models.EfficientDetHead` hold the same tensors under the names
below. Only the box prediction's channels change: TF predicts
``(dy, dx, dh, dw)`` per anchor, mmdet's coder reads ``(dx, dy, dw, dh)``.
"""

import re
from typing import Dict, List, Optional

import torch
from torch import Tensor

from ..models.necks import bifpn_nodes

StateDict = Dict[str, Tensor]

# TF (dy, dx, dh, dw) <-> mmdet (dx, dy, dw, dh): a swap within each pair,
# so the same permutation converts both ways.
TF_TO_MMDET_DELTAS = (1, 0, 3, 2)

_SEPARABLE = {
    'conv_dw': 'depthwise_conv.conv',
    'conv_pw': 'pointwise_conv.conv',
}
_FNODE_CONV = dict(_SEPARABLE, bn='pointwise_conv.bn')


def box_channel_order(num_anchors: int = 9) -> Tensor:
    """Box-channel permutation between TF's and mmdet's delta order.

    ``ours = theirs[order]`` and ``theirs = ours[order]``, for weights
    (dim 0) as for outputs (dim 1).

    Example:
        >>> box_channel_order(2).tolist()
        [1, 0, 3, 2, 5, 4, 7, 6]
    """
    order = torch.arange(num_anchors * 4).view(num_anchors, 4)
    return order[:, list(TF_TO_MMDET_DELTAS)].reshape(-1)


def _report(unknown: Optional[List[str]], bad: List[str], what: str) -> None:
    if unknown is not None:
        unknown.extend(bad)
    elif bad:
        raise ValueError(f'not effdet {what} keys: {sorted(bad)}')


def neck_keys_from_effdet(
    state_dict: StateDict,
    num_inputs: int,
    num_levels: int,
    unknown: Optional[List[str]] = None,
) -> StateDict:
    """Rename effdet ``fpn.*`` tensors (prefix removed) to BiFPNNeck's.

    Args:
        state_dict: effdet's BiFPN tensors, e.g. ``cell.0.fnode.3.*``.
        num_inputs: Backbone levels that feed the BiFPN (3: P3-P5).
        num_levels: Output levels (5: P3-P7; 6: P3-P8).
        unknown: Collects keys of no known form; without it such keys
            raise ValueError.

    Returns:
        The tensors under ``extra_convs.*`` and ``stages.*`` names.
    """
    inputs = [node.inputs for node in bifpn_nodes(num_levels)]
    renamed, bad = {}, []
    for key, value in state_dict.items():
        # P6 comes from P5 through a 1x1 conv + BN (effdet's resample '3')
        m = re.fullmatch(r'resample\.(\d+)\.conv\.(.+)', key)
        if m:
            extra = int(m[1]) - num_inputs
            renamed[f'extra_convs.{extra}.{m[2]}'] = value
            continue
        m = re.fullmatch(r'cell\.(\d+)\.fnode\.(\d+)\.(.+)', key)
        if m is None or int(m[2]) >= len(inputs):
            bad.append(key)
            continue
        prefix = f'stages.{m[1]}.nodes.{m[2]}.'
        node, rest = int(m[2]), m[3]
        if rest == 'combine.edge_weights':
            renamed[prefix + 'fusion.weight'] = value
            continue
        # effdet numbers an input projection by the input's index in the
        # growing feature list, we by the node's edge
        m = re.fullmatch(r'combine\.resample\.(\d+)\.conv\.(.+)', rest)
        if m and int(m[1]) in inputs[node]:
            edge = inputs[node].index(int(m[1]))
            renamed[prefix + f'input_convs.{edge}.{m[2]}'] = value
            continue
        m = re.fullmatch(
            r'after_combine\.conv\.(conv_dw|conv_pw|bn)\.(.+)', rest
        )
        if m is None:
            bad.append(key)
            continue
        renamed[prefix + f'conv.{_FNODE_CONV[m[1]]}.{m[2]}'] = value
    _report(unknown, bad, 'BiFPN')
    return renamed


def head_keys_from_effdet(
    state_dict: StateDict,
    tower: str,
    num_anchors: int = 9,
    unknown: Optional[List[str]] = None,
) -> StateDict:
    """Rename effdet ``class_net.*`` / ``box_net.*`` tensors to the head's.

    Args:
        state_dict: One effdet ``HeadNet``'s tensors (prefix removed), in
            its default repeat-first norm layout (``bn_rep.R.L.bn.*``).
        tower: ``'cls'`` for ``class_net``, ``'reg'`` for ``box_net``; the
            box prediction's channels are re-ordered to mmdet's deltas.
        num_anchors: Anchors per location.
        unknown: Collects keys of no known form; without it such keys
            raise ValueError.
    """
    if tower not in ('cls', 'reg'):
        raise ValueError(f"tower must be 'cls' or 'reg', got {tower!r}")
    order = box_channel_order(num_anchors)
    renamed, bad = {}, []
    for key, value in state_dict.items():
        m = re.fullmatch(r'conv_rep\.(\d+)\.(conv_dw|conv_pw)\.(\w+)', key)
        if m:
            half = _SEPARABLE[m[2]]
            renamed[f'{tower}_convs.{m[1]}.{half}.{m[3]}'] = value
            continue
        m = re.fullmatch(r'bn_rep\.(\d+)\.(\d+)\.bn\.(\w+)', key)
        if m:
            renamed[f'{tower}_norms.{m[1]}.{m[2]}.{m[3]}'] = value
            continue
        m = re.fullmatch(r'predict\.(conv_dw|conv_pw)\.(\w+)', key)
        if m is None:
            bad.append(key)
            continue
        if tower == 'reg' and m[1] == 'conv_pw':
            if value.shape[0] != len(order):
                bad.append(f'{key} (expected {len(order)} box channels)')
                continue
            value = value[order]
        renamed[f'conv_{tower}.{_SEPARABLE[m[1]]}.{m[2]}'] = value
    _report(unknown, bad, 'head')
    return renamed
