"""COCO evaluation of models whose labels are COCO category ids."""

from typing import Optional, Sequence

import numpy as np
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS

_PER_DETECTION = ('bboxes', 'scores', 'labels', 'mask_scores', 'masks')


@METRICS.register_module()
class CocoCategoryIdMetric(CocoMetric):
    """:class:`~mmdet.evaluation.CocoMetric` for labels that are category ids.

    The TF EfficientDet checkpoints (and effdet's ports) predict COCO's 90
    category ids: output ``i`` is category id ``i + label_offset``, while
    mmdet's ``CocoDataset`` numbers its 80 categories 0-79. This metric
    reads each predicted label as a category id and drops detections of
    ids the annotation file does not evaluate (the 10 unused COCO ids);
    everything else is ``CocoMetric``'s. The ground truth is the ordinary
    ``CocoDataset``'s, so ``ann_file`` (the category ids) is required.

    Args:
        label_offset (int): Category id of label 0. Defaults to 1.
        ann_file (str): COCO annotation file.
        **kwargs: As :class:`~mmdet.evaluation.CocoMetric`.

    Example:
        >>> import numpy as np
        >>> self = CocoCategoryIdMetric.__new__(CocoCategoryIdMetric)
        >>> self.label_offset, self.cat_ids = 1, [1, 3, 90]
        >>> result = dict(labels=np.array([0, 1, 2, 89]),
        ...               scores=np.ones(4), bboxes=np.zeros((4, 4)))
        >>> self.dataset_labels(result)['labels'].tolist()
        [0, 1, 2]
    """

    def __init__(
        self,
        ann_file: Optional[str] = None,
        label_offset: int = 1,
        **kwargs,
    ) -> None:
        if ann_file is None:
            raise ValueError(
                'CocoCategoryIdMetric needs the ann_file whose category ids '
                'the labels are'
            )
        super().__init__(ann_file=ann_file, **kwargs)
        self.label_offset = label_offset

    def dataset_labels(self, result: dict) -> dict:
        """``result`` with category-id labels turned into dataset labels."""
        index = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        cat_ids = np.asarray(result['labels']) + self.label_offset
        keep = np.array([c in index for c in cat_ids.tolist()], dtype=bool)
        out = dict(result)
        for key in _PER_DETECTION:
            if key not in result:
                continue
            value = result[key]
            if isinstance(value, np.ndarray):
                out[key] = value[keep]
            else:
                out[key] = [v for v, k in zip(value, keep) if k]
        out['labels'] = np.array(
            [index[c] for c in cat_ids[keep].tolist()], dtype=np.int64
        )
        return out

    def results2json(
        self, results: Sequence[dict], outfile_prefix: str
    ) -> dict:
        return super().results2json(
            [self.dataset_labels(r) for r in results], outfile_prefix
        )
