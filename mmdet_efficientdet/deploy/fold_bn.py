"""Fold inference-mode batch norms into the convolutions before them.

An eval-mode batch norm is the per-channel affine map
``y = (x - mean) * gamma / sqrt(var + eps) + beta``; after a convolution it
can be absorbed into the convolution's weight and bias (the standard
conv-BN folding used by every inference engine). The conv bias that the TF
layout keeps in front of each norm (``add_conv_bias``) is absorbed with it,
so no redundant bias survives.

Two places hold such pairs:

- every mmcv ``ConvModule`` whose ``order`` runs its conv straight into its
  norm (backbone, BiFPN, resampling);
- the :class:`~mmdet_efficientdet.models.EfficientDetHead` towers, whose
  convs are shared by all levels while each level has its own
  norm: folding gives every level its own copy of the conv, and the head
  becomes a :class:`FoldedEfficientDetHead`, which runs them.
"""

import copy
import functools
from typing import List, Type

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.dense_heads import EfficientDetHead


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, bn: _BatchNorm) -> None:
    """Absorb ``bn`` (inference statistics) into ``conv``, in place."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            f'{type(bn).__name__} tracks no running statistics; only a '
            f'norm with fixed inference statistics can be folded'
        )
    if conv.out_channels != bn.num_features:
        raise ValueError(
            f'cannot fold a norm of {bn.num_features} channels into a '
            f'conv with {conv.out_channels} outputs'
        )
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bias)


def _fold_conv_module(module: ConvModule) -> bool:
    if not (module.with_norm and isinstance(module.norm, _BatchNorm)):
        return False
    order = list(module.order)
    if order.index('norm') != order.index('conv') + 1:
        return False
    fold_bn_into_conv(module.conv, module.norm)
    module.with_norm = False
    setattr(module, module.norm_name, nn.Identity())
    return True


class FoldedEfficientDetHead(EfficientDetHead):
    """An :class:`EfficientDetHead` whose batch norms are folded.

    Repeat ``r`` of a tower has one conv per level, ``{t}_convs.{r}.{l}``,
    level ``l``'s norm folded into it; the norms are identities. Made by
    :func:`fold_batchnorms` from a built head, never from a config.
    """

    def _run_tower(
        self,
        x: Tensor,
        level: int,
        convs: nn.ModuleList,
        norms: nn.ModuleList,
        predict: nn.Module,
    ) -> Tensor:
        for level_convs in convs:
            x = self.act(level_convs[level](x))
        return predict(x)


@functools.lru_cache(maxsize=None)
def _folded_class(cls: Type[EfficientDetHead]) -> type:
    if cls is EfficientDetHead:
        return FoldedEfficientDetHead
    # a subclass keeps its own methods
    return type(f'Folded{cls.__name__}', (FoldedEfficientDetHead, cls), {})


def _fold_head(head: EfficientDetHead) -> int:
    towers = [
        (head.cls_convs, head.cls_norms),
        (head.reg_convs, head.reg_norms),
    ]
    norms: List[nn.Module] = [
        bn for _, tower_norms in towers for n in tower_norms for bn in n
    ]
    if not all(isinstance(bn, _BatchNorm) for bn in norms):
        return 0
    for convs, tower_norms in towers:
        for i, level_norms in enumerate(tower_norms):
            per_level = nn.ModuleList()
            for bn in level_norms:
                conv = copy.deepcopy(convs[i])
                fold_bn_into_conv(head.output_conv(conv), bn)
                per_level.append(conv)
            convs[i] = per_level
            tower_norms[i] = nn.ModuleList(nn.Identity() for _ in level_norms)
    head.__class__ = _folded_class(type(head))
    return len(norms)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold every foldable batch norm of ``model``; return how many.

    Raises:
        RuntimeError: If ``model`` is in training mode (its norms would use
            batch statistics, which no fixed weight can reproduce).
    """
    if model.training:
        raise RuntimeError(
            'fold_batchnorms needs a model in eval mode: call model.eval()'
        )
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, EfficientDetHead):
            folded += _fold_head(module)
        elif isinstance(module, ConvModule):
            folded += _fold_conv_module(module)
    return folded


def count_batchnorms(model: nn.Module) -> int:
    """Number of batch-norm layers left in ``model``."""
    return sum(isinstance(m, _BatchNorm) for m in model.modules())
