"""The costs of an EfficientDet spec's model, for the budget search.

:class:`ModelCosts` scales a base config to a spec
(:func:`~mmdet_efficientdet.scaling.scaled_config`) and measures what the
budgets ask for (keys of :data:`~mmdet_efficientdet.analysis.budget.KINDS`):

- ``params``, ``macs``: counted on the meta device
  (:func:`~mmdet_efficientdet.analysis.complexity.count`), batch 1;
- ``latency``: median seconds of the network's forward (images to
  per-level class and box maps, no post-processing) on random images at the
  spec's input size, randomly initialised weights, ``torch.no_grad``;
- ``train_memory``: peak bytes of building the model and running two SGD
  iterations (momentum 0.9) on random images with 8 random boxes each:
  weights, gradients, momentum and activations. On the CPU the process's
  resident-set high-water mark above its level before, on CUDA
  ``torch.cuda.max_memory_allocated`` (:mod:`.measure`).

Measured costs depend on the machine and its load; counted ones do not.
"""

import copy
import statistics
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import InstanceData

from ..scaling import EfficientDetSpec, scaled_config
from .budget import KINDS
from .complexity import count

BOXES_PER_IMAGE = 8
SGD_STEPS = 2  # the second holds weights, momentum, gradients at once


def _samples(batch: int, size: int, num_classes: int) -> List[DetDataSample]:
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(batch):
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0),
            )
        )
        xy = torch.rand(BOXES_PER_IMAGE, 2, generator=gen) * size * 0.7
        wh = (torch.rand(BOXES_PER_IMAGE, 2, generator=gen) * 0.25 + 0.05) * (
            size
        )
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, xy + wh], 1)
        gt.labels = torch.randint(
            0, num_classes, (BOXES_PER_IMAGE,), generator=gen
        )
        sample.gt_instances = gt
        samples.append(sample)
    return samples


class ModelCosts:
    """Spec -> costs of its model, built from ``base_cfg``.

    Args:
        base_cfg (dict): A config with a ``model`` that
            :func:`~mmdet_efficientdet.scaling.scaled_config` can scale.
        kinds (sequence[str]): Costs to report (keys of ``KINDS``).
        num_classes (int, optional): Head classes (default: the base
            config's).
        batch (int): Images per call for latency and training memory.
        device (str): Where latency and memory are measured.
        reps (int): Timed forwards per latency (median taken).
        warmup (int): Untimed forwards before them.
    """

    def __init__(
        self,
        base_cfg: dict,
        kinds: Sequence[str],
        num_classes: Optional[int] = None,
        batch: int = 1,
        device: str = 'cpu',
        reps: int = 5,
        warmup: int = 2,
    ) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(
                f'unknown cost kinds {unknown}; expected some of {list(KINDS)}'
            )
        if batch < 1:
            raise ValueError(f'batch must be >= 1, got {batch}')
        self.base_cfg = base_cfg
        self.kinds = list(kinds)
        self.num_classes = num_classes
        self.batch = batch
        self.device = device
        self.reps = reps
        self.warmup = warmup

    def model_cfg(self, spec: EfficientDetSpec) -> ConfigDict:
        """The base config's model scaled to ``spec``."""
        model = ConfigDict(scaled_config(self.base_cfg, spec)['model'])
        model.pop('_delete_', None)
        if self.num_classes is not None:
            model.bbox_head.num_classes = self.num_classes
        return model

    def __call__(self, spec: EfficientDetSpec) -> Dict[str, float]:
        model_cfg = self.model_cfg(spec)
        out: Dict[str, float] = {}
        if 'params' in self.kinds or 'macs' in self.kinds:
            params, macs = count(model_cfg, spec.image_size)
            out.update(params=float(params), macs=float(macs))
        if 'latency' in self.kinds:
            out['latency'] = self.latency(model_cfg, spec.image_size)
        if 'train_memory' in self.kinds:
            out['train_memory'] = self.train_memory(model_cfg, spec.image_size)
        return {k: out[k] for k in self.kinds}

    def _build(self, model_cfg: ConfigDict) -> torch.nn.Module:
        register_all_modules()
        model = MODELS.build(copy.deepcopy(model_cfg))
        return revert_sync_batchnorm(model).to(self.device)

    def latency(self, model_cfg: ConfigDict, size: int) -> float:
        """Median seconds of one forward at batch ``self.batch``."""
        from .measure import time_interleaved

        model = self._build(model_cfg).eval()
        images = torch.randn(self.batch, 3, size, size, device=self.device)

        def forward() -> None:
            with torch.no_grad():
                model._forward(images)

        times = time_interleaved(
            {'forward': forward}, self.reps, self.warmup, self.device
        )
        return statistics.median(times['forward'])

    def train_memory(self, model_cfg: ConfigDict, size: int) -> float:
        """Peak bytes of building the model and two SGD iterations."""
        from .measure import peak_memory

        num_classes = model_cfg.bbox_head.num_classes
        samples = _samples(self.batch, size, num_classes)
        samples = [s.to(self.device) for s in samples]

        def train() -> None:
            model = self._build(model_cfg).train()
            optimizer = torch.optim.SGD(
                model.parameters(), lr=1e-4, momentum=0.9
            )
            images = torch.randn(self.batch, 3, size, size, device=self.device)
            for _ in range(SGD_STEPS):
                loss, _ = model.parse_losses(model.loss(images, samples))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        return float(peak_memory(train, self.device))
