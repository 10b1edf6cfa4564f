"""``labctl series watch``: a read-only web page of a series, live over server-sent events.

The rule: safe to leave open to a phone at 3 am. So

* it is a Starlette app on uvicorn (kept ASGI stack), GET routes only: the
  page, ``/api/state`` (the :func:`~labctl.series.watch_state.snapshot` as
  JSON), ``/events`` (the same document as server-sent events whenever it
  changes, polled every ``poll_s``) and ``/plots/NAME.png``;
* it listens on loopback unless told otherwise, and refuses to listen on any
  other interface without a token (:func:`check_exposure`); with a token, every
  request must carry it (``Authorization: Bearer T`` or ``?token=T``) or gets
  401 — the page passes it on to its event stream and plots;
* it only reads the series directory (see :mod:`labctl.series.watch_state`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import socket
import threading
from importlib import resources
from pathlib import Path

from labctl.errors import LabctlError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
POLL_S = 2.0  # how often the event stream re-reads the directory (a catalog read is ~10 ms)
TOKEN_ENV = "LABCTL_WATCH_TOKEN"


class WatchRefused(LabctlError):
    """The page cannot be served as asked (exposed without a token, no series here)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse a non-loopback interface without a token (the page shows the lab's night)."""
    if not is_loopback(host) and not token:
        raise WatchRefused(
            f"--host {host} exposes the watch page beyond this computer; give it a --token "
            f"(or set {TOKEN_ENV}) so only those who have it can read the series"
        )


class TokenGate:
    """ASGI middleware: 401 for any HTTP request without the token."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _allowed(self, scope) -> bool:
        from starlette.requests import HTTPConnection

        conn = HTTPConnection(scope)
        offered = conn.query_params.get("token", "")
        auth = conn.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        return hmac.compare_digest(offered.encode(), self.token)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            from starlette.responses import PlainTextResponse

            response = PlainTextResponse(
                "401 Unauthorized: this watch page needs its token "
                "(Authorization: Bearer TOKEN, or ?token=TOKEN in the address)\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    directory: str | Path,
    *,
    token: str | None = None,
    poll_s: float = POLL_S,
    require_series: bool = True,
):
    """The watch page's ASGI app for one series directory (``require_series=False``: one
    that is about to start, for ``series run --watch-port``)."""
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from labctl.series import watch_state

    directory = Path(directory)
    if require_series and not (directory / "catalog.sqlite").exists():
        raise WatchRefused(f"{directory}: no series here (no catalog.sqlite)")
    page = resources.files("labctl.series").joinpath("watch.html").read_text(encoding="utf-8")

    async def index(request):
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def state(request):
        try:
            return JSONResponse(await run_in_threadpool(watch_state.snapshot, directory))
        except LabctlError as exc:  # not started yet, or a catalog being replaced
            return JSONResponse({"error": str(exc)}, status_code=503)

    async def events(request):
        async def stream():
            last = None
            while True:
                try:
                    doc = await run_in_threadpool(watch_state.snapshot, directory)
                except LabctlError as exc:  # a catalog being replaced: say so, keep trying
                    doc = {"error": str(exc), "version": str(exc)}
                if doc["version"] != last:
                    last = doc["version"]
                    yield {"event": "state", "data": json.dumps(doc)}
                else:  # the ETA moves even when nothing else does
                    yield {"event": "eta", "data": json.dumps(doc.get("eta"))}
                await asyncio.sleep(poll_s)

        return EventSourceResponse(stream(), ping=15)

    async def plot(request):
        name = request.path_params["name"]
        if name not in watch_state.PLOTS:
            return Response(f"no plot {name!r}\n", status_code=404, media_type="text/plain")
        try:
            png = await run_in_threadpool(watch_state.plot_png, directory, name)
        except LabctlError:
            png = None
        if png is None:
            return Response(status_code=204)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    middleware = [Middleware(TokenGate, token=token)] if token else []
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/events", events),
            Route("/plots/{name}.png", plot),
        ],
        middleware=middleware,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port`` 0: any free port), so the URL is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=64)
    except OSError as exc:
        raise WatchRefused(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/"


class WatchServer:
    """The page served by uvicorn in a background thread (for ``series run --watch-port``
    and tests); :meth:`stop` ends it within ``timeout`` seconds."""

    def __init__(
        self,
        directory,
        *,
        host=DEFAULT_HOST,
        port=0,
        token=None,
        poll_s=POLL_S,
        require_series=True,
    ):
        import uvicorn

        check_exposure(host, token)
        app = create_app(directory, token=token, poll_s=poll_s, require_series=require_series)
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="watch", daemon=True
        )

    def start(self) -> WatchServer:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> WatchServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(directory, *, host=DEFAULT_HOST, port=DEFAULT_PORT, token=None, announce=print) -> None:
    """Serve the page in this thread until interrupted (Ctrl-C, SIGTERM)."""
    import uvicorn

    check_exposure(host, token)
    app = create_app(directory, token=token)
    sock = bind(host, port)
    announce(f"watch {url_of(sock, host)}" + (" (token required)" if token else ""))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
