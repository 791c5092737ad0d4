"""``load_from = 'effdet://PATH'``: an effdet release file, converted on load.

Registered as an mmengine checkpoint scheme, so the runner's
``load_from``, ``init_detector`` and every other mmengine loader read
effdet's own files (``tf_efficientdet_d0_34-f153e0cf.pth``) without a
separate conversion step. The variant comes from the file name, as for
``tools/model_converters/effdet_to_mmdet.py``, and the result is checked
as the converter checks it: every tensor of the variant's model, nothing
left over.
"""

from typing import Optional

from mmengine.runner import CheckpointLoader

from .effdet import EFFDET_VARIANTS, convert_effdet_file, guess_variant

EFFDET_SCHEME = 'effdet://'


@CheckpointLoader.register_scheme(prefixes=EFFDET_SCHEME)
def load_effdet_release(filename: str, map_location: Optional[str] = None):
    """mmengine checkpoint loader of ``effdet://PATH`` (read on the CPU)."""
    path = filename[len(EFFDET_SCHEME) :]
    name = guess_variant(path)
    if name is None:
        raise ValueError(
            f'{filename}: cannot tell the effdet variant from the file name; '
            "keep effdet's release name (one of "
            f'{sorted(EFFDET_VARIANTS)} followed by "-" or "_", e.g. '
            'tf_efficientdet_d0_34-f153e0cf.pth) or convert it with '
            'tools/model_converters/effdet_to_mmdet.py --variant NAME'
        )
    state, meta = convert_effdet_file(path, name)
    return dict(state_dict=state, meta=meta)
