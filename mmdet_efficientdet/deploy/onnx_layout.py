"""Exact rewrites that keep onnxruntime's CPU graph in its blocked layout.

onnxruntime's CPU optimiser (level ``ORT_ENABLE_ALL``) runs convolutions in
a channel-blocked layout (NCHWc) and keeps a tensor in it across the ops
that can take it: convs and pools, activations (swish, ReLU; ReLU6 only
fused into the conv before it), ``Add`` / ``Sum`` / ``Mul`` of
same-shaped blocked tensors, ``Concat`` over channels, nearest ``Resize``
by integer scales. Any other op is fed a copy reordered back to NCHW, and
its output is reordered again for the next conv. Three parts of
EfficientDet leave the layout this way:

- weighted BiFPN fusion (``'fast'``, ``'softmax'``): each input is
  multiplied by a constant, a ``Mul`` with a scalar, so the sum and the
  activation after it run in NCHW;
- squeeze-excitation: ``x * s`` broadcasts the ``(N, C, 1, 1)`` gate over
  the map, a ``Mul`` of two shapes;
- Lite's ReLU6 where no conv precedes it (ONNX ``Clip``): in each BiFPN
  node, after the fusion's sum and before the separable conv.

:func:`nchwc_friendly` rewrites them in forms the layout keeps, computing
the same numbers: a constant factor becomes a 1x1 depthwise convolution
whose weight is the factor (``x * w`` either way; onnxruntime then folds
the sum into those convolutions), and the gate is repeated over the map
by nearest upsampling before an elementwise ``Mul``, and the ReLU6 becomes
``relu(6 - relu(6 - x))``, each ``6 - x`` a 1x1 depthwise convolution
(weight -1, bias 6) whose ReLU onnxruntime fuses into it (exact but for
the rounding of ``6 - (6 - x)``, at most half a unit in the last place of
6, 2.4e-7). Lite0@320 has 24 of these ReLU6; with them and the upsampling
(:mod:`.onnx_resize`) rewritten, onnxruntime's graph reorders 16 tensors
out of the blocked layout and 3 back in instead of 37 and 24 (fp32
-2.4% in paired runs, ``docs/deployment.md``). D0@512 on a CPU
(onnxruntime 1.32, one thread, paired runs): -4.5% (gates -3.4%,
fusion -1.3%); the exported graph keeps no reorder into or out of the
blocked layout but for the outputs. In int8 the weighted sums gain
(-2.4%: the weights are constants, no longer computed in the graph) but
the repeated gate costs more than the broadcast (+13%), which
:func:`~.onnx_quantize.quantize_int8` therefore puts back. Lite has
neither weighted fusion nor squeeze-excitation; D-series nodes use swish,
which the layout keeps.
"""

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.layers import SELayer
from torch import Tensor

from ..models.necks.bifpn_layer import FeatureFusion, FusionNode


def _scale_conv(channels: int, factor: float) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
    with torch.no_grad():
        conv.weight.fill_(factor)
    return conv


class ConvWeightedSum(nn.Module):
    """``sum(w_i * x_i)`` with constant ``w_i``, each product a 1x1
    depthwise convolution.

    Args:
        weights (Sequence[float]): One factor per input.
        channels (int): Channels of every input.

    Example:
        >>> fuse = ConvWeightedSum([0.5, 2.0], channels=3)
        >>> fuse([torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2)])[0, :, 0, 0]
        tensor([2.5000, 2.5000, 2.5000], grad_fn=<SelectBackward0>)
    """

    def __init__(self, weights: Sequence[float], channels: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            _scale_conv(channels, float(w)) for w in weights
        )

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        # a new tensor, as FeatureFusion's: the activation after it runs
        # in place
        out = self.scales[0](feats[0])
        for scale, feat in zip(self.scales[1:], feats[1:]):
            out = out + scale(feat)
        return out


@torch.no_grad()
def fusion_weights(fusion: FeatureFusion) -> List[float]:
    """The normalised factors a weighted :class:`FeatureFusion` applies
    (as its forward computes them)."""
    weights = fusion.weight.detach().float()
    if fusion.method == 'fast':
        weights = F.relu(weights)
        weights = weights / (weights.sum() + fusion.eps)
    else:
        weights = weights.softmax(dim=0)
    return weights.tolist()


class BroadcastSE(nn.Module):
    """mmdet's ``SELayer`` with its gate repeated over the map (nearest
    upsampling of the ``1 x 1`` gate) before the product: the same
    numbers, an elementwise ``Mul`` of equal shapes.

    Args:
        se (SELayer): The layer, whose modules are shared.
    """

    def __init__(self, se: SELayer) -> None:
        super().__init__()
        self.global_avgpool = se.global_avgpool
        self.conv1 = se.conv1
        self.conv2 = se.conv2

    def forward(self, x: Tensor) -> Tensor:
        gate = self.conv2(self.conv1(self.global_avgpool(x)))
        # integer scales, as traced: ONNX Resize with constant scales
        size = tuple(int(n) for n in x.shape[-2:])
        return x * F.interpolate(gate, scale_factor=size, mode='nearest')


class ConvReLU6(nn.Module):
    """ReLU6 as ``relu(6 - relu(6 - x))``, ``6 - x`` a 1x1 depthwise
    convolution: the same numbers (up to the rounding of ``6 - (6 - x)``)
    in ops that onnxruntime's blocked layout keeps.

    Args:
        channels (int): Channels of the input.

    Example:
        >>> ConvReLU6(1)(torch.tensor([-1.0, 3.0, 8.0]).view(1, 1, 3, 1))
        tensor([[[[0.],
                  [3.],
                  [6.]]]], grad_fn=<ReluBackward0>)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.six_minus = nn.Conv2d(channels, channels, 1, groups=channels)
        with torch.no_grad():
            self.six_minus.weight.fill_(-1.0)
            self.six_minus.bias.fill_(6.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.six_minus(F.relu(self.six_minus(x))))


def _leading_relu6_channels(parent: nn.Module, name: str) -> Optional[int]:
    """Input channels of ``parent``, a conv module that starts with its
    activation ``name``, a ReLU6 (which then follows no conv to fuse
    into)."""
    if (
        isinstance(parent, ConvModule)
        and name == 'activate'
        and isinstance(parent.activate, nn.ReLU6)
        and parent.order[0] == 'act'
    ):
        return parent.conv.in_channels
    return None


def _fusion_channels(parent: nn.Module) -> Optional[int]:
    """Channels fused by the fusion of ``parent``, a BiFPN node."""
    if isinstance(parent, FusionNode):
        return parent.conv.depthwise_conv.in_channels
    return None


def nchwc_friendly(model: nn.Module) -> Dict[str, int]:
    """Rewrite ``model`` in place as the module docstring says.

    Returns:
        dict: How many weighted fusions (``'fusion'``),
        squeeze-excitation layers (``'se'``) and ReLU6 that follow no conv
        (``'relu6'``) were rewritten.
    """
    counts = dict(fusion=0, se=0, relu6=0)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FeatureFusion) and child.weight is not None:
                channels = _fusion_channels(parent)
                if channels is None:
                    continue
                new = ConvWeightedSum(fusion_weights(child), channels)
                counts['fusion'] += 1
            elif isinstance(child, SELayer):
                new = BroadcastSE(child)
                counts['se'] += 1
            elif _leading_relu6_channels(parent, name) is not None:
                new = ConvReLU6(_leading_relu6_channels(parent, name))
                counts['relu6'] += 1
            else:
                continue
            param = next(parent.parameters())
            parent._modules[name] = new.to(param.device, param.dtype)
    return counts
