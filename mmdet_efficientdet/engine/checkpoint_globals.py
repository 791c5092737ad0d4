"""Load mmengine checkpoints under torch's weights-only loading.

torch >= 2.6 loads checkpoints weights-only by default, and mmengine 0.10.7
calls ``torch.load`` without ``weights_only``, so a training checkpoint
stops mmdet's ``tools/test.py``, ``init_detector``, ``DetInferencer`` and
``--resume`` with ``Unsupported global: GLOBAL
mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's logged
scalars, held in numpy arrays and scalars, and their statistics methods,
pickled as ``getattr(HistoryBuffer, 'mean')``).

Rather than switching weights-only loading off - which would unpickle any
object a checkpoint file names - importing the package adds exactly the
data-only classes such a checkpoint holds to torch's allow-list
(:func:`register_checkpoint_globals`). It is done at import, not around our
own tools' calls, because a config's ``custom_imports`` runs only that
import: mmdet's and mmengine's entry points then load our checkpoints with
weights-only loading still on, and a checkpoint naming anything else (a
function, a class with side effects) is still refused.
"""

import pickle
from typing import Callable, List

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


def register_checkpoint_globals() -> None:
    """Add :func:`allowed_checkpoint_globals` to torch's weights-only
    allow-list for the rest of the process (idempotent)."""
    torch.serialization.add_safe_globals(allowed_checkpoint_globals())
