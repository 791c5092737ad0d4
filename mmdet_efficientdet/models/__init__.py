from . import backbones, dense_heads, layers, necks, task_modules

__all__ = [
    'backbones',
    'dense_heads',
    'layers',
    'necks',
    'task_modules',
]
