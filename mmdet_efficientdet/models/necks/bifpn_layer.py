"""The parts of a BiFPN layer: fusion, resampling, fusion node, layer.

Structure follows the official EfficientDet (google/automl
``efficientdet/efficientdet_arch.py``) as ported by effdet 0.4.1
(``effdet/efficientdet.py``), whose TF-layout weights these modules load.
"""

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.utils import OptConfigType
from torch import Tensor

from ..layers import add_conv_bias, build_max_pool, conv_cfg_for
from .bifpn_graph import FusionNodeSpec, bifpn_nodes, output_indices

FUSION_METHODS = ('fast', 'softmax', 'sum')
# Paper section 3.3: epsilon of fast normalized fusion "to avoid numerical
# instability"; the official code uses 1e-4.
FUSION_EPS = 1e-4


def check_fusion(method: str) -> str:
    """Return ``method`` if it is a known fusion method, else raise."""
    if method not in FUSION_METHODS:
        raise ValueError(
            f'unknown fusion method {method!r}; expected one of '
            f'{FUSION_METHODS}'
        )
    return method


class FeatureFusion(nn.Module):
    """Fuse same-shaped features, weighting each by a learned scalar.

    Methods (paper section 3.3; official ``weight_method``):

    - ``'fast'``: fast normalized fusion,
      ``sum(relu(w_i) * x_i) / (sum(relu(w_j)) + eps)``;
    - ``'softmax'``: ``sum(softmax(w)_i * x_i)``;
    - ``'sum'``: plain sum, no weights (D6, D7, D7x and Lite).

    The weights start at 1, as in the official code.

    Args:
        num_inputs (int): Number of fused features.
        method (str): ``'fast'``, ``'softmax'`` or ``'sum'``.
        eps (float): Epsilon of fast normalized fusion.

    Example:
        >>> fuse = FeatureFusion(2, 'fast')
        >>> fuse([torch.ones(1, 1, 2, 2), 3 * torch.ones(1, 1, 2, 2)])[0, 0]
        tensor([[1.9999, 1.9999],
                [1.9999, 1.9999]], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self, num_inputs: int, method: str = 'fast', eps: float = FUSION_EPS
    ) -> None:
        super().__init__()
        if num_inputs < 2:
            raise ValueError(f'fusion needs >= 2 inputs, got {num_inputs}')
        self.method = check_fusion(method)
        self.eps = eps
        if method == 'sum':
            self.register_parameter('weight', None)
        else:
            self.weight = nn.Parameter(torch.ones(num_inputs))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        # always a new tensor: the node's activation runs in place on it
        if self.weight is None:
            out = feats[0] + feats[1]
            for feat in feats[2:]:
                out = out + feat
            return out
        weights = self.weight.to(feats[0].dtype)
        if self.method == 'fast':
            weights = F.relu(weights)
            weights = weights / (weights.sum() + self.eps)
        else:
            weights = weights.softmax(dim=0)
        out = feats[0] * weights[0]
        for weight, feat in zip(weights[1:], feats[1:]):
            out = out + weight * feat
        return out

    def extra_repr(self) -> str:
        return f'method={self.method!r}'


def channel_projection(
    in_channels: int,
    out_channels: int,
    conv_bias: bool,
    norm_cfg: OptConfigType,
) -> nn.Module:
    """1x1 conv + norm to ``out_channels``, or identity when they match.

    Official ``resample_feature_map``: a level whose width differs from the
    BiFPN's is projected before it is resampled.
    """
    if in_channels == out_channels:
        return nn.Identity()
    conv = ConvModule(
        in_channels,
        out_channels,
        1,
        bias=norm_cfg is None,
        norm_cfg=norm_cfg,
        act_cfg=None,
    )
    return add_conv_bias(conv) if conv_bias else conv


def resize_to(
    x: Tensor, size: Tuple[int, int], downsample: nn.Module
) -> Tensor:
    """Resample ``x`` to the spatial ``size`` of the node it feeds.

    A coarser target is reached with ``downsample`` (max-pool kernel 3
    stride 2, which halves with ceiling like the backbone's SAME strided
    convs), a finer one by nearest upsampling to the exact size, which on
    odd sizes repeats pixel ``i // 2`` like the official 2x upsampling.
    Feature maps that are not such a halving chain (a backbone that
    floors) are matched by a final nearest resize.
    """
    if x.shape[-2:] == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        x = downsample(x)
        if x.shape[-2:] == size:
            return x
    return F.interpolate(x, size=size, mode='nearest')


class FusionNode(nn.Module):
    """One BiFPN node: project, resample, fuse, then act + separable conv.

    Official node order: inputs whose width differs from the BiFPN's get
    their own 1x1 conv + norm per edge (so a backbone level that feeds two
    nodes is projected twice), every input is resampled to the size of the
    node's level, the fusion sums them, and an activation precedes the 3x3
    depthwise-separable conv whose pointwise conv carries the bias and the
    norm.

    Args:
        spec (FusionNodeSpec): Output level and input indices.
        in_channels (Sequence[int]): Channels of each input of ``spec``.
        out_channels (int): BiFPN width.
        fusion (str): ``'fast'``, ``'softmax'`` or ``'sum'``.
        fusion_eps (float): Epsilon of ``'fast'`` fusion.
        padding (str): ``'same'`` (TF) or ``'symmetric'``.
        conv_bias (bool): Keep conv biases in front of the norms.
        norm_cfg (dict, optional): Norm after each conv.
        act_cfg (dict, optional): Activation before the separable conv.
    """

    def __init__(
        self,
        spec: FusionNodeSpec,
        in_channels: Sequence[int],
        out_channels: int,
        fusion: str,
        fusion_eps: float,
        padding: str,
        conv_bias: bool,
        norm_cfg: OptConfigType,
        act_cfg: OptConfigType,
    ) -> None:
        super().__init__()
        self.level = spec.level
        self.inputs = spec.inputs
        self.input_convs = nn.ModuleList(
            channel_projection(c, out_channels, conv_bias, norm_cfg)
            for c in in_channels
        )
        self.downsample = build_max_pool(padding, 3, 2)
        self.fusion = FeatureFusion(len(spec.inputs), fusion, fusion_eps)
        # the depthwise half runs act -> conv and has no bias; the pointwise
        # half runs conv -> norm
        self.conv = DepthwiseSeparableConvModule(
            out_channels,
            out_channels,
            3,
            padding=1,
            bias=False,
            conv_cfg=conv_cfg_for(padding),
            norm_cfg=None,
            act_cfg=None,
            dw_act_cfg=act_cfg,
            pw_norm_cfg=norm_cfg,
            order=('act', 'conv', 'norm'),
        )
        if conv_bias or norm_cfg is None:
            add_conv_bias(self.conv.pointwise_conv)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        size = feats[self.level].shape[-2:]
        edges = [
            resize_to(conv(feats[i]), size, self.downsample)
            for i, conv in zip(self.inputs, self.input_convs)
        ]
        return self.conv(self.fusion(edges))

    def extra_repr(self) -> str:
        return f'level={self.level}, inputs={self.inputs}'


class BiFPNLayer(nn.Module):
    """One BiFPN layer: the nodes of :func:`bifpn_nodes`, run in order.

    Args:
        in_channels (Sequence[int]): Channels of the layer's inputs,
            finest first; the first layer sees the backbone's.
        out_channels (int): BiFPN width.
        **node_kwargs: ``fusion``, ``fusion_eps``, ``padding``,
            ``conv_bias``, ``norm_cfg`` and ``act_cfg`` of every
            :class:`FusionNode`.
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int, **node_kwargs
    ) -> None:
        super().__init__()
        num_levels = len(in_channels)
        specs = bifpn_nodes(num_levels)
        channels = list(in_channels) + [out_channels] * len(specs)
        self.nodes = nn.ModuleList(
            FusionNode(
                spec,
                [channels[i] for i in spec.inputs],
                out_channels,
                **node_kwargs,
            )
            for spec in specs
        )
        self.out_indices = output_indices(specs, num_levels)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        feats = list(feats)
        for node in self.nodes:
            feats.append(node(feats))
        return [feats[i] for i in self.out_indices]
