"""``bottomup annotate``: interactive segmentation of a folder of images in the browser.

A local web app (Starlette + uvicorn, the ``app`` extra) over :class:`Workspace`: each image's
hierarchy is computed once in the background (:func:`bottomup.interactive.default_hierarchy`)
and cached beside the annotations; every scribble is completed along it by
:func:`bottomup.interactive.segment` (Arbelaez et al., TPAMI 2011, section 5). See
``docs/annotate.md``.

:class:`Workspace` (the folder, the cache, the annotations) needs no web framework;
:func:`create_app` imports Starlette when first used.
"""

from bottomup.annotate.workspace import Pending, RequestError, Workspace

__all__ = ["Pending", "RequestError", "Workspace", "create_app"]


def __getattr__(name):
    if name == "create_app":
        from bottomup.annotate.server import create_app

        return create_app
    raise AttributeError(f"module 'bottomup.annotate' has no attribute {name!r}")
