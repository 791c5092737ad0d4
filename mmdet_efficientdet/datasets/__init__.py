from .checked_coco import AnnotationError, CheckedCocoDataset
from .image_check import ImageFileError, inspect_image
from .photo_objects import make_photo_objects
from .shapes import CLASSES as SHAPES_CLASSES
from .shapes import make_shapes_dataset

__all__ = [
    'AnnotationError',
    'CheckedCocoDataset',
    'ImageFileError',
    'SHAPES_CLASSES',
    'inspect_image',
    'make_photo_objects',
    'make_shapes_dataset',
]
