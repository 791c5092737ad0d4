# The quickstart config's name before the configs followed mmdet's naming
# (configs/efficientdet/README.md); kept for configs that inherit it.
_base_ = './efficientdet_lite0_1xb8-12e_shapes.py'
