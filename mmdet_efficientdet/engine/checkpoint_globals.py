"""Resume mmengine checkpoints under torch's weights-only loading.

torch >= 2.6 loads checkpoints weights-only by default, and mmengine 0.10.7
calls ``torch.load`` without ``weights_only``, so ``--resume`` stops with
``Unsupported global: GLOBAL mmengine.logging.history_buffer.HistoryBuffer``
(the message hub's logged scalars, held in numpy arrays and scalars, and
their statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')``).

Rather than switching weights-only loading off - which would unpickle any
object a checkpoint file names - :func:`checkpoint_safe_globals` allows
exactly the classes a training checkpoint of ours holds, and only inside
its ``with`` block.
"""

import contextlib
import pickle
from typing import Callable, Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals() -> List:
    """numpy's array/scalar reconstruction functions and dtype classes."""
    core = getattr(np, '_core', None) or np.core
    found = [
        np.ndarray,
        np.dtype,
        core.multiarray._reconstruct,
        core.multiarray.scalar,
    ]
    # numpy >= 1.25 pickles dtypes through their own classes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [
            getattr(dtypes, name)
            for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return found


def _history_buffer_method(owner: type, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while loading: only the statistics
    methods of ``HistoryBuffer`` may be looked up, nothing else."""
    # mmengine registers its own four on the first HistoryBuffer(); users
    # may register more with HistoryBuffer.register_statistics
    known = {
        'min',
        'max',
        'current',
        'mean',
        *HistoryBuffer._statistics_methods,
    }
    if owner is HistoryBuffer and name in known:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed'
    )


def allowed_checkpoint_globals() -> List:
    """Every non-tensor global an mmengine checkpoint of ours may hold."""
    return [
        HistoryBuffer,
        (_history_buffer_method, 'builtins.getattr'),
        *_numpy_globals(),
    ]


@contextlib.contextmanager
def checkpoint_safe_globals() -> Iterator[None]:
    """Allow :func:`allowed_checkpoint_globals` while the block runs."""
    with torch.serialization.safe_globals(allowed_checkpoint_globals()):
        yield
