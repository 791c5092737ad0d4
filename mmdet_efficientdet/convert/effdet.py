"""Convert ``effdet`` (efficientdet-pytorch) checkpoints to this package.

effdet ships the official TF EfficientDet weights (``tf_efficientdet_*``,
the AdvProp ``*_ap`` ones) and two PyTorch-native models
(``efficientdet_d0`` / ``_d1``). Each maps tensor for tensor onto the
model of ``configs/efficientdet/converted/{name}_coco.py``
(:func:`converted_config`):

- backbone: timm's layout, converted by the backbone's own
  :func:`~..models.backbones.convert_state_dict`;
- BiFPN and head: :mod:`.effdet_keys`; the box prediction's channels are
  re-ordered to mmdet's ``(dx, dy, dw, dh)``. Anchors need no change:
  :class:`~..models.task_modules.EfficientDetAnchorGenerator` has TF's
  order;
- classes: the 90 outputs are kept; output ``i`` is COCO category id
  ``i + 1``, which the converted configs' ``CocoCategoryIdMetric`` maps
  onto the dataset's categories.

Nothing is written unless every tensor of the target model comes from the
checkpoint with its shape and no checkpoint tensor is left over.
"""

import copy
import os
import os.path as osp
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..models.backbones import (
    convert_state_dict,
    fit_problems,
    read_checkpoint,
)
from ..models.backbones.efficientnet_arch import decode_stages, resolve_arch
from ..package_files import get_config_file
from ..scaling import BACKBONE_OUT_INDICES, EfficientDetSpec, get_spec
from .effdet_keys import head_keys_from_effdet, neck_keys_from_effdet

StateDict = Dict[str, Tensor]

# The TF checkpoints' class layout: COCO's 90 category ids (80 in use).
EFFDET_NUM_CLASSES = 90
EFFDET_LABEL_OFFSET = 1  # output i is category id i + 1
# timm's PyTorch-native EfficientNets keep PyTorch's BN epsilon; effdet's
# BiFPN and head keep TF's 1e-3 in every model.
TORCH_BN_EPS = 1e-5
# AdvProp weights see the input scaled to [-1, 1].
ADVPROP_MEAN_STD = ([127.5] * 3, [127.5] * 3)


class EffdetVariant(NamedTuple):
    """An effdet model and how it departs from our official variant.

    Attributes:
        name (str): effdet's model name, e.g. ``'tf_efficientdet_d0_ap'``.
        spec (str): Our variant (:data:`~..scaling.OFFICIAL`), e.g. ``'d0'``.
        native (bool): effdet's PyTorch-native model: symmetric padding,
            PyTorch's BN epsilon in the backbone, no conv bias in front of
            the BiFPN's and head's norms (``pad_type=''``,
            ``redundant_bias=False``, timm ``efficientnet_b*``).
        advprop (bool): AdvProp weights, input scaled to [-1, 1].
    """

    name: str
    spec: str
    native: bool = False
    advprop: bool = False

    @property
    def config(self) -> str:
        """The converted model's config file (packaged or in the checkout)."""
        return get_config_file(f'efficientdet/converted/{self.name}_coco')


# COCO val2017 box AP (%) of the official TF weights (paper, Table 2 /
# google/automl README), which tf_efficientdet_{d0..d7x} carry.
OFFICIAL_COCO_VAL_AP = dict(
    d0=34.3,
    d1=40.2,
    d2=43.5,
    d3=46.8,
    d4=49.3,
    d5=51.3,
    d6=52.2,
    d7=53.4,
    d7x=54.4,
)

_TF = ('d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd7x')
_LITE = ('lite0', 'lite1', 'lite2', 'lite3', 'lite3x', 'lite4')
_V = EffdetVariant
# Every effdet 0.4.1 model with released COCO weights.
EFFDET_VARIANTS: Dict[str, EffdetVariant] = {
    v.name: v
    for v in (
        *(_V(f'tf_efficientdet_{s}', s) for s in _TF + _LITE),
        *(_V(f'tf_efficientdet_{s}_ap', s, advprop=True) for s in _TF[:6]),
        _V('efficientdet_d0', 'd0', native=True),
        _V('efficientdet_d1', 'd1', native=True),
    )
}


def get_effdet_variant(name: str) -> EffdetVariant:
    """The :class:`EffdetVariant` of an effdet model name."""
    if name not in EFFDET_VARIANTS:
        raise ValueError(
            f'unknown effdet variant {name!r}; expected one of '
            f'{sorted(EFFDET_VARIANTS)}'
        )
    return EFFDET_VARIANTS[name]


def guess_variant(path: str) -> Optional[str]:
    """The variant named by an effdet release file name, if any.

    Example:
        >>> guess_variant('weights/tf_efficientdet_d0_34-f153e0cf.pth')
        'tf_efficientdet_d0'
        >>> guess_variant('tf_efficientdet_d0_ap-d0cdbd0a.pth')
        'tf_efficientdet_d0_ap'
    """
    base = osp.basename(path)
    # 'tf_efficientdet_d7' must not match 'tf_efficientdet_d7x-...'
    names = [
        n
        for n in EFFDET_VARIANTS
        if base.startswith(n) and not base[len(n) : len(n) + 1].isalnum()
    ]
    return max(names, key=len) if names else None


def converted_config(cfg: dict, name: str) -> Dict[str, Any]:
    """Top-level config entries that turn ``cfg`` into effdet's ``name``.

    ``cfg`` is our config of the same variant (``_base_`` in the files of
    ``configs/efficientdet/converted/``). The model gets effdet's 90
    outputs, no ImageNet initialisation (the converted checkpoint holds
    every tensor) and, for the PyTorch-native models, symmetric padding,
    PyTorch's BN epsilon in the backbone and no conv bias in front of
    norms; AdvProp models get [-1, 1] input scaling. The evaluators become
    ``CocoCategoryIdMetric``, which reads output ``i`` as COCO category id
    ``i + 1``.
    """
    variant = get_effdet_variant(name)
    base_name = cfg.get('efficientdet', {}).get('name')
    if base_name != variant.spec:
        raise ValueError(
            f'{name} converts to our {variant.spec!r} variant, but the base '
            f'config is {base_name!r}'
        )
    model = copy.deepcopy(cfg['model'])
    model['backbone']['init_cfg'] = None
    model['bbox_head']['num_classes'] = EFFDET_NUM_CLASSES
    if variant.native:
        backbone = model['backbone']
        backbone.update(
            padding='symmetric',
            norm_cfg=dict(backbone['norm_cfg'], eps=TORCH_BN_EPS),
        )
        for part in ('neck', 'bbox_head'):
            model[part].update(padding='symmetric', conv_bias=False)
    if variant.advprop:
        mean, std = ADVPROP_MEAN_STD
        model['data_preprocessor'].update(mean=list(mean), std=list(std))
    out = dict(model=model)
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = copy.deepcopy(cfg[key])
        evaluator.update(
            type='CocoCategoryIdMetric', label_offset=EFFDET_LABEL_OFFSET
        )
        out[key] = evaluator
    for value in out.values():
        value['_delete_'] = True
    out['effdet_variant'] = name
    return out


def _split(state_dict: StateDict) -> Tuple[Dict[str, StateDict], List[str]]:
    parts: Dict[str, StateDict] = {
        p: {} for p in ('backbone', 'fpn', 'class_net', 'box_net')
    }
    unknown = []
    for key, value in state_dict.items():
        top, _, rest = key.partition('.')
        if top in parts and rest:
            parts[top][rest] = value
        else:
            unknown.append(key)
    return parts, unknown


def convert_effdet_state_dict(
    state_dict: StateDict, name: str
) -> Tuple[StateDict, List[str]]:
    """Rename an effdet model's tensors to our detector's.

    Args:
        state_dict: An ``effdet.EfficientDet`` state dict (no prefix).
        name: Its effdet variant, see :data:`EFFDET_VARIANTS`.

    Returns:
        (our tensors under ``backbone.`` / ``neck.`` / ``bbox_head.``,
        checkpoint keys of no known form). Whether the result fits the
        model is :func:`check_converted`'s question.
    """
    spec = get_spec(get_effdet_variant(name).spec)
    parts, unknown = _split(state_dict)
    # effdet's backbone is timm's EfficientNetFeatures; a missing stem must
    # not hide that layout, so a stand-in names it
    backbone = dict(parts['backbone'])
    stand_in = 'conv_stem.weight' not in backbone
    if stand_in:
        backbone['conv_stem.weight'] = torch.empty(0)
    stages = decode_stages(resolve_arch(spec.backbone))
    converted, classifier, bad = convert_state_dict(backbone, stages)
    if stand_in:
        del converted['stem.conv.weight']
    unknown += [f'backbone.{k}' for k in bad]
    # effdet's backbone has no classifier: these are another model's
    unknown += [f'backbone.{k}' for k in classifier]
    out = {f'backbone.{k}': v for k, v in converted.items()}

    bad = []
    neck = neck_keys_from_effdet(
        parts['fpn'], len(BACKBONE_OUT_INDICES), spec.num_levels, bad
    )
    unknown += [f'fpn.{k}' for k in bad]
    out.update({f'neck.{k}': v for k, v in neck.items()})
    for tower, net in (('cls', 'class_net'), ('reg', 'box_net')):
        bad = []
        head = head_keys_from_effdet(parts[net], tower, unknown=bad)
        unknown += [f'{net}.{k}' for k in bad]
        out.update({f'bbox_head.{k}': v for k, v in head.items()})
    return out, unknown


def describe_effdet(state_dict: StateDict) -> Dict[str, Any]:
    """What an effdet state dict's shapes say about its variant."""

    def count(pattern: str) -> int:
        found = set()
        for key in state_dict:
            m = re.match(pattern, key)
            if m:
                found.add(m.groups())
        return len(found)

    info: Dict[str, Any] = dict(
        backbone_blocks=count(r'backbone\.blocks\.(\d+)\.(\d+)\.'),
        squeeze_excite=any('.se.' in k for k in state_dict),
        bifpn_layers=count(r'fpn\.cell\.(\d+)\.'),
        head_convs=count(r'class_net\.conv_rep\.(\d+)\.'),
    )
    pointwise = 'fpn.cell.0.fnode.0.after_combine.conv.conv_pw.'
    if pointwise + 'weight' in state_dict:
        info['width'] = state_dict[pointwise + 'weight'].shape[0]
        info['native'] = pointwise + 'bias' not in state_dict
    predict = state_dict.get('class_net.predict.conv_pw.weight')
    if predict is not None:
        info['num_classes'] = predict.shape[0] // 9
    return info


def _spec_info(spec: EfficientDetSpec, native: bool) -> Dict[str, Any]:
    arch = resolve_arch(spec.backbone)
    return dict(
        backbone_blocks=sum(len(s) for s in decode_stages(arch)),
        squeeze_excite=not arch.lite,
        bifpn_layers=spec.num_stages,
        head_convs=spec.head_convs,
        width=spec.width,
        native=native,
        num_classes=EFFDET_NUM_CLASSES,
    )


def matching_variants(state_dict: StateDict) -> List[str]:
    """effdet variants whose BiFPN / head shapes the state dict has."""
    info = describe_effdet(state_dict)
    return [
        v.name
        for v in EFFDET_VARIANTS.values()
        if _spec_info(get_spec(v.spec), v.native).items() >= info.items()
    ]


def check_converted(
    converted: StateDict,
    unknown: Sequence[str],
    expected: Dict[str, torch.Size],
    name: str,
    source: Optional[StateDict] = None,
) -> None:
    """Raise ValueError unless ``converted`` fills ``expected`` exactly.

    Args:
        converted, unknown: :func:`convert_effdet_state_dict`'s result.
        expected: Our model's tensor shapes by key.
        name: The effdet variant converted to.
        source: The effdet state dict, to say which variants it fits.
    """
    unexpected = list(unknown) + [k for k in converted if k not in expected]
    problems = fit_problems(converted, expected, unexpected)
    if not problems:
        return
    hint = ''
    if source is not None:
        fits = [n for n in matching_variants(source) if n != name]
        if fits:
            hint = f' The checkpoint looks like one of {fits}.'
    raise ValueError(
        f'the checkpoint does not fit effdet variant {name}: '
        + '; '.join(problems)
        + '.'
        + hint
    )


def model_shapes(config: str) -> Dict[str, torch.Size]:
    """Tensor shapes of the model of ``config``, built without memory."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return {k: v.shape for k, v in model.state_dict().items()}


def convert_effdet_file(
    src: str, name: str, config: Optional[str] = None
) -> Tuple[StateDict, Dict[str, Any]]:
    """Read the effdet checkpoint ``src`` of ``name`` and convert it.

    Returns:
        The converted state dict and its ``meta``, only when the
        conversion fits the model of ``config`` (default: the variant's
        converted config) exactly.

    Raises:
        ValueError: Unknown variant, or a checkpoint that does not fit,
            naming the missing, unexpected and mis-shaped keys.
        FileNotFoundError, RuntimeError: ``src`` missing or unreadable
            (e.g. truncated).
    """
    variant = get_effdet_variant(name)
    config = config or variant.config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist')
    source = read_checkpoint(src)
    converted, unknown = convert_effdet_state_dict(source, name)
    check_converted(converted, unknown, model_shapes(config), name, source)
    meta = dict(
        effdet_variant=name,
        config=osp.abspath(config),
        source=osp.basename(src),
        num_classes=EFFDET_NUM_CLASSES,
        label_offset=EFFDET_LABEL_OFFSET,
    )
    state = {k: v.detach().clone().contiguous() for k, v in converted.items()}
    return state, meta


def convert_effdet_checkpoint(
    src: str, dst: str, name: str, config: Optional[str] = None
) -> Dict[str, Any]:
    """Convert the effdet checkpoint ``src`` of ``name`` into ``dst``
    (:func:`convert_effdet_file`); ``dst`` is written atomically, and not
    at all when the conversion fails.

    Returns:
        The written checkpoint's ``meta``.
    """
    state, meta = convert_effdet_file(src, name, config)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = f'{dst}.part'
    try:
        torch.save(dict(state_dict=state, meta=meta), tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return meta
