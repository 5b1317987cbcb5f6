"""`gpu-kata-installer serve`: the same wizard in a web browser, through textual-serve.

textual-serve starts one process per browser session from a shell command; ours runs this
installer's own wizard (`python -m screens.cli --wizard`) with the flags `serve` was given,
so every session opens on the same answers and cluster. Only paths and names go on that
command line: secrets stay in the files and the environment it inherits.

The server refuses requests that installer/commands/serve.py says may not drive the wizard
(a foreign page's websocket, a rebinding host name, a browser without the session's token),
because the session it opens can change hosts and the cluster. The token comes in the address
`serve` prints; the first page load trades it for a cookie (HttpOnly, SameSite=Strict) and
sends the browser on to the same page without it, so it stays out of the history.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from aiohttp import web
from rich.logging import RichHandler
from textual_serve.server import Server

from installer.commands.serve import (
    cookie_name,
    host_allowed,
    new_token,
    origin_allowed,
    token_matches,
)
from installer.errors import Problem, UserError, os_problem


def session_argv(args: argparse.Namespace) -> list[str]:
    """The wizard one browser session runs: this interpreter, the console script's module,
    and the wizard's own flags from `serve`'s."""
    argv = [sys.executable, "-m", "screens.cli", "--wizard"]
    if args.answers is not None:
        argv += ["--answers", str(args.answers.resolve())]
    if args.facts is not None:
        argv += ["--facts", str(args.facts.resolve())]
    if args.kubeconfig:
        argv += ["--kubeconfig", args.kubeconfig]
    if args.context:
        argv += ["--context", args.context]
    return argv


class GuardedServer(Server):
    """textual-serve's server, answering only requests allowed to drive the wizard, and
    building its page's URLs from the address the browser used (a bound 0.0.0.0 is not one
    a browser can open)."""

    def __init__(self, command: str, host: str, port: int, allow_remote: bool,
                 token: str) -> None:
        super().__init__(command, host=host, port=port, title="gpu-kata-installer")
        self.allow_remote = allow_remote
        self.token = token
        self.cookie = cookie_name(port)

    def initialize_logging(self) -> None:
        """textual-serve's logging, without what would write the token again: the access
        log's request lines (the first carries `?token=`) and the locals its tracebacks
        print."""
        super().initialize_logging()
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, RichHandler):
                handler.tracebacks_show_locals = False

    async def on_startup(self, app: web.Application) -> None:
        """The address to open, on a line of its own (a wrapped one would not open)."""
        print(f"gpu-kata-installer serve: open {self.public_url}/?token={self.token}\n"
              "(the token is this session's: whoever has the address can drive the wizard)\n"
              "Ctrl-C stops serving.", flush=True)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if not host_allowed(request.host, self.host, self.allow_remote):
            raise web.HTTPForbidden(text="this wizard answers on a loopback address only\n")
        if request.path == "/ws" and not origin_allowed(request.headers.get("Origin"),
                                                        request.host):
            raise web.HTTPForbidden(text="only the wizard's own page may open a session\n")
        if token_matches(request.query.get("token"), self.token):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPSeeOther(str(request.rel_url.with_query(rest)))
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict",
                                path="/")
            raise response
        if not token_matches(request.cookies.get(self.cookie), self.token):
            raise web.HTTPForbidden(text="open the address `gpu-kata-installer serve` printed:"
                                    " it carries this session's token\n")
        self.public_url = f"{request.scheme}://{request.host}"
        return await handler(request)


def serve_wizard(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (each open session's wizard is told to quit). The
    answers and facts files are read first: a bad one is exit 2 here, not a blank page."""
    from installer.answers.model import load_answers
    from installer.cluster.factsfile import load_recorded_facts

    if args.answers is not None:
        load_answers(args.answers)
    if args.facts is not None:
        load_recorded_facts(args.facts)
    server = GuardedServer(shlex.join(session_argv(args)), args.host, args.port,
                           args.allow_remote, new_token())
    try:
        server.serve()
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host} port {args.port}", [Problem(
            "--host/--port", os_problem(exc),
            "choose another --port (or stop what listens there)")]) from None
    return 0
