"""EfficientDet for MMDetection 3.x.

Importing this package registers every module in mmdet's own registries
(``mmdet.registry.MODELS`` and ``TASK_UTILS``); configs pull it in with
``custom_imports = dict(imports=['mmdet_efficientdet'])``.
"""
from . import models  # noqa: F401  (registers the modules)

__version__ = '0.1.0'
