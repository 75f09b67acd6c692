"""Thin handlers mapping Tencent actions to domain calls; every module here registers its actions on import."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
