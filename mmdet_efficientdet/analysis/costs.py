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
import dataclasses
import statistics
from typing import Callable, Dict, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.model import revert_sync_batchnorm

from ..scaling import EfficientDetSpec, scaled_config
from .budget import KINDS
from .complexity import count
from .measure import peak_memory, random_samples, time_interleaved

BOXES_PER_IMAGE = 8
SGD_STEPS = 2  # the second holds weights, momentum, gradients at once


def build_model(model_cfg: ConfigDict, device: str) -> torch.nn.Module:
    """The detector of ``model_cfg`` on ``device`` (SyncBN as BN)."""
    register_all_modules()
    model = MODELS.build(copy.deepcopy(model_cfg))
    return revert_sync_batchnorm(model).to(device)


def latencies(
    model_cfgs: Dict[str, ConfigDict],
    size: int,
    batch: int = 1,
    device: str = 'cpu',
    reps: int = 5,
    warmup: int = 2,
) -> Dict[str, float]:
    """Median seconds of each model's network forward (images to
    per-level maps) at ``batch`` random ``size`` x ``size`` images, the
    models timed interleaved (:func:`.measure.time_interleaved`)."""
    images = torch.randn(batch, 3, size, size, device=device)
    forwards = {}
    for name, model_cfg in model_cfgs.items():
        model = build_model(model_cfg, device).eval()
        forwards[name] = _no_grad_forward(model, images)
    times = time_interleaved(forwards, reps, warmup, device)
    return {name: statistics.median(t) for name, t in times.items()}


def _no_grad_forward(
    model: torch.nn.Module, images: torch.Tensor
) -> Callable[[], None]:
    def forward() -> None:
        with torch.no_grad():
            model._forward(images)

    return forward


@dataclasses.dataclass
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

    base_cfg: dict
    kinds: Sequence[str]
    num_classes: Optional[int] = None
    batch: int = 1
    device: str = 'cpu'
    reps: int = 5
    warmup: int = 2

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(
                f'unknown cost kinds {unknown}; expected some of {list(KINDS)}'
            )
        if self.batch < 1:
            raise ValueError(f'batch must be >= 1, got {self.batch}')
        self.kinds = list(self.kinds)

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

    def latency(self, model_cfg: ConfigDict, size: int) -> float:
        """Median seconds of one forward at batch ``self.batch``."""
        times = latencies(
            {'forward': model_cfg},
            size,
            self.batch,
            self.device,
            self.reps,
            self.warmup,
        )
        return times['forward']

    def train_memory(self, model_cfg: ConfigDict, size: int) -> float:
        """Peak bytes of building the model and two SGD iterations."""
        samples = random_samples(
            self.batch,
            size,
            self.device,
            BOXES_PER_IMAGE,
            model_cfg.bbox_head.num_classes,
        )

        def train() -> None:
            model = build_model(model_cfg, self.device).train()
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
