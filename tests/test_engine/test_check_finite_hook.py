"""CheckFiniteHook on fake runner outputs and checkpoints."""

import math
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmdet.registry import HOOKS
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmdet_efficientdet.engine import CheckFiniteHook


def fake_runner(loop=EpochBasedTrainLoop):
    """Epoch 2 (0-based 1) of 4 iterations, at its iteration 3 (6 overall
    0-based 5), with a small model."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    return SimpleNamespace(
        model=model,
        epoch=1,
        iter=5,
        train_loop=mock.Mock(spec=loop),
        train_dataloader=[None] * 4,
    )


def outputs(**values):
    return {name: torch.tensor(v) for name, v in values.items()}


def test_registered_and_runs_before_the_checkpoint_hook():
    hook = HOOKS.build(dict(type='CheckFiniteHook'))
    assert isinstance(hook, CheckFiniteHook)
    # lower is earlier; CheckpointHook and LoggerHook: VERY_LOW, BELOW_NORMAL
    assert hook.priority == 'VERY_HIGH'


def test_finite_iteration_passes():
    hook = CheckFiniteHook()
    hook.after_train_iter(
        fake_runner(), 2, outputs=outputs(loss=1.5, loss_cls=1.0, acc=90.0)
    )


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_loss_names_iteration_and_terms(bad):
    hook = CheckFiniteHook()
    with pytest.raises(
        FloatingPointError,
        match=r'non-finite loss at epoch 2, iteration 3 of 4 \(iteration 6 '
        rf'overall\): loss={bad}, loss_cls={bad}, loss_bbox=0\.5\. Lower '
        r'the learning rate',
    ):
        hook.after_train_iter(
            fake_runner(),
            2,
            outputs=outputs(loss=bad, loss_cls=bad, loss_bbox=0.5),
        )


def test_iteration_based_loop_names_the_iteration():
    hook = CheckFiniteHook()
    with pytest.raises(FloatingPointError, match=r'at iteration 6: loss=nan'):
        hook.after_train_iter(
            fake_runner(IterBasedTrainLoop), 5, outputs=outputs(loss=math.nan)
        )


def test_non_finite_weights_after_a_finite_loss():
    """The step that overflowed the weights: stop before the next save."""
    runner = fake_runner()
    with torch.no_grad():
        runner.model[0].weight[1, 2] = math.inf
    runner.model[1].running_var[0] = math.nan
    hook = CheckFiniteHook()
    with pytest.raises(
        FloatingPointError,
        match=r'the optimizer step of epoch 2, iteration 3 of 4 .* made 2 '
        r'model tensors non-finite \(0\.weight, 1\.running_var\); its '
        r'losses: loss=3e\+16',
    ):
        hook.after_train_iter(runner, 2, outputs=outputs(loss=3e16))
    CheckFiniteHook(check_weights=False).after_train_iter(
        runner, 2, outputs=outputs(loss=3e16)
    )


def test_huge_finite_weights_are_not_non_finite():
    """Their sum overflows to inf; the exact check clears them."""
    runner = fake_runner()
    with torch.no_grad():
        runner.model[0].weight.fill_(3e38)
    assert torch.isinf(runner.model[0].weight.sum())
    CheckFiniteHook().after_train_iter(runner, 2, outputs=outputs(loss=1.0))


def checkpoint(**parts):
    ckpt = dict(
        meta=dict(epoch=2, iter=8),
        state_dict={
            'w': torch.ones(2),
            'num_batches_tracked': torch.tensor(3),
        },
        ema_state_dict={'w': torch.ones(2)},
        optimizer=dict(state={0: dict(momentum_buffer=torch.zeros(2))}),
    )
    ckpt.update(parts)
    return ckpt


def test_finite_checkpoint_is_saved():
    CheckFiniteHook().before_save_checkpoint(fake_runner(), checkpoint())


@pytest.mark.parametrize(
    'part, value, name',
    [
        ('state_dict', {'w': torch.tensor([1.0, math.nan])}, 'state_dict.w'),
        (
            'ema_state_dict',
            {'w': torch.tensor([math.inf, 1.0])},
            'ema_state_dict.w',
        ),
        (
            'optimizer',
            dict(state={0: dict(momentum_buffer=torch.tensor([math.nan]))}),
            r'optimizer\.state\.0\.momentum_buffer',
        ),
    ],
)
def test_non_finite_checkpoint_is_refused(part, value, name):
    with pytest.raises(
        FloatingPointError,
        match=r'refusing to save the checkpoint of epoch 2, iteration 8: '
        rf'1 tensors hold NaN or inf \({name}\)',
    ):
        CheckFiniteHook().before_save_checkpoint(
            fake_runner(), checkpoint(**{part: value})
        )


def amp_runner():
    runner = fake_runner()
    runner.optim_wrapper = mock.Mock(spec=AmpOptimWrapper)
    runner.logger = mock.Mock()
    return runner


def test_mixed_precision_tolerates_a_few_non_finite_losses_in_a_row():
    hook = CheckFiniteHook(amp_patience=2)
    runner = amp_runner()
    for _ in range(2):
        hook.after_train_iter(runner, 2, outputs=outputs(loss=math.inf))
    assert runner.logger.warning.call_count == 2
    assert (
        'loss scaler skips this step (2 in a row'
        in (runner.logger.warning.call_args[0][0])
    )
    # a finite loss resets the count
    hook.after_train_iter(runner, 2, outputs=outputs(loss=1.0))
    for _ in range(2):
        hook.after_train_iter(runner, 2, outputs=outputs(loss=math.nan))
    with pytest.raises(
        FloatingPointError, match=r'\(3 in a row under mixed precision\)'
    ):
        hook.after_train_iter(runner, 2, outputs=outputs(loss=math.nan))


def test_mixed_precision_still_stops_on_non_finite_weights():
    hook = CheckFiniteHook()
    runner = amp_runner()
    with torch.no_grad():
        runner.model[0].weight[0, 0] = math.nan
    with pytest.raises(FloatingPointError, match='made 1 model tensors'):
        hook.after_train_iter(runner, 2, outputs=outputs(loss=math.inf))
