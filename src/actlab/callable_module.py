"""`actlab.report(run)`, `actlab.search(...)` and `actlab.diff(a, b)` are functions named
like the subpackages and module that hold them. Python sets the package attribute
`actlab.report` to the subpackage as soon as anything imports `actlab.report.<part>`, so the
name cannot stay a plain function: the subpackage itself is made callable instead, and the
call goes to the function (imported when first called, so importing the package stays
light)."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module_name, attr = self.__call_target__
        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)


def callable_as(module_name: str, target: str) -> None:
    """Make the module `module_name` callable as the function `target` ('module:attr')."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module.__call_target__ = tuple(target.split(":"))
