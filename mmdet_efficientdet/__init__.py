"""EfficientDet for MMDetection 3.x.

Importing this package registers every module in mmdet's own registries
(``MODELS``, ``TASK_UTILS``, ``DATASETS``, ``OPTIM_WRAPPERS``, ``HOOKS``),
the ``effdet://`` checkpoint scheme, and the data-only globals of our
checkpoints in torch's weights-only allow-list. Configs pull it in with
``custom_imports = dict(imports=['mmdet_efficientdet'])``, so mmdet's own
tools get all of it.
"""

from . import (  # noqa: F401  (registers)
    convert,
    datasets,
    engine,
    evaluation,
    models,
)
from .engine import register_checkpoint_globals
from .package_files import get_config_file, package_files_root

register_checkpoint_globals()

__version__ = '0.1.0'
__all__ = ['get_config_file', 'package_files_root']
