from .checked_coco import AnnotationError, CheckedCocoDataset
from .shapes import CLASSES as SHAPES_CLASSES
from .shapes import make_shapes_dataset

__all__ = [
    'AnnotationError',
    'CheckedCocoDataset',
    'SHAPES_CLASSES',
    'make_shapes_dataset',
]
