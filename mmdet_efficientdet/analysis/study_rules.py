"""The scaling rules of the small-scale scaling study, as specs.

EfficientNet (Tan & Le, ICML 2019, section 3.3) scales depth by
``alpha ** phi``, width by ``beta ** phi`` and resolution by
``gamma ** phi``, with ``alpha * beta ** 2 * gamma ** 2 ~= 2`` so that
FLOPs grow about ``2 ** phi``; alpha, beta and gamma come from a small grid
search at phi = 1. Scaling one dimension only is the same rule with the
other two coefficients at 1: width ``(1, sqrt 2, 1)``, depth ``(2, 1, 1)``,
resolution ``(1, 1, sqrt 2)``.

Here the rule scales a small EfficientDet: the multipliers apply to the
BiFPN and head width (rounded like EfficientNet channels), to the BiFPN
layers and head convs (rounded to the nearest integer), to the input size
(rounded to a multiple of the largest stride) and, for a backbone trained
from scratch, to the backbone's width and depth multipliers (decoded by the
EfficientNet block table). A frozen ImageNet backbone
(:data:`BASES` ``'frozen-lite0'``) is left as it is: there are no ImageNet
weights for other widths and depths offline. :func:`scale_spec` returns an
:class:`~mmdet_efficientdet.scaling.EfficientDetSpec`, so
:func:`~mmdet_efficientdet.scaling.scaled_config` writes every number.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..models.backbones.efficientnet_arch import (
    decode_stages,
    resolve_arch,
    round_channels,
)
from ..scaling import EfficientDetSpec, get_spec

# FLOPs factor per unit of phi (EfficientNet's constraint).
FLOPS_PER_PHI = 2.0


class Coefficients(NamedTuple):
    """Depth, width and resolution growth per unit of phi."""

    alpha: float
    beta: float
    gamma: float

    @property
    def flops_factor(self) -> float:
        """``alpha * beta ** 2 * gamma ** 2``: FLOPs growth per unit phi."""
        return self.alpha * self.beta**2 * self.gamma**2

    def __str__(self) -> str:
        return f'({self.alpha:.3g}, {self.beta:.3g}, {self.gamma:.3g})'


# One dimension at a time, each doubling FLOPs per unit of phi.
SINGLE_RULES: Dict[str, Coefficients] = {
    'width': Coefficients(1.0, math.sqrt(FLOPS_PER_PHI), 1.0),
    'depth': Coefficients(FLOPS_PER_PHI, 1.0, 1.0),
    'resolution': Coefficients(1.0, 1.0, math.sqrt(FLOPS_PER_PHI)),
}
RULES = ('width', 'depth', 'resolution', 'compound')

# The base models (phi = 0). Both: a 32-wide BiFPN of 3 layers on P3-P5
# (input a multiple of 32, so resolution steps of 25% at 128 px), a head
# of 3 convs, anchors of twice the stride - the shapes (13-64 px at 128 px
# input) fit them - and Lite's ReLU6.
_DETECTOR = dict(
    name='base',
    phi=0.0,
    image_size=128,
    width=32,
    num_stages=3,
    head_convs=3,
    fusion='fast',
    anchor_scale=2.0,
    max_level=5,
    lite=True,
)


class StudyBase(NamedTuple):
    """A base model of the study and what the rules may change.

    Attributes:
        spec (EfficientDetSpec): The model at phi = 0.
        frozen_backbone (bool): The backbone is ImageNet EfficientNet-Lite0
            (the only ImageNet weights available offline), frozen; the
            rules scale the BiFPN, the head and the input. Otherwise the
            backbone is trained from scratch and scaled with the rest.
    """

    spec: EfficientDetSpec
    frozen_backbone: bool


BASES: Dict[str, StudyBase] = {
    'frozen-lite0': StudyBase(
        EfficientDetSpec(backbone='lite0', **_DETECTOR), True
    ),
    # EfficientNet-Lite trunk at half width and depth, from scratch
    'scratch': StudyBase(
        EfficientDetSpec(
            backbone=dict(width=0.5, depth=0.5, lite=True), **_DETECTOR
        ),
        False,
    ),
}


def _round_half_up(value: float) -> int:
    return max(1, math.floor(value + 0.5))


def grid_candidates(
    pairs: Sequence[Tuple[float, float]],
    flops_factor: float = FLOPS_PER_PHI,
) -> List[Coefficients]:
    """(alpha, beta, gamma) for each (alpha, beta), gamma solving the
    FLOPs constraint.

    gamma is ``sqrt(flops_factor / (alpha * beta ** 2))`` rounded to two
    decimals; pairs that leave no room for resolution (gamma < 1) are
    dropped.

    Example:
        >>> grid_candidates([(1.2, 1.1)])
        [Coefficients(alpha=1.2, beta=1.1, gamma=1.17)]
    """
    out = []
    for alpha, beta in pairs:
        if alpha < 1 or beta < 1:
            raise ValueError(
                f'alpha and beta must be >= 1, got {alpha}, {beta}'
            )
        gamma = round(math.sqrt(flops_factor / (alpha * beta**2)), 2)
        if gamma >= 1.0:
            out.append(Coefficients(alpha, beta, gamma))
    return out


# What each dimension of a rule sets: these spec fields and, with width
# and depth, the backbone multiplier of the same name.
DIMENSIONS: Dict[str, Tuple[str, ...]] = {
    'depth': ('num_stages', 'head_convs'),
    'width': ('width',),
    'resolution': ('image_size',),
}


def with_dimensions(
    base: EfficientDetSpec,
    source: EfficientDetSpec,
    dimensions: Sequence[str],
    name: str,
    scale_backbone: bool = True,
) -> EfficientDetSpec:
    """``base`` with the ``dimensions`` (keys of :data:`DIMENSIONS`) of
    ``source``; with ``scale_backbone=False`` the backbone stays
    ``base``'s.

    Example:
        >>> d0, d3 = get_spec('d0'), get_spec('d3')
        >>> describe(with_dimensions(d0, d3, ['depth'], 'd0-depth3'))
        'backbone w1.00 d1.40, BiFPN 64x6, head 4 convs, 512 px'
    """
    fields = {f: getattr(source, f) for d in dimensions for f in DIMENSIONS[d]}
    backbone = {'width', 'depth'} & set(dimensions) if scale_backbone else ()
    if len(backbone) == 2:
        fields['backbone'] = source.backbone
    elif backbone and source.backbone != base.backbone:
        ours = resolve_arch(base.backbone)
        theirs = resolve_arch(source.backbone)
        fields['backbone'] = dict(
            width=(theirs if 'width' in backbone else ours).width,
            depth=(theirs if 'depth' in backbone else ours).depth,
            lite=ours.lite,
        )
    return get_spec(base, name=name, **fields)


def scale_spec(
    base: EfficientDetSpec,
    coefficients: Coefficients,
    phi: float,
    name: Optional[str] = None,
    scale_backbone: bool = True,
) -> EfficientDetSpec:
    """``base`` scaled by ``coefficients ** phi`` (see the module doc);
    with ``scale_backbone=False`` the backbone stays ``base``'s."""
    if phi < 0:
        raise ValueError(f'phi must be >= 0, got {phi}')
    depth, width = coefficients.alpha**phi, coefficients.beta**phi
    resolution = coefficients.gamma**phi
    arch = resolve_arch(base.backbone)
    stride = base.strides[-1]
    scaled = base._replace(
        backbone=dict(
            width=arch.width * width, depth=arch.depth * depth, lite=arch.lite
        ),
        width=round_channels(base.width * width),
        num_stages=_round_half_up(base.num_stages * depth),
        head_convs=_round_half_up(base.head_convs * depth),
        image_size=stride
        * _round_half_up(base.image_size * resolution / stride),
    )
    return with_dimensions(
        base._replace(phi=float(phi)),
        scaled,
        list(DIMENSIONS),
        name or f'{base.name}x{coefficients}^{phi:g}',
        scale_backbone,
    )


def spec_key(spec: EfficientDetSpec) -> Tuple:
    """What makes two specs the same model: the decoded backbone blocks
    and every other field but the name and phi."""
    blocks = tuple(
        tuple(stage) for stage in decode_stages(resolve_arch(spec.backbone))
    )
    fields = spec._replace(name='', phi=None, backbone='')
    return (blocks,) + tuple(fields)


def describe(spec: EfficientDetSpec) -> str:
    """Short text of a spec: backbone, BiFPN, head, input."""
    if isinstance(spec.backbone, str):
        backbone = spec.backbone
    else:
        arch = resolve_arch(spec.backbone)
        backbone = f'w{arch.width:.2f} d{arch.depth:.2f}'
    return (
        f'backbone {backbone}, BiFPN {spec.width}x{spec.num_stages}, '
        f'head {spec.head_convs} convs, {spec.image_size} px'
    )
