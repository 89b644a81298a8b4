"""The HTTP face of ``bottomup annotate``: a Starlette app over a :class:`Workspace`.

Endpoints (every error is a 4xx/5xx with a JSON body ``{"error": message, "status": code}``):

=======  ======================================  ==================================================
method   path                                    answer
=======  ======================================  ==================================================
GET      /                                       the page (static HTML/JS/CSS of the package)
GET      /api/images                             JSON list of image file names (``?details=1``:
                                                 dicts with ``annotated`` and ``hierarchy`` state)
GET      /api/images/{name}/image                the image (as stored, or converted to PNG when a
                                                 browser cannot show the format)
GET      /api/images/{name}/ucm2.npz             the hierarchy's ucm2 (``bottomup.write_ucm2``
                                                 ``.npz``); 202 + JSON progress while computing
POST     /api/images/{name}/segment              body: scribbles PNG (gray, image size, 0 = none,
                                                 1..K) -> labels PNG
                                                 (= ``bottomup.interactive.segment``)
PUT      /api/images/{name}/annotation           body: label PNG -> ``annotations/<stem>.png``
                                                 and ``<stem>.json`` (COCO RLE), atomically
GET      /api/images/{name}/annotation           the saved PNG (``?format=coco``: the JSON)
PUT/GET  /api/images/{name}/scribbles            the scribbles behind the annotation (PNG)
=======  ======================================  ==================================================
"""

from __future__ import annotations

import contextlib
import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from bottomup.annotate.workspace import BROWSER_EXTENSIONS, Pending, RequestError, Workspace

_LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestError(413, f"request body of {declared} bytes is over the limit of {limit}")
        except ValueError:
            raise RequestError(400, f"bad Content-Length header {declared!r}") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _HostGuard:
    """Refuse (400, JSON) requests whose Host header is not one of ``hosts`` (DNS rebinding)."""

    def __init__(self, app, hosts):
        self.app = app
        self.hosts = set(hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "*" not in self.hosts:
            host = Headers(scope=scope).get("host", "")
            host = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]
            if host not in self.hosts:
                resp = _error(400, f"Host header {host!r} is not an address of this server "
                                   f"(accepted: {sorted(self.hosts)}; see --host)")
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _lifespan(ws: Workspace):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            ws.close()

    return lifespan


def create_app(folder, *, contours: str = "auto", hierarchy_fn=None, workers: str = "process",
               max_body: int | None = None, labels=(), allowed_hosts=None) -> Starlette:
    """Build the ``bottomup annotate`` web app for a folder of images.

    Parameters
    ----------
    folder : str or path-like
        Folder of images; annotations are written to ``folder/annotations``.
    contours, hierarchy_fn, workers, max_body, labels
        As :class:`bottomup.annotate.Workspace` (``max_body`` None: its default).
    allowed_hosts : list of str, optional
        Host headers accepted (DNS-rebinding guard); default: the loopback names.

    Returns
    -------
    app : starlette.applications.Starlette
        ``app.state.workspace`` is the :class:`Workspace`; it is closed on shutdown.
    """
    kw = {} if max_body is None else {"max_body": max_body}
    ws = Workspace(folder, contours=contours, hierarchy_fn=hierarchy_fn, workers=workers,
                   labels=labels, **kw)

    async def list_images(request: Request):
        if request.query_params.get("details") in ("1", "true", "yes"):
            return JSONResponse(await run_in_threadpool(ws.details))
        return JSONResponse(ws.images())

    async def config(request: Request):
        return JSONResponse({"folder": os.path.basename(ws.folder) or ws.folder, "contours": ws.tag,
                             "labels": ws.label_names, "max_body": ws.max_body})

    async def image(request: Request):
        name = ws.check_name(request.path_params["name"])
        path = ws.image_path(name)
        if os.path.splitext(name)[1].lower() in BROWSER_EXTENSIONS:
            return FileResponse(path)

        def convert() -> bytes:
            import cv2
            import numpy as np

            from bottomup.io import read_image

            rgb = read_image(path)
            ok, buf = cv2.imencode(".png", np.round(rgb[..., ::-1] * 255).astype(np.uint8))
            return buf.tobytes()

        return Response(await run_in_threadpool(convert), media_type="image/png")

    async def ucm2(request: Request):
        name = request.path_params["name"]
        try:
            path = await run_in_threadpool(ws.hierarchy_file, name)
        except Pending as p:
            return JSONResponse(p.progress, status_code=202, headers={"Retry-After": "1"})
        return FileResponse(path, media_type="application/octet-stream",
                            headers={"Cache-Control": "no-cache"})

    async def segment(request: Request):
        name = ws.check_name(request.path_params["name"])
        body = await _body(request, ws.max_body)
        try:
            png = await run_in_threadpool(ws.segment, name, body)
        except Pending as p:
            return JSONResponse(p.progress | {"error": "the hierarchy is still being computed; "
                                              "retry when GET ucm2.npz answers 200"},
                                status_code=409, headers={"Retry-After": "1"})
        return Response(png, media_type="image/png")

    async def annotation(request: Request):
        name = ws.check_name(request.path_params["name"])
        if request.method == "PUT":
            body = await _body(request, ws.max_body)
            return JSONResponse(await run_in_threadpool(ws.put_annotation, name, body))
        fmt = request.query_params.get("format", "png")
        out = await run_in_threadpool(ws.get_annotation, name, fmt)
        if fmt == "coco":
            return JSONResponse(out)
        return Response(out, media_type="image/png", headers={"Cache-Control": "no-cache"})

    async def scribbles(request: Request):
        name = ws.check_name(request.path_params["name"])
        if request.method == "PUT":
            body = await _body(request, ws.max_body)
            return JSONResponse(await run_in_threadpool(ws.put_scribbles, name, body))
        out = await run_in_threadpool(ws.get_scribbles, name)
        return Response(out, media_type="image/png", headers={"Cache-Control": "no-cache"})

    async def api_not_found(request: Request):
        allowed = sorted({m for r in routes[:-2] if r.matches(request.scope)[0] == Match.PARTIAL
                          for m in (r.methods or ()) if m != "HEAD"})
        if allowed:
            return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}; "
                                 f"use {', '.join(allowed)}", "status": 405}, status_code=405,
                                headers={"Allow": ", ".join(allowed)})
        return _error(404, f"no API endpoint {request.method} {request.url.path}")

    async def on_request_error(request: Request, exc: RequestError):
        return _error(exc.status, exc.message)

    async def on_http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    async def on_error(request: Request, exc: Exception):
        return _error(500, f"{type(exc).__name__}: {exc}")

    # {name:path} so that a name with an (encoded) '/' or '..' reaches check_name and gets a clear
    # 400 instead of matching nothing
    p = "/api/images/{name:path}"
    routes = [
        Route("/api/images", list_images, methods=["GET"]),
        Route("/api/config", config, methods=["GET"]),
        Route(p + "/image", image, methods=["GET"]),
        Route(p + "/ucm2.npz", ucm2, methods=["GET"]),
        Route(p + "/segment", segment, methods=["POST"]),
        Route(p + "/annotation", annotation, methods=["GET", "PUT"]),
        Route(p + "/scribbles", scribbles, methods=["GET", "PUT"]),
        Route("/api/{rest:path}", api_not_found,
              methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        Mount("/", StaticFiles(packages=[("bottomup.annotate", "static")], html=True), name="static"),
    ]
    hosts = list(allowed_hosts) if allowed_hosts is not None else _LOCAL_HOSTS
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_HostGuard, hosts=hosts)],
        exception_handlers={RequestError: on_request_error, HTTPException: on_http_error,
                            Exception: on_error},
        lifespan=_lifespan(ws),
    )
    app.state.workspace = ws
    return app
