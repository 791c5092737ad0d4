"""Stop training at the first non-finite loss or weight."""

import itertools
import math
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import EpochBasedTrainLoop

# at most this many tensors are named in an error
SHOWN = 5


def _non_finite_tensors(
    tree: object, prefix: str
) -> Iterator[Tuple[str, torch.Tensor]]:
    """(dotted name, tensor) of every floating tensor in ``tree`` holding
    NaN or inf; ``tree`` is a (nested) dict / list of tensors."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not torch.isfinite(tree).all():
            yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _non_finite_tensors(value, f'{prefix}.{key}')
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _non_finite_tensors(value, f'{prefix}[{i}]')


def _non_finite_model_tensors(model: torch.nn.Module) -> List[str]:
    """Names of the parameters and buffers holding NaN or inf.

    One sum per tensor and one device sync find the suspects (a sum is
    finite when every element is, unless it overflows); only those get the
    exact, ten times slower element check.
    """
    groups: Dict[torch.device, List[Tuple[str, torch.Tensor]]] = {}
    for name, tensor in itertools.chain(
        model.named_parameters(), model.named_buffers()
    ):
        if tensor.is_floating_point():
            groups.setdefault(tensor.device, []).append((name, tensor))
    broken = []
    with torch.no_grad():
        for group in groups.values():
            sums = torch.stack([t.sum().float() for _, t in group])
            suspects = (~torch.isfinite(sums)).nonzero().flatten().tolist()
            broken += [
                group[i][0]
                for i in suspects
                if not torch.isfinite(group[i][1]).all()
            ]
    return broken


def _first_few(names: List[str]) -> str:
    more = len(names) - SHOWN
    return ', '.join(names[:SHOWN]) + (f' and {more} more' if more > 0 else '')


@HOOKS.register_module()
class CheckFiniteHook(Hook):
    """Raise ``FloatingPointError`` at the first non-finite loss or weight.

    A diverging run (too high an lr) otherwise goes on with NaN weights,
    saves NaN checkpoints, and ``max_keep_ckpts`` deletes the finite ones
    (MMEngine's ``CheckpointHook`` removes the oldest checkpoint *before*
    writing the new one). This hook checks, after every iteration, every
    loss term the model logged and every parameter and buffer, and stops
    the run with an error naming the epoch / iteration and the loss terms
    with their values. It runs before the checkpoint hook (priority
    ``VERY_HIGH``), so the iteration that broke the weights is never
    saved, and the checkpoints already written stay. As a last guard,
    ``before_save_checkpoint`` refuses a checkpoint whose weights, EMA
    weights or optimizer state hold NaN or inf.

    mmdet's ``CheckInvalidLossHook`` checks only the total loss, every 50
    iterations by default, and fails with an empty assertion message.
    The weight check costs one sum per tensor per iteration (1.6 ms for
    EfficientDet-D0's 678 tensors on one CPU thread, measured).

    Under mixed precision (``AmpOptimWrapper``, ``--amp``) a non-finite
    loss is expected now and then: the loss scaler finds the gradients
    non-finite, skips the step and lowers its scale, and the weights stay
    as they were. There the hook warns and goes on, and stops only when
    ``amp_patience`` iterations in a row had a non-finite loss (an
    overflow the scaler cannot cure) or a weight turned non-finite.

    Args:
        check_weights (bool): Also check the parameters and buffers after
            each iteration. Defaults to True.
        amp_patience (int): Under mixed precision, the non-finite losses in
            a row that are tolerated. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_weights: bool = True, amp_patience: int = 10):
        self.check_weights = check_weights
        self.amp_patience = amp_patience
        self._amp_skipped = 0

    def after_train_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: Optional[dict] = None,
        outputs: Optional[Dict[str, torch.Tensor]] = None,
    ) -> None:
        terms = {
            name: value.detach().item()
            for name, value in (outputs or {}).items()
            if isinstance(value, torch.Tensor) and value.numel() == 1
        }
        losses = ', '.join(f'{name}={v:.4g}' for name, v in terms.items())
        where = self._where(runner, batch_idx)
        if all(math.isfinite(v) for v in terms.values()):
            self._amp_skipped = 0
        elif self._scaler_skips(runner) and (
            self._amp_skipped < self.amp_patience
        ):
            self._amp_skipped += 1
            runner.logger.warning(
                f'non-finite loss at {where}: {losses}; under mixed '
                'precision the loss scaler skips this step '
                f'({self._amp_skipped} in a row, the run stops after '
                f'{self.amp_patience})'
            )
        else:
            in_a_row = (
                f' ({self._amp_skipped + 1} in a row under mixed precision)'
                if self._amp_skipped
                else ''
            )
            raise FloatingPointError(
                f'non-finite loss at {where}{in_a_row}: {losses}. Lower the '
                'learning rate (optim_wrapper.optimizer.lr) or clip the '
                'gradients (optim_wrapper.clip_grad); the checkpoints saved '
                'so far are kept.'
            )
        if not self.check_weights:
            return
        broken = _non_finite_model_tensors(runner.model)
        if broken:
            raise FloatingPointError(
                f'the optimizer step of {where} made {len(broken)} model '
                f'tensors non-finite ({_first_few(broken)}); its losses: '
                f'{losses}. Lower the learning rate '
                '(optim_wrapper.optimizer.lr) or clip the gradients '
                '(optim_wrapper.clip_grad); the checkpoints saved so far are '
                'kept.'
            )

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        broken = [
            name
            for key in ('state_dict', 'ema_state_dict', 'optimizer')
            for name, _ in _non_finite_tensors(checkpoint.get(key), key)
        ]
        if broken:
            meta = checkpoint.get('meta', {})
            raise FloatingPointError(
                'refusing to save the checkpoint of epoch '
                f'{meta.get("epoch")}, iteration {meta.get("iter")}: '
                f'{len(broken)} tensors hold NaN or inf '
                f'({_first_few(broken)})'
            )

    @staticmethod
    def _scaler_skips(runner) -> bool:
        """Whether the optimizer wrapper skips steps whose gradients are
        not finite (mixed precision's loss scaling)."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        return isinstance(wrapper, AmpOptimWrapper)

    @staticmethod
    def _where(runner, batch_idx: int) -> str:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return (
                f'epoch {runner.epoch + 1}, iteration {batch_idx + 1} of '
                f'{len(runner.train_dataloader)} (iteration '
                f'{runner.iter + 1} overall)'
            )
        return f'iteration {runner.iter + 1}'
