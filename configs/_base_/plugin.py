# Every config of this repo inherits this file: it registers the plugin's
# modules in mmdet's registries before anything is built. (mmdet's
# default_runtime.py sets default_scope = 'mmdet'.)
custom_imports = dict(
    imports=['mmdet_efficientdet'], allow_failed_imports=False
)
