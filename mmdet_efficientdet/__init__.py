"""EfficientDet for MMDetection 3.x.

Importing this package registers every module in mmdet's own registries
(``MODELS``, ``TASK_UTILS``, ``DATASETS``, ``OPTIM_WRAPPERS``); configs pull
it in with ``custom_imports = dict(imports=['mmdet_efficientdet'])``.
"""

from . import datasets, engine, evaluation, models  # noqa: F401  (registers)

__version__ = '0.1.0'
