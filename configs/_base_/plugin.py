# Every config of this repo inherits this file: it registers the plugin's
# modules in mmdet's registries before anything is built.
custom_imports = dict(
    imports=['mmdet_efficientdet'], allow_failed_imports=False
)
default_scope = 'mmdet'
