"""``bottomup annotate``: serve the annotation page for a folder of images."""

from __future__ import annotations

import os
import sys

_DESCRIPTION = """\
Open a folder of images in the browser and segment them with a few scribbles: every stroke is
completed at once along the image's hierarchy (each region takes the label of the scribble it
reaches at the smallest ultrametric distance, Arbelaez et al., TPAMI 2011, section 5).

The hierarchy of each image is the engine's best (learned contours when torch is installed, gPb
otherwise; --contours picks one), computed once in a background process when the image is first
opened and cached in FOLDER/annotations/.cache. Saving writes FOLDER/annotations/<stem>.png (labels
0..K, 8 or 16 bit gray) and <stem>.json (COCO RLE, one annotation per label), atomically.

The server listens on 127.0.0.1 (this machine only) unless --host says otherwise; it has no
authentication, so do not expose it to a network you do not trust. Needs the `app` extra:
pip install 'bottomup[app]'. Keys on the page: press ? there."""


def register(subparsers) -> None:
    """Add the ``annotate`` subcommand to a ``bottomup`` argument parser."""
    from bottomup.cli import add_command

    p = add_command(subparsers, "annotate", run,
                    "segment a folder of images interactively in the browser (local web app)",
                    _DESCRIPTION)
    p.add_argument("folder", metavar="FOLDER", help="folder of images (annotations go to FOLDER/annotations)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--contours", choices=("auto", "learned", "gpb"), default="auto",
                   help="contours of the hierarchies: auto (default: learned when torch is installed, "
                   "else gPb), learned or gpb")
    p.add_argument("--labels", default="",
                   help="comma-separated label names for labels 1, 2, ... (COCO categories)")
    p.add_argument("--max-body-mb", type=float, default=64.0,
                   help="largest request body accepted, in MiB (default 64)")


def run(args) -> int:
    """Execute ``bottomup annotate``; returns the exit status."""
    try:
        import uvicorn

        from bottomup.annotate.server import create_app
    except ImportError as exc:
        print(f"bottomup annotate: error: {exc}; install the web app's extra: "
              "pip install 'bottomup[app]'", file=sys.stderr)
        return 2
    if not os.path.isdir(args.folder):
        print(f"bottomup annotate: error: FOLDER {args.folder!r} is not a directory", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"bottomup annotate: error: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if args.host not in hosts:
        hosts = ["*"] if args.host in ("0.0.0.0", "::") else hosts + [args.host]
    app = create_app(args.folder, contours=args.contours, labels=labels, allowed_hosts=hosts,
                     max_body=int(args.max_body_mb * 1024 * 1024))
    ws = app.state.workspace
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)

    # print the URL once the socket is bound (with --port 0 the port is known only then)
    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        if server.started:
            port = args.port
            for srv in getattr(server, "servers", []):
                for sock in srv.sockets:
                    port = sock.getsockname()[1]
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"bottomup annotate: {len(ws.images())} image(s) in {ws.folder}, hierarchies from "
                  f"{ws.tag} contours", flush=True)
            print(f"open http://{host}:{port}/ in a browser (Ctrl+C stops)", flush=True)

    server.startup = startup
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled
        pass
    finally:
        ws.close()
    print("bottomup annotate: stopped", flush=True)
    return 0
