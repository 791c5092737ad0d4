from .coco_category_id_metric import CocoCategoryIdMetric

__all__ = ['CocoCategoryIdMetric']
