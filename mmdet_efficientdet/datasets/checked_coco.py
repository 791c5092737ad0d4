"""A COCO dataset that checks its annotations before training starts.

mmdet's ``CocoDataset`` silently drops boxes it cannot use (zero width,
an undeclared category), fails on a corrupt json with pycocotools'
bare ``JSONDecodeError``, and finds a missing or unreadable image only
when the data loader reaches it, mid-epoch; an image whose recorded size
is not its file's trains silently on misplaced boxes. This subclass reads
everything up front: problems that lose data raise an error naming the
file and the record; problems that only skip records are logged with
their count and an example.
"""

import json
import logging
import os.path as osp
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from .image_check import ImageFileError, ImageInfo, inspect_image

# the check reads a few KiB per file: 30-60 us each from the page cache
# (measured, 640x480 JPEG and PNG), ~5 s for COCO's 118k train images.
# Threads overlap the latency of cold or network storage (file reads
# release the GIL); with warm files they add ~50% of GIL contention.
CHECK_THREADS = 8
PROGRESS_EVERY_S = 10.0


class AnnotationError(ValueError):
    """An annotation file that cannot be trained on as it is."""


def _read_json(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file {path!r} does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise AnnotationError(
            f'annotation file {path!r} is not valid JSON: {err.msg} at line '
            f'{err.lineno}, column {err.colno} (char {err.pos})'
        ) from err
    except UnicodeDecodeError as err:
        raise AnnotationError(
            f'annotation file {path!r} is not UTF-8 text: {err}'
        ) from err
    if not isinstance(coco, dict):
        raise AnnotationError(
            f'annotation file {path!r} holds a '
            f'{type(coco).__name__}, not a COCO dict'
        )
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(
                f'annotation file {path!r} has no {key!r} list'
            )
    return coco


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that validates its annotation file and images.

    Errors (raised when the dataset is built, before training starts):
    a missing or corrupt json; an annotation whose ``category_id`` the file
    does not declare; a class of ``metainfo`` missing from the file's
    categories; a bbox that is not four numbers; image files that do not
    exist, cannot be loaded (not an image, truncated: see
    :mod:`.image_check`) or whose size differs from the record's
    ``width`` / ``height``. Logged skips: boxes narrower or lower than
    1 px (which mmdet ignores); what ``filter_cfg`` drops for training -
    images with a side under ``min_size`` (set it to the detector's
    largest stride) and, with ``filter_empty_gt``, images without boxes.
    A dataset left empty by the skips is an error.

    Args:
        check_files (bool): Check every image file (exists, loads, has
            the recorded size), reading a few KiB of each. Defaults to
            True.
        **kwargs: Passed to :class:`mmdet.datasets.CocoDataset`.
    """

    def __init__(self, *args, check_files: bool = True, **kwargs) -> None:
        self.check_files = check_files
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        with get_local_path(
            self.ann_file, backend_args=self.backend_args
        ) as local_path:
            self._check_annotations(_read_json(local_path))
        data_list = super().load_data_list()
        if self.check_files:
            self._check_image_files(data_list)
        return data_list

    def _check_annotations(self, coco: dict) -> None:
        path = self.ann_file
        declared: Dict[int, str] = {
            c['id']: c.get('name') for c in coco['categories']
        }
        missing_classes = [
            name
            for name in self.metainfo.get('classes', ())
            if name not in declared.values()
        ]
        if missing_classes:
            raise AnnotationError(
                f'{path!r}: classes {missing_classes} of the dataset '
                "metainfo are not among the file's categories "
                f'{sorted(n for n in declared.values() if n)}'
            )
        image_ids = {img['id'] for img in coco['images']}
        degenerate = []
        for ann in coco['annotations']:
            where = (
                f'{path!r}: annotation id {ann.get("id")} (image id '
                f'{ann.get("image_id")})'
            )
            if ann.get('category_id') not in declared:
                raise AnnotationError(
                    f'{where} has category_id {ann.get("category_id")}, '
                    f'which the file does not declare (declared: '
                    f'{sorted(declared)})'
                )
            if ann.get('image_id') not in image_ids:
                raise AnnotationError(
                    f'{where} refers to an image id that is not in "images"'
                )
            bbox = ann.get('bbox')
            if not (
                isinstance(bbox, list)
                and len(bbox) == 4
                and all(isinstance(v, (int, float)) for v in bbox)
            ):
                raise AnnotationError(
                    f'{where} has bbox {bbox!r}; expected [x, y, w, h]'
                )
            if bbox[2] < 1 or bbox[3] < 1:
                degenerate.append(ann)
        if degenerate:
            first = degenerate[0]
            print_log(
                f'{path}: skipping {len(degenerate)} boxes narrower or '
                f'lower than 1 px, e.g. annotation id {first.get("id")} '
                f'(image id {first["image_id"]}) bbox {first["bbox"]}',
                logger='current',
                level=logging.WARNING,
            )

    def _check_image_files(self, data_list: List[dict]) -> None:
        missing = [
            d['img_path'] for d in data_list if not osp.isfile(d['img_path'])
        ]
        if missing:
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} of {len(data_list)} image '
                f'files do not exist: {_first_few(missing)}'
            )
        infos = _inspect_all([d['img_path'] for d in data_list])
        unreadable = [
            f'{d["img_path"]} ({info.problem})'
            for d, info in zip(data_list, infos)
            if info.problem
        ]
        if unreadable:
            raise ImageFileError(
                f'{self.ann_file}: {len(unreadable)} of {len(data_list)} '
                f'image files cannot be loaded: {_first_few(unreadable)}'
            )
        wrong_size = [
            _size_mismatch(d, info)
            for d, info in zip(data_list, infos)
            if info.size != (d['width'], d['height'])
        ]
        if wrong_size:
            raise AnnotationError(
                f'{self.ann_file}: {len(wrong_size)} of {len(data_list)} '
                "image records state a size other than their file's; "
                'boxes would be placed on the wrong pixels: '
                f'{_first_few(wrong_size)}'
            )

    def filter_data(self) -> List[dict]:
        """mmdet's filtering (``filter_cfg``), with a log of what it drops.

        Raises:
            AnnotationError: when no image is left.
        """
        kept = super().filter_data()
        if self.test_mode:
            return kept
        kept_ids = {id(info) for info in kept}
        min_size = (self.filter_cfg or {}).get('min_size', 0)
        reasons: Counter = Counter()
        for info in self.data_list:
            if id(info) in kept_ids:
                continue
            if min(info['width'], info['height']) < min_size:
                reasons[f'smaller than {min_size} px'] += 1
            else:
                reasons['without usable boxes'] += 1
        if reasons:
            detail = ', '.join(f'{n} {why}' for why, n in reasons.items())
            print_log(
                f'{self.ann_file}: skipped images: {detail}',
                logger='current',
                level=logging.WARNING,
            )
        if not kept:
            raise AnnotationError(
                f'{self.ann_file}: no image left to train on '
                f'({len(self.data_list)} read, all skipped)'
            )
        return kept


def _first_few(items: List[str], shown: int = 5) -> str:
    more = len(items) - shown
    return ', '.join(items[:shown]) + (f' and {more} more' if more > 0 else '')


def _size_mismatch(info: dict, found: ImageInfo) -> str:
    recorded = f'{info["width"]}x{info["height"]}'
    actual = f'{found.size[0]}x{found.size[1]}'
    if found.size != found.stored:
        actual += (
            f' (stored {found.stored[0]}x{found.stored[1]}, turned by its '
            'EXIF orientation when loaded)'
        )
    return (
        f'image id {info["img_id"]} {info["img_path"]}: recorded '
        f'{recorded}, file {actual}'
    )


def _inspect_all(paths: List[str]) -> List[ImageInfo]:
    """:func:`inspect_image` of every path, in threads (the work is file
    reads), logging progress when it takes long."""
    infos: List[ImageInfo] = []
    start = last_log = time.monotonic()
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        for info in pool.map(inspect_image, paths):
            infos.append(info)
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_S:
                last_log = now
                print_log(
                    f'checked {len(infos)} of {len(paths)} image files '
                    f'({now - start:.0f} s; check_files=False skips this)',
                    logger='current',
                )
    if last_log != start:
        print_log(
            f'checked {len(paths)} image files in '
            f'{time.monotonic() - start:.0f} s',
            logger='current',
        )
    return infos
