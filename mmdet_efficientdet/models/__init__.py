from . import backbones, dense_heads, detectors, layers, necks, task_modules

__all__ = [
    'backbones',
    'dense_heads',
    'detectors',
    'layers',
    'necks',
    'task_modules',
]
