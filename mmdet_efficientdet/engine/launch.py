"""Settings that depend on where a config runs, applied by tools/*.py."""

from typing import Any, List

import torch
import torch.distributed as dist
from mmengine.config import Config


def _sync_bn_to_bn(node: Any, path: str, changed: List[str]) -> None:
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed.append(path)
        for key, value in node.items():
            _sync_bn_to_bn(value, f'{path}.{key}', changed)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _sync_bn_to_bn(value, f'{path}[{i}]', changed)


def adapt_launch(cfg: Config, launcher: str) -> List[str]:
    """Make a distributed config run without CUDA, in place.

    mmengine 0.10.7 assumes GPUs once distributed: it calls
    ``torch.cuda.set_device`` while joining the process group ("Found no
    NVIDIA driver"), wraps the model with ``device_ids=[local_rank]``, and
    NCCL and SyncBatchNorm need GPUs ("SyncBatchNorm expected input tensor
    to be on GPU"). Without CUDA, this joins the group itself over gloo
    (mmengine then skips its own set-up), wraps the model for the CPU and
    uses plain BN. On one process nothing changes (mmengine turns SyncBN
    into BN there by itself).

    Returns:
        Config paths of the norm layers that were switched to BN.
    """
    changed: List[str] = []
    if launcher == 'none' or torch.cuda.is_available():
        return changed
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} without CUDA is not supported; use '
            'tools/dist_train.sh (torchrun, --launcher pytorch)'
        )
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
        )
    model = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else cfg.model
    _sync_bn_to_bn(model, 'model', changed)
    cfg.model = model
    return changed
