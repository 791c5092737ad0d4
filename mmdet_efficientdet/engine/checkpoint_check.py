"""Name a truncated or corrupt checkpoint instead of torch's traceback.

``torch.load`` of a checkpoint cut short (a full disk, a copy or a job
killed while saving) fails deep inside the runner with ``PytorchStreamReader
failed reading zip archive: failed finding central directory``, naming no
file. Checkpoints written by torch >= 1.6 are zip archives, so
:func:`check_checkpoint` reads the archive's central directory (at the end
of the file: a truncated file has none) and the CRC-32 of every member
(one read of the file, a fraction of what loading it costs). Files in
torch's legacy (pre-zip) format cannot be checked this cheaply and pass.
"""

import glob
import logging
import os.path as osp
import zipfile
from typing import Optional

from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

# torch's legacy format starts with a pickle (protocol 2: 0x80 0x02)
PICKLE_START = b'\x80'


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded."""


def check_checkpoint(path: str) -> None:
    """Raise :class:`CheckpointError` naming ``path`` if it is truncated or
    corrupt; remote paths (``scheme://``) are left to the loader."""
    if '://' in path and not osp.exists(path):
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} not found')
    if not zipfile.is_zipfile(path):
        with open(path, 'rb') as f:
            if f.read(1) == PICKLE_START:
                return  # legacy torch format: not checkable cheaply
        raise CheckpointError(
            f'checkpoint {path!r} is truncated or not a torch checkpoint: '
            'it has no zip central directory at its end (torch saves zip '
            'archives)'
        )
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(n.endswith('data.pkl') for n in archive.namelist()):
                raise CheckpointError(
                    f'checkpoint {path!r} is a zip archive but not a torch '
                    'checkpoint: it holds no data.pkl'
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CheckpointError(
            f'checkpoint {path!r} is corrupt: {err}'
        ) from err
    if bad is not None:
        raise CheckpointError(
            f'checkpoint {path!r} is corrupt: member {bad!r} fails its CRC '
            'check'
        )


def latest_intact_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint that ``--resume`` without a path resumes from.

    MMEngine's choice (the file ``work_dir/last_checkpoint`` names) when it
    is intact; otherwise, with a warning naming both files, the newest
    intact ``*.pth`` in ``work_dir``. None when there is no checkpoint.

    Raises:
        CheckpointError: the latest checkpoint is unreadable and no other
            is intact.
    """
    latest = find_latest_checkpoint(work_dir)
    if latest is None:
        return None
    try:
        check_checkpoint(latest)
        return latest
    except (CheckpointError, FileNotFoundError) as err:
        problem = err
    others = sorted(
        (p for p in glob.glob(osp.join(work_dir, '*.pth')) if p != latest),
        key=lambda p: (osp.getmtime(p), p),
        reverse=True,
    )
    for path in others:
        try:
            check_checkpoint(path)
        except CheckpointError:
            continue
        print_log(
            f'the latest checkpoint {latest} cannot be resumed from '
            f'({problem}); resuming from the newest intact checkpoint, '
            f'{path}',
            logger='current',
            level=logging.WARNING,
        )
        return path
    raise CheckpointError(
        f'{problem}; {work_dir} holds no other intact checkpoint to resume '
        'from (remove the broken one to train from scratch)'
    ) from problem
