"""EfficientDet compound scaling: one coefficient decides the whole model.

The official table (:data:`OFFICIAL`, google/automl ``hparams_config.py``)
is the truth for D0-D7, D7x and Lite0-4. It departs from the paper's
formulas in several places (BiFPN width of D2, D4 and D7, depth and input
size of D5-D7, D7 keeping B6), and no single rounding rule reproduces it.
Any other compound coefficient - fractional, or above 7 - follows the
paper's formulas (EfficientDet section 4.2, equations 1-3) and EfficientNet's
compound rule for the backbone (:func:`compound_spec`).

:func:`scaled_config` writes a spec into an mmdet config; every config in
``configs/efficientdet/`` calls it with its variant and states nothing else
that the variant decides.
"""

import copy
import math
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from .models.backbones.efficientnet_arch import (
    decode_stages,
    level_stages,
    resolve_arch,
    round_channels,
)
from .models.necks.bifpn_layer import FUSION_METHODS

# EfficientNet compound scaling (Tan & Le, ICML 2019, section 3.3): depth
# alpha ** phi, width beta ** phi, resolution gamma ** phi, found by grid
# search at phi = 1 under alpha * beta ** 2 * gamma ** 2 ~= 2.
ALPHA = 1.2
BETA = 1.1
GAMMA = 1.15

# EfficientDet (Tan, Pang & Le, CVPR 2020) equations 1-3.
BIFPN_BASE_WIDTH = 64
BIFPN_WIDTH_BASE = 1.35  # chosen by grid search over {1.2, ..., 1.5}
BIFPN_BASE_DEPTH = 3
HEAD_BASE_DEPTH = 3
BASE_IMAGE_SIZE = 512
IMAGE_SIZE_STEP = 128

MIN_LEVEL = 3  # P3, stride 8: the finest level every variant predicts on
BACKBONE_OUT_INDICES = (2, 3, 4)  # C3-C5 of EfficientNetBackbone

# Input normalisation, RGB: ImageNet statistics for the EfficientNet
# backbones, the official 127 / 128 for EfficientDet-Lite.
IMAGENET_MEAN_STD = ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
LITE_MEAN_STD = ([127.0] * 3, [128.0] * 3)

# ImageNet weights the official training starts from: the AutoAugment
# EfficientNets ("ckptsaug") and the EfficientNet-Lites, as released in
# timm's layout (timm 1.0 pretrained cfgs ``tf_efficientnet_b*.aa_in1k``
# and ``tf_efficientnet_lite*.in1k``); EfficientNetBackbone converts them on
# load. A backbone off the table has none.
_TIMM = (
    'https://github.com/{}/pytorch-image-models/releases/download/'
    'v0.1-weights/tf_efficientnet_{}.pth'
)
IMAGENET_CHECKPOINTS = {
    'b0': _TIMM.format('rwightman', 'b0_aa-827b6e33'),
    'b1': _TIMM.format('rwightman', 'b1_aa-ea7a6ee0'),
    'b2': _TIMM.format('rwightman', 'b2_aa-60c94f97'),
    'b3': _TIMM.format('rwightman', 'b3_aa-84b4657e'),
    'b4': _TIMM.format('rwightman', 'b4_aa-818f208c'),
    'b5': _TIMM.format('huggingface', 'b5_aa-99018a74'),
    'b6': _TIMM.format('rwightman', 'b6_aa-80ba17e4'),
    'b7': _TIMM.format('huggingface', 'b7_aa-076e3472'),
    'lite0': _TIMM.format('rwightman', 'lite0-0aa007d2'),
    'lite1': _TIMM.format('rwightman', 'lite1-bde8b488'),
    'lite2': _TIMM.format('rwightman', 'lite2-dcccb7df'),
    'lite3': _TIMM.format('rwightman', 'lite3-b733e338'),
    'lite4': _TIMM.format('rwightman', 'lite4-741542c3'),
}

# Stochastic depth of the backbone's last block: the official code turns it
# off for B0 (efficientdet_arch.build_backbone), effdet for Lite0.
DROP_PATH_RATE = 0.2
NO_DROP_PATH = ('b0', 'lite0')


class EfficientDetSpec(NamedTuple):
    """Everything the compound coefficient decides for one model.

    Attributes:
        name (str): ``'d0'`` ... ``'d7x'``, ``'lite0'`` ... ``'lite4'``, or
            ``'phi<value>'`` for a coefficient off the table.
        phi (float, optional): Compound coefficient; None for D7x and Lite,
            which the official code defines by hand.
        image_size (int): Square input size.
        backbone (str | dict): ``arch`` of
            :class:`~mmdet_efficientdet.models.EfficientNetBackbone`.
        width (int): BiFPN and head width.
        num_stages (int): BiFPN layers.
        head_convs (int): Separable convs of each head tower.
        fusion (str): BiFPN fusion, ``'fast'``, ``'softmax'`` or ``'sum'``.
        anchor_scale (float): Anchor size over stride at octave scale 1.
        max_level (int): Coarsest pyramid level (7: P3-P7; 8: P3-P8).
        lite (bool): EfficientDet-Lite: ReLU6 everywhere, 127/128 input
            normalisation.
    """

    name: str
    phi: Optional[float]
    image_size: int
    backbone: Union[str, dict]
    width: int
    num_stages: int
    head_convs: int
    fusion: str
    anchor_scale: float
    max_level: int = 7
    lite: bool = False

    @property
    def strides(self) -> List[int]:
        """Strides of the predicted levels, P3 first."""
        return [2**level for level in range(MIN_LEVEL, self.max_level + 1)]

    @property
    def num_levels(self) -> int:
        return self.max_level - MIN_LEVEL + 1

    @property
    def backbone_channels(self) -> List[int]:
        """Channels of the backbone's C3-C5, which feed the BiFPN."""
        stages = decode_stages(resolve_arch(self.backbone))
        levels = level_stages(stages)
        return [
            stages[levels[i]][-1].out_channels for i in BACKBONE_OUT_INDICES
        ]

    @property
    def act_cfg(self) -> dict:
        return dict(type='ReLU6' if self.lite else 'SiLU')

    @property
    def mean_std(self) -> Tuple[List[float], List[float]]:
        return LITE_MEAN_STD if self.lite else IMAGENET_MEAN_STD

    @property
    def backbone_init_cfg(self) -> Optional[dict]:
        """ImageNet weights of the backbone, None off the table."""
        if isinstance(self.backbone, str):
            return dict(
                type='Pretrained',
                checkpoint=IMAGENET_CHECKPOINTS[self.backbone],
            )
        return None

    @property
    def drop_path_rate(self) -> float:
        if isinstance(self.backbone, str) and self.backbone in NO_DROP_PATH:
            return 0.0
        return DROP_PATH_RATE


# The official table (reference section 1); columns: name, phi, input,
# backbone, BiFPN width, BiFPN layers, head convs, fusion, anchor scale.
_S = EfficientDetSpec
OFFICIAL: Dict[str, EfficientDetSpec] = {
    s.name: s
    for s in (
        _S('d0', 0, 512, 'b0', 64, 3, 3, 'fast', 4.0),
        _S('d1', 1, 640, 'b1', 88, 4, 3, 'fast', 4.0),
        _S('d2', 2, 768, 'b2', 112, 5, 3, 'fast', 4.0),
        _S('d3', 3, 896, 'b3', 160, 6, 4, 'fast', 4.0),
        _S('d4', 4, 1024, 'b4', 224, 7, 4, 'fast', 4.0),
        _S('d5', 5, 1280, 'b5', 288, 7, 4, 'fast', 4.0),
        _S('d6', 6, 1280, 'b6', 384, 8, 5, 'sum', 4.0),
        _S('d7', 7, 1536, 'b6', 384, 8, 5, 'sum', 5.0),
        _S('d7x', None, 1536, 'b7', 384, 8, 5, 'sum', 4.0, max_level=8),
        _S('lite0', None, 320, 'lite0', 64, 3, 3, 'sum', 3.0, lite=True),
        _S('lite1', None, 384, 'lite1', 88, 4, 3, 'sum', 3.0, lite=True),
        _S('lite2', None, 448, 'lite2', 112, 5, 3, 'sum', 3.0, lite=True),
        _S('lite3', None, 512, 'lite3', 160, 6, 4, 'sum', 4.0, lite=True),
        _S('lite3x', None, 640, 'lite3', 200, 6, 4, 'sum', 3.0, lite=True),
        _S('lite4', None, 640, 'lite4', 224, 7, 4, 'sum', 4.0, lite=True),
    )
}
# D0-D7 by compound coefficient.
OFFICIAL_BY_PHI: Dict[int, EfficientDetSpec] = {
    int(s.phi): s for s in OFFICIAL.values() if s.phi is not None
}


def _check_phi(phi: Any) -> float:
    if isinstance(phi, bool) or not isinstance(phi, (int, float)):
        raise TypeError(
            f'compound coefficient phi must be a number, got {phi!r}'
        )
    if not math.isfinite(phi) or phi < 0:
        raise ValueError(
            f'compound coefficient phi must be a finite number '
            f'>= 0, got {phi!r}'
        )
    return float(phi)


def efficientnet_multipliers(phi: float) -> Tuple[float, float, float]:
    """EfficientNet's (width, depth, resolution) multipliers at ``phi``.

    The resolution multiplier is not used by a detector: its input size
    follows EfficientDet's own rule (:func:`compound_spec`).

    Example:
        >>> [round(m, 4) for m in efficientnet_multipliers(2)]
        [1.21, 1.44, 1.3225]
    """
    phi = _check_phi(phi)
    return BETA**phi, ALPHA**phi, GAMMA**phi


def compound_spec(phi: float, max_level: int = 7) -> EfficientDetSpec:
    """The paper's formulas at any ``phi`` (the table ignored).

    - BiFPN width ``64 * 1.35 ** phi``, rounded like EfficientNet channels
      (to a multiple of 8, never below 90%);
    - BiFPN layers ``3 + phi``, rounded up like EfficientNet's repeats;
    - head convs ``3 + floor(phi / 3)``;
    - input ``512 + 128 * phi``, rounded to the nearest multiple of the
      largest stride (``2 ** max_level``) so that every level tiles it;
    - backbone width ``1.1 ** phi`` and depth ``1.2 ** phi`` (EfficientNet's
      beta and alpha);
    - fast-normalized fusion below phi 6, plain sum from 6 on, as in the
      table; anchor scale 4.

    Example:
        >>> spec = compound_spec(1.5)
        >>> spec.image_size, spec.width, spec.num_stages, spec.head_convs
        (768, 104, 5, 3)
    """
    phi = _check_phi(phi)
    stride = 2**max_level
    size = BASE_IMAGE_SIZE + IMAGE_SIZE_STEP * phi
    width_mult, depth_mult, _ = efficientnet_multipliers(phi)
    return EfficientDetSpec(
        name=f'phi{phi:g}',
        phi=phi,
        image_size=max(stride, stride * math.floor(size / stride + 0.5)),
        backbone=dict(width=width_mult, depth=depth_mult, lite=False),
        width=round_channels(BIFPN_BASE_WIDTH * BIFPN_WIDTH_BASE**phi),
        num_stages=math.ceil(BIFPN_BASE_DEPTH + phi),
        head_convs=HEAD_BASE_DEPTH + math.floor(phi / 3),
        fusion='sum' if phi >= 6 else 'fast',
        anchor_scale=4.0,
        max_level=max_level,
    )


def get_spec(
    variant: Union[str, int, float, EfficientDetSpec], **changes: Any
) -> EfficientDetSpec:
    """Resolve a variant into a checked :class:`EfficientDetSpec`.

    Args:
        variant: A name of :data:`OFFICIAL` (``'d0'``, ``'D7x'``,
            ``'lite3x'``; case-insensitive), a compound coefficient (an
            integer 0-7 gives the table's D0-D7, anything else the
            formulas), or a spec.
        **changes: Fields to replace afterwards, e.g. ``image_size=640``.

    Raises:
        ValueError: Unknown name, ``phi < 0``, or an inconsistent spec
            (see :func:`check_spec`).

    Example:
        >>> get_spec('d3').width, get_spec(3).width, get_spec(3.0).width
        (160, 160, 160)
        >>> get_spec(1.5, image_size=640).image_size
        640
    """
    if isinstance(variant, EfficientDetSpec):
        spec = variant
    elif isinstance(variant, str):
        key = variant.lower()
        if key not in OFFICIAL:
            raise ValueError(
                f'unknown EfficientDet variant {variant!r}; expected one of '
                f'{list(OFFICIAL)} or a compound coefficient phi >= 0'
            )
        spec = OFFICIAL[key]
    else:
        phi = _check_phi(variant)
        if phi.is_integer() and int(phi) in OFFICIAL_BY_PHI:
            spec = OFFICIAL_BY_PHI[int(phi)]
        else:
            spec = compound_spec(phi)
    if changes:
        unknown = set(changes) - set(EfficientDetSpec._fields)
        if unknown:
            raise ValueError(
                f'unknown spec fields {sorted(unknown)}; '
                f'expected some of {EfficientDetSpec._fields}'
            )
        spec = spec._replace(**changes)
    return check_spec(spec)


def check_spec(spec: EfficientDetSpec) -> EfficientDetSpec:
    """Return ``spec`` if it describes a model that can be built.

    The input size must be a multiple of the largest stride, so that every
    pyramid level tiles the image and each anchor stride is exactly
    ``2 ** level``. The official Lite0 (320) and Lite2 (448) predate that
    rule; they are kept as the official code runs them (feature sizes
    rounded up, anchor strides of ``size / feature size``, which
    :class:`~mmdet_efficientdet.models.task_modules.EfficientDetAnchorGenerator`
    reproduces) because ported weights expect exactly that.
    """
    if spec.phi is not None:
        _check_phi(spec.phi)
    if spec.fusion not in FUSION_METHODS:
        raise ValueError(
            f'unknown fusion {spec.fusion!r}; expected one of {FUSION_METHODS}'
        )
    if spec.max_level < 5:
        raise ValueError(
            f'max_level must be >= 5 (P3-P5 come from the backbone), got '
            f'{spec.max_level}'
        )
    for field in ('image_size', 'width', 'num_stages', 'head_convs'):
        value = getattr(spec, field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f'{field} must be a positive integer, got {value!r}'
            )
    if not spec.anchor_scale > 0:
        raise ValueError(
            f'anchor_scale must be positive, got {spec.anchor_scale!r}'
        )
    resolve_arch(spec.backbone)
    stride = spec.strides[-1]
    if spec.image_size % stride and OFFICIAL.get(spec.name) != spec:
        nearest = stride * max(1, round(spec.image_size / stride))
        raise ValueError(
            f'image_size {spec.image_size} is not divisible by the largest '
            f'stride {stride} (P{spec.max_level}); use a multiple of '
            f'{stride}, e.g. {nearest}'
        )
    return spec


# Transforms whose size is the model's input size, and the argument that
# holds it.
SIZE_ARGS = {
    'Resize': 'scale',
    'RandomResize': 'scale',
    'RandomCrop': 'crop_size',
    'Pad': 'size',
}


def _set_image_size(node: Any, size: int) -> None:
    if isinstance(node, dict):
        arg = SIZE_ARGS.get(node.get('type'))
        if arg is not None and arg in node:
            node[arg] = (size, size)
        for value in node.values():
            _set_image_size(value, size)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _set_image_size(value, size)


def spec_as_dict(spec: EfficientDetSpec) -> dict:
    """The spec as the plain dict recorded in a config's ``efficientdet``."""
    record = spec._asdict()
    record['backbone'] = copy.deepcopy(spec.backbone)
    return record


def scaled_config(
    cfg: dict,
    variant: Union[str, int, float, EfficientDetSpec],
    **changes: Any,
) -> Dict[str, Any]:
    """Top-level config entries of ``cfg`` rewritten for ``variant``.

    Every value the variant decides is (re)written, whatever ``cfg`` held
    before, so a config may inherit another variant's and re-scale it:

    - ``model``: backbone ``arch``, ``drop_path_rate`` and ImageNet
      weights (``init_cfg``, :data:`IMAGENET_CHECKPOINTS`; an ``init_cfg``
      already set for the same ``arch`` is kept); neck
      ``in_channels`` (the backbone's C3-C5), width, ``num_stages``,
      ``num_outs``, ``fusion`` and ``act_cfg``; head widths,
      ``stacked_convs``, ``act_cfg``, anchor ``strides`` and
      ``anchor_scale``; the data preprocessor's mean / std and
      ``pad_size_divisor`` (the input size: every image is padded to it);
    - every ``*_pipeline`` and ``*_dataloader``: the size of each
      ``Resize``, ``RandomResize``, ``RandomCrop`` and ``Pad``
      (:data:`SIZE_ARGS`);
    - ``efficientdet``: the spec itself, for tools and tests.

    A classic mmengine config uses it as ``globals().update(
    scaled_config(_base_, 'd3'))`` (``_base_`` is the merged base config
    while the file runs); the returned dicts carry ``_delete_=True`` so
    that they replace, not merge into, the inherited ones.

    Args:
        cfg (dict): The config to scale (typically ``_base_``).
        variant: See :func:`get_spec`.
        **changes: Spec fields to replace, see :func:`get_spec`.

    Returns:
        dict: The rewritten top-level entries.
    """
    spec = get_spec(variant, **changes)
    out: Dict[str, Any] = {}
    if 'model' not in cfg:
        raise KeyError('scaled_config needs a config with a `model`')
    model = copy.deepcopy(cfg['model'])
    mean, std = spec.mean_std
    model['data_preprocessor'].update(
        mean=list(mean), std=list(std), pad_size_divisor=spec.image_size
    )
    backbone = model['backbone']
    # weights chosen for this very backbone (e.g. a local file) survive a
    # re-scaling that keeps it, such as a new image_size
    keep_weights = backbone.get('arch') == spec.backbone and (
        backbone.get('init_cfg') is not None
    )
    backbone.update(
        arch=copy.deepcopy(spec.backbone),
        out_indices=BACKBONE_OUT_INDICES,
        drop_path_rate=spec.drop_path_rate,
    )
    if not keep_weights:
        backbone['init_cfg'] = spec.backbone_init_cfg
    model['neck'].update(
        in_channels=spec.backbone_channels,
        out_channels=spec.width,
        num_outs=spec.num_levels,
        num_stages=spec.num_stages,
        fusion=spec.fusion,
        act_cfg=spec.act_cfg,
    )
    head = model['bbox_head']
    head.update(
        in_channels=spec.width,
        feat_channels=spec.width,
        stacked_convs=spec.head_convs,
        act_cfg=spec.act_cfg,
    )
    head['anchor_generator'].update(
        strides=spec.strides, anchor_scale=spec.anchor_scale
    )
    out['model'] = model
    for key, value in cfg.items():
        if key.endswith(('_pipeline', '_dataloader')):
            value = copy.deepcopy(value)
            _set_image_size(value, spec.image_size)
            out[key] = value
    out['efficientdet'] = spec_as_dict(spec)
    for key, value in out.items():
        if isinstance(value, dict) and key in cfg:
            value['_delete_'] = True
    return out
