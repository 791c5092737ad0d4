"""Weights-only loading of our checkpoints: data-only globals, nothing else.

Importing the package allows the message hub's classes and numpy's
(``register_checkpoint_globals``), so mmdet's own loaders read our
checkpoints; a checkpoint that names anything else - a ``__reduce__``
payload, alone, inside a numpy object array or inside a HistoryBuffer -
is refused by every loader and executes nothing.
"""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from mmdet_efficientdet import get_config_file  # registers the allow-list
from mmdet_efficientdet.engine.checkpoint_globals import (
    _history_buffer_method,
)


class Payload:
    """Unpickling it runs ``touch MARKER``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def message_hub(scalars: dict) -> dict:
    """A message hub state as mmengine's CheckpointHook saves it."""
    return dict(log_scalars=scalars, runtime_info=dict(epoch=1, iter=4))


def honest_checkpoint() -> dict:
    buffer = HistoryBuffer()
    buffer.update(0.5)
    buffer.update(np.float64(0.25))
    lr = HistoryBuffer()
    lr.update(0.01)
    return dict(
        meta=dict(
            epoch=1,
            iter=4,
            seed=np.int64(0),
            dataset_meta=dict(classes=('circle', 'square')),
        ),
        state_dict=dict(weight=torch.ones(2, 2)),
        message_hub=message_hub({'train/loss': buffer, 'train/lr': lr}),
        history=np.arange(3.0),
    )


def payload_alone(marker):
    ckpt = honest_checkpoint()
    ckpt['meta']['note'] = Payload(marker)
    return ckpt


def payload_in_numpy_object_array(marker):
    ckpt = honest_checkpoint()
    ckpt['history'] = np.array([1, Payload(marker)], dtype=object)
    return ckpt


def payload_in_history_buffer(marker):
    ckpt = honest_checkpoint()
    buffer = HistoryBuffer()
    buffer._log_history = Payload(marker)
    ckpt['message_hub']['log_scalars']['train/loss'] = buffer
    return ckpt


PAYLOADS = [
    payload_alone,
    payload_in_numpy_object_array,
    payload_in_history_buffer,
]
LOADERS = {
    'torch.load': lambda path: torch.load(path, map_location='cpu'),
    'mmengine _load_checkpoint': lambda path: _load_checkpoint(
        path, map_location='cpu'
    ),
    'mmengine load_checkpoint': lambda path: load_checkpoint(
        torch.nn.Linear(2, 2), path, map_location='cpu'
    ),
}


def test_honest_checkpoint_loads_weights_only(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save(honest_checkpoint(), path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(0.375)
    assert ckpt['meta']['seed'] == 0
    assert ckpt['history'].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize('loader', sorted(LOADERS))
@pytest.mark.parametrize('make', PAYLOADS, ids=lambda f: f.__name__)
def test_payload_is_refused_and_not_run(tmp_path, make, loader):
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save(make(str(marker)), path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        LOADERS[loader](str(path))
    assert not marker.exists()


def test_payload_runs_without_weights_only(tmp_path):
    """The payloads above are real: unrestricted loading runs them."""
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save(payload_alone(str(marker)), path)
    torch.load(path, map_location='cpu', weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('name', ['__init__', '__class__', 'update'])
def test_getattr_only_reaches_statistics_methods(name):
    assert _history_buffer_method(HistoryBuffer, 'mean') is (
        HistoryBuffer.mean
    )
    with pytest.raises(pickle.UnpicklingError, match=name):
        _history_buffer_method(HistoryBuffer, name)
    with pytest.raises(pickle.UnpicklingError):
        _history_buffer_method(os, 'system')


@pytest.mark.parametrize('make', PAYLOADS, ids=lambda f: f.__name__)
def test_payload_through_mmdet_apis(tmp_path, make):
    """init_detector, and so DetInferencer and mmdet's tools, refuse it."""
    from mmdet.apis import init_detector

    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save(make(str(marker)), path)
    config = get_config_file('quickstart/efficientdet_lite0_1xb8-12e_shapes')
    with pytest.raises(pickle.UnpicklingError, match='system'):
        init_detector(config, str(path), device='cpu')
    assert not marker.exists()
