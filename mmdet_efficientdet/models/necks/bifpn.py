"""BiFPN (Tan, Pang, Le, "EfficientDet", CVPR 2020) as a general mmdet neck."""

from typing import List, Sequence, Tuple

import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ..layers import BN_TF, build_max_pool, check_padding
from .bifpn_layer import (
    FUSION_EPS,
    BiFPNLayer,
    channel_projection,
    check_fusion,
)


@MODELS.register_module()
class BiFPNNeck(BaseModule):
    """Bidirectional feature pyramid over any number of levels.

    Named so as not to collide with the ``BiFPN`` of mmdet's
    ``projects/EfficientDet``. Levels beyond the inputs are made the
    official way: the coarsest input is projected to ``out_channels`` by a
    1x1 conv + norm (when its width differs), then each extra level is a
    max-pool (kernel 3, stride 2) of the one before - P6/P7 on top of
    P3-P5 for EfficientDet D0-D7, P6-P8 for D7x, P6 on top of C2-C5 for
    two-stage detectors. Then ``num_stages`` layers of fusion nodes, all
    with the graph of :func:`bifpn_nodes`, run one after another; only the
    first layer sees the backbone's widths, projected per edge.

    Each node resamples its inputs to the actual size of its level (any
    input size works, square or not), so ``num_outs`` maps of
    ``out_channels`` come out, finest first, with the inputs' sizes and the
    pooled sizes above them.

    State-dict keys (public API: weight converters map onto them):
    ``extra_convs.{i}.{conv,bn}.*`` for projected extra levels,
    ``stages.{s}.nodes.{n}.input_convs.{e}.{conv,bn}.*`` for the per-edge
    projections of the first layer, ``stages.{s}.nodes.{n}.fusion.weight``
    (absent for ``'sum'``) and
    ``stages.{s}.nodes.{n}.conv.{depthwise_conv.conv,pointwise_conv.conv,
    pointwise_conv.bn}.*``. With GroupNorm ``bn`` reads ``gn``.

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels,
            finest first (at least two), e.g. ``[40, 112, 320]``.
        out_channels (int): BiFPN width.
        num_outs (int): Output levels, inputs plus extra levels.
            Defaults to 5 (P3-P7 from P3-P5).
        num_stages (int): Repeated BiFPN layers. Defaults to 3.
        fusion (str): ``'fast'`` (fast normalized), ``'softmax'`` or
            ``'sum'``. Defaults to ``'fast'``.
        padding (str): ``'same'`` (TF SAME, needed by TF-trained weights)
            or ``'symmetric'`` for the 3x3 convs and the max-pools.
            Defaults to ``'same'``.
        conv_bias (bool): Keep a bias on convs in front of a norm, as TF
            checkpoints do; ``False`` drops the redundant parameters.
            Defaults to True.
        norm_cfg (dict): Norm after every conv. Defaults to TF's BN
            (eps 1e-3, momentum 0.01); SyncBN or GN work as well.
        act_cfg (dict): Activation in front of each node's separable conv.
            Defaults to SiLU (swish); ReLU6 for EfficientDet-Lite.
        with_cp (bool): Gradient checkpointing of each layer while
            training. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None (mmcv's ``ConvModule`` init; fusion weights
            start at 1).
        fusion_eps (float): Epsilon of ``'fast'`` fusion. Defaults to 1e-4.

    Example:
        >>> import torch
        >>> self = BiFPNNeck([40, 112, 320], 64, num_outs=5).eval()
        >>> inputs = (torch.rand(1, 40, 42, 65), torch.rand(1, 112, 21, 33),
        ...           torch.rand(1, 320, 11, 17))
        >>> for out in self(inputs):
        ...     print(tuple(out.shape))
        (1, 64, 42, 65)
        (1, 64, 21, 33)
        (1, 64, 11, 17)
        (1, 64, 6, 9)
        (1, 64, 3, 5)
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int = 5,
        num_stages: int = 3,
        fusion: str = 'fast',
        padding: str = 'same',
        conv_bias: bool = True,
        norm_cfg: ConfigType = BN_TF,
        act_cfg: ConfigType = dict(type='SiLU'),
        with_cp: bool = False,
        init_cfg: OptMultiConfig = None,
        fusion_eps: float = FUSION_EPS,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        _check_levels(in_channels, num_outs, num_stages)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.num_stages = num_stages
        self.with_cp = with_cp

        # official: only the first extra level can need a projection; later
        # ones pool a map that is already out_channels wide. One pool per
        # level (they hold no weights): each sees one size, so deployment
        # can fix its padding (mmdet_efficientdet.deploy)
        self.extra_convs = nn.ModuleList()
        self.extra_pools = nn.ModuleList()
        channels = in_channels[-1]
        for _ in range(num_outs - len(in_channels)):
            self.extra_convs.append(
                channel_projection(channels, out_channels, conv_bias, norm_cfg)
            )
            self.extra_pools.append(
                build_max_pool(check_padding(padding), 3, 2)
            )
            channels = out_channels

        node_kwargs = dict(
            fusion=check_fusion(fusion),
            fusion_eps=fusion_eps,
            padding=padding,
            conv_bias=conv_bias,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
        )
        level_channels = in_channels + [out_channels] * len(self.extra_convs)
        self.stages = nn.ModuleList()
        for _ in range(num_stages):
            self.stages.append(
                BiFPNLayer(level_channels, out_channels, **node_kwargs)
            )
            level_channels = [out_channels] * num_outs

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """Fuse the backbone levels (finest first) into ``num_outs`` maps."""
        self._check_inputs(inputs)
        feats = list(inputs)
        for conv, pool in zip(self.extra_convs, self.extra_pools):
            feats.append(pool(conv(feats[-1])))
        for stage in self.stages:
            if (
                self.with_cp
                and self.training
                and any(f.requires_grad for f in feats)
            ):
                feats = list(
                    checkpoint(_run_tuple, stage, *feats, use_reentrant=False)
                )
            else:
                feats = stage(feats)
        return tuple(feats)

    def _check_inputs(self, inputs: Sequence[Tensor]) -> None:
        channels = [x.shape[1] for x in inputs]
        if channels != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} was built for {len(self.in_channels)}'
                f' inputs of {self.in_channels} channels (in_channels), got '
                f'{len(channels)} of {channels}'
            )


def _check_levels(
    in_channels: List[int], num_outs: int, num_stages: int
) -> None:
    if len(in_channels) < 2:
        raise ValueError(
            f'a BiFPN fuses >= 2 input levels, got in_channels={in_channels}'
        )
    if num_outs < len(in_channels):
        raise ValueError(
            f'num_outs ({num_outs}) must be >= the number of '
            f'input levels ({len(in_channels)})'
        )
    if num_stages < 1:
        raise ValueError(f'num_stages must be >= 1, got {num_stages}')


def _run_tuple(stage: BiFPNLayer, *feats: Tensor) -> Tuple[Tensor, ...]:
    # checkpoint() passes tensors as positional arguments
    return tuple(stage(feats))
