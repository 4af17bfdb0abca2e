"""pydantic's plugin discovery, which the command line does without.

pydantic looks up third-party plugins through importlib.metadata when it
builds its first model (about 30 ms of start-up); the command line's own
models use none. The library, imported by a program, leaves the program's
plugins alone: only the ``archspec`` command calls
:func:`skip_plugin_discovery`.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

LOADER = "pydantic.plugin._loader"


def skip_plugin_discovery() -> None:
    """Turn pydantic's plugins off (unless PYDANTIC_DISABLE_PLUGINS says otherwise).

    With plugins off, pydantic's plugin loader only says "no plugins", yet
    importing it imports importlib.metadata (about 11 ms, 5 % of ``archspec
    check``). A stand-in module says the same; anything else asked of it
    loads the real loader, so a pydantic whose loader grew other functions
    still gets them.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] != "__all__" or LOADER in sys.modules:
        return
    stand_in = ModuleType(LOADER, "Stands in for pydantic's plugin loader while plugins are off.")

    def real(attribute: str) -> object:
        if attribute.startswith("__"):  # the import system probing (__path__): not pydantic
            raise AttributeError(attribute)
        sys.modules.pop(LOADER, None)
        return getattr(importlib.import_module(LOADER), attribute)

    stand_in.get_plugins = tuple  # type: ignore[attr-defined]  # what it returns when disabled
    stand_in.__getattr__ = real  # type: ignore[method-assign]
    sys.modules[LOADER] = stand_in
