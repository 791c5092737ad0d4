"""The learning-rate schedule of the official recipe, for configs."""

from typing import List

from mmdet.registry import PARAM_SCHEDULERS
from mmengine.optim import CosineAnnealingLR
from mmengine.optim.scheduler.param_scheduler import INF


@PARAM_SCHEDULERS.register_module()
class CosineToEndLR(CosineAnnealingLR):
    """``CosineAnnealingLR`` from ``begin`` to the end of training.

    Written without ``end`` and ``T_max``: the runner sets ``end`` to the
    run's length. A run that is over by ``begin`` (a one-epoch smoke run of
    a config whose warm-up is one epoch) would make ``CosineAnnealingLR``
    refuse ``end == begin``; here the cosine is simply never reached.
    """

    def __init__(
        self, optimizer, *args, begin: int = 0, end: int = INF, **kwargs
    ) -> None:
        super().__init__(
            optimizer, *args, begin=begin, end=max(end, begin + 1), **kwargs
        )


def warmup_cosine(start_factor: float, warmup_epochs: int = 1) -> List[dict]:
    """Linear warm-up from ``start_factor`` x lr over ``warmup_epochs``, then
    cosine decay to 0 at the end of training; both stepped per iteration.

    The cosine part has neither ``end`` nor ``T_max``: MMEngine's runner
    fills ``end`` from the train loop's ``max_epochs`` when it builds the
    schedulers (before converting epochs to iterations), and the cosine
    takes ``T_max = end - begin``. A child config that only sets
    ``train_cfg = dict(max_epochs=24)`` therefore decays over its own 24
    epochs, not the parent's.
    """
    return [
        dict(
            type='LinearLR',
            start_factor=start_factor,
            by_epoch=True,
            begin=0,
            end=warmup_epochs,
            convert_to_iter_based=True,
        ),
        dict(
            type='CosineToEndLR',
            eta_min=0.0,
            by_epoch=True,
            begin=warmup_epochs,
            convert_to_iter_based=True,
        ),
    ]
