"""check_checkpoint / latest_intact_checkpoint on small torch files."""

import logging
import os
import zipfile

import pytest
import torch
from mmengine.logging import MMLogger

from mmdet_efficientdet.engine.checkpoint_check import (
    CheckpointError,
    check_checkpoint,
    latest_intact_checkpoint,
)


def save(path, **kwargs):
    """A checkpoint-like file; its tensor data fill most of the file."""
    torch.save(dict(state_dict=dict(w=torch.arange(20000.0))), path, **kwargs)
    return str(path)


def cut(path, keep):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:keep])


class Collected(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings():
    logger = MMLogger.get_current_instance()
    handler = Collected()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_intact_checkpoints_pass(tmp_path):
    check_checkpoint(save(tmp_path / 'a.pth'))
    # torch's pre-1.6 format is no zip archive: not checked, accepted
    check_checkpoint(
        save(tmp_path / 'b.pth', _use_new_zipfile_serialization=False)
    )
    # remote paths are left to the loader
    check_checkpoint('https://example.com/model.pth')


@pytest.mark.parametrize(
    'keep', [-10, 40000, 100], ids=['end', 'half', 'head']
)
def test_truncated_checkpoint_is_named(tmp_path, keep):
    path = save(tmp_path / 'epoch_3.pth')
    cut(path, keep)
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint '\S+epoch_3\.pth' is truncated or not a torch "
        'checkpoint',
    ):
        check_checkpoint(path)


def test_flipped_byte_fails_its_crc(tmp_path):
    """torch.load reads such a file without a word, one weight changed."""
    path = save(tmp_path / 'epoch_3.pth')
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    with pytest.raises(
        CheckpointError,
        match=r"'\S+epoch_3\.pth' is corrupt: member '\S+/data/0' fails its "
        'CRC check',
    ):
        check_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint\n')
    with pytest.raises(CheckpointError, match='notes.pth'):
        check_checkpoint(str(text))
    other_zip = tmp_path / 'other.pth'
    with zipfile.ZipFile(other_zip, 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    with pytest.raises(CheckpointError, match='holds no data.pkl'):
        check_checkpoint(str(other_zip))
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        check_checkpoint(str(tmp_path / 'nothere.pth'))


def work_dir(tmp_path, names, latest):
    """Checkpoints written in the order of ``names`` (older first) and
    MMEngine's ``last_checkpoint`` pointing at ``latest``."""
    for i, name in enumerate(names):
        path = save(tmp_path / name)
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / latest))
    return str(tmp_path)


def test_auto_resume_takes_the_intact_latest(tmp_path, warnings):
    assert latest_intact_checkpoint(str(tmp_path)) is None
    work = work_dir(tmp_path, ['epoch_1.pth', 'epoch_2.pth'], 'epoch_2.pth')
    assert latest_intact_checkpoint(work) == str(tmp_path / 'epoch_2.pth')
    assert not warnings


def test_auto_resume_falls_back_from_a_truncated_latest(tmp_path, warnings):
    names = ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
    work = work_dir(tmp_path, names, 'epoch_3.pth')
    cut(str(tmp_path / 'epoch_3.pth'), 1000)
    assert latest_intact_checkpoint(work) == str(tmp_path / 'epoch_2.pth')
    assert len(warnings) == 1
    assert (
        f'the latest checkpoint {tmp_path}/epoch_3.pth cannot be resumed from'
        in warnings[0]
    )
    assert 'is truncated' in warnings[0]
    assert (
        f'resuming from the newest intact checkpoint, {tmp_path}/epoch_2.pth'
        in warnings[0]
    )


def test_auto_resume_without_an_intact_checkpoint(tmp_path):
    work = work_dir(tmp_path, ['epoch_1.pth'], 'epoch_1.pth')
    cut(str(tmp_path / 'epoch_1.pth'), 1000)
    with pytest.raises(
        CheckpointError,
        match=r'epoch_1\.pth.* is truncated.*holds no other intact '
        'checkpoint',
    ):
        latest_intact_checkpoint(work)
