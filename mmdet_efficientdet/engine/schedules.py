"""The learning-rate schedule of the official recipe, for configs."""

from typing import List


def warmup_cosine(max_epochs: int, start_factor: float) -> List[dict]:
    """One epoch of linear warm-up from ``start_factor`` x lr, then cosine
    decay to 0 until ``max_epochs``; both stepped per iteration.

    Configs call it (``param_scheduler = warmup_cosine(300, 0.05)``) so
    that the schedule follows their own ``max_epochs``.
    """
    return [
        dict(
            type='LinearLR',
            start_factor=start_factor,
            by_epoch=True,
            begin=0,
            end=1,
            convert_to_iter_based=True,
        ),
        dict(
            type='CosineAnnealingLR',
            eta_min=0.0,
            T_max=max_epochs - 1,
            by_epoch=True,
            begin=1,
            end=max_epochs,
            convert_to_iter_based=True,
        ),
    ]
