"""EfficientNet B0-B7 and EfficientNet-Lite0-4 as an mmdet backbone."""

from typing import List, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.layers import InvertedResidual
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import BN_TF, conv_cfg_for
from .efficientnet_arch import (
    ArchSpec,
    decode_stages,
    level_stages,
    resolve_arch,
    stem_channels,
)
from .efficientnet_weights import load_backbone_checkpoint


@MODELS.register_module()
class EfficientNetBackbone(BaseModule):
    """EfficientNet (B0-B7) and EfficientNet-Lite (Lite0-4) trunk.

    Named so as not to collide with mmdet's own ``EfficientNet``. The
    architecture is the B0 block table decoded with the variant's width and
    depth multipliers (see ``efficientnet_arch.py``); the classifier head
    (1x1 conv to 1280 channels, pooling, fc) is not built.

    Args:
        arch (str | dict): ``'b0'``-``'b7'``, ``'lite0'``-``'lite4'``, or
            ``dict(width=..., depth=..., lite=False)`` for a new compound
            coefficient. Defaults to ``'b0'``.
        out_indices (Sequence[int]): Reduction levels to return; level
            ``i`` has stride ``2 ** (i + 1)``, so the default ``(2, 3, 4)``
            gives C3-C5 (strides 8, 16, 32).
        padding (str): ``'same'`` (TF SAME, needed by TF-trained weights)
            or ``'symmetric'`` (PyTorch ``k // 2``). Defaults to ``'same'``.
        norm_cfg (dict): Norm layer config. Defaults to TF's BN (eps 1e-3,
            momentum 0.01).
        act_cfg (dict, optional): Activation; defaults to SiLU (swish), or
            ReLU6 for Lite.
        drop_path_rate (float): Stochastic depth of the last block; block
            ``i`` of ``n`` drops with ``rate * i / n`` as in the official
            code. Defaults to 0.2.
        frozen_stages (int): Freeze the stem (0) and the first
            ``frozen_stages`` block stages; -1 freezes nothing.
        norm_eval (bool): Keep norm layers in eval mode while training.
        with_cp (bool): Gradient checkpointing of every block.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` loads a checkpoint in this module's layout,
            timm's or ``efficientnet_pytorch``'s (converted on load).

    Example:
        >>> import torch
        >>> self = EfficientNetBackbone('b0')
        >>> for out in self(torch.rand(1, 3, 128, 96)):
        ...     print(tuple(out.shape))
        (1, 40, 16, 12)
        (1, 112, 8, 6)
        (1, 320, 4, 3)
    """

    def __init__(
        self,
        arch: Union[str, dict] = 'b0',
        out_indices: Sequence[int] = (2, 3, 4),
        padding: str = 'same',
        norm_cfg: ConfigType = BN_TF,
        act_cfg: Union[dict, None] = None,
        drop_path_rate: float = 0.2,
        frozen_stages: int = -1,
        norm_eval: bool = False,
        with_cp: bool = False,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch: ArchSpec = resolve_arch(arch)
        blocks_per_stage = decode_stages(self.arch)
        self._level_stages = level_stages(blocks_per_stage)
        num_levels = len(self._level_stages)
        out_indices = tuple(out_indices)
        if not out_indices or any(
            i not in range(num_levels) for i in out_indices
        ):
            raise ValueError(
                f'out_indices must be non-empty and in range({num_levels}) '
                f'(reduction levels of strides 2..32), got {out_indices}'
            )
        if not -1 <= frozen_stages <= len(blocks_per_stage):
            raise ValueError(
                f'frozen_stages must be in [-1, '
                f'{len(blocks_per_stage)}], got {frozen_stages}'
            )
        if not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}'
            )
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if act_cfg is None:
            act_cfg = dict(type='ReLU6' if self.arch.lite else 'SiLU')
        conv_cfg = conv_cfg_for(padding)

        self.stem = ConvModule(
            3,
            stem_channels(self.arch),
            3,
            stride=2,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
        )
        # Stages past the last requested level are not built.
        num_stages = self._level_stages[max(out_indices)] + 1
        total = sum(len(b) for b in blocks_per_stage)
        index = 0
        self.stages = nn.ModuleList()
        for blocks in blocks_per_stage[:num_stages]:
            stage = []
            for block in blocks:
                se_cfg = None
                if block.se_channels is not None:
                    # exact: mid / se is an integer for rounded channels
                    se_cfg = dict(
                        channels=block.mid_channels,
                        ratio=block.mid_channels / block.se_channels,
                        act_cfg=(act_cfg, dict(type='Sigmoid')),
                    )
                stage.append(
                    InvertedResidual(
                        block.in_channels,
                        block.out_channels,
                        block.mid_channels,
                        kernel_size=block.kernel_size,
                        stride=block.stride,
                        se_cfg=se_cfg,
                        with_expand_conv=block.mid_channels
                        != block.in_channels,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                        drop_path_rate=drop_path_rate * index / total,
                        with_cp=with_cp,
                    )
                )
                index += 1
            self.stages.append(nn.Sequential(*stage))
        self.out_channels: List[int] = [
            blocks_per_stage[self._level_stages[i]][-1].out_channels
            for i in out_indices
        ]
        self.strides: List[int] = [2 ** (i + 1) for i in out_indices]
        self._freeze_stages()

    @property
    def block_kinds(self) -> List[List[bool]]:
        """Per stage, per block: whether it has a 1x1 expansion conv."""
        return [
            [block.with_expand_conv for block in stage]
            for stage in self.stages
        ]

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_backbone_checkpoint(
                self, cfg['checkpoint'], prefix=cfg.get('prefix')
            )
            self._is_init = True
        else:
            super().init_weights()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        wanted = {self._level_stages[i]: i for i in self.out_indices}
        feats = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in wanted:
                feats[wanted[i]] = x
        return tuple(feats[i] for i in self.out_indices)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.stem, *self.stages[: self.frozen_stages]]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'EfficientNetBackbone':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
