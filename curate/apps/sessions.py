"""The app's logins: sessions bound to their account's generation, a per-client back-off on failed logins, and
a cap on concurrent password checks so that logins cannot starve annotators' calls."""

# Gradio keeps its own map of session token -> user name (``App.tokens``) and sets ``app.tokens[token] = name``
# right after the auth callback accepts a login, in the same task. :class:`Sessions` replaces that map: the
# callback leaves the generation it verified in a context variable, and the stored name carries it, so
# ``gr.Request.username`` tells every handler which generation its session belongs to.

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import anyio

from curate.annotate.users import Login, check_login
from curate.project import Project

FREE_FAILURES = 10  # failed logins one client may make in a window before it must wait
WINDOW_S = 15 * 60.0  # a client's failures are forgotten this long after its last one
MAX_WAIT_S = 15 * 60.0  # the longest wait the back-off imposes
CONCURRENT_CHECKS = 1  # argon2 verifications at once (each takes a core for ~50 ms)
CHECKS_PER_CLIENT = 4  # one address's logins queued for a password check at once (the rest wait behind them)
QUEUED_PER_CLIENT = 32  # one address's logins under way at once; more are refused

_verified: ContextVar[tuple[str, int] | None] = ContextVar("curate_verified_login", default=None)


class SessionName(str):
    """A logged-in user's name as Gradio hands it to handlers, carrying its session's generation."""

    generation: int

    def __new__(cls, name: str, generation: int) -> SessionName:
        made = super().__new__(cls, name)
        made.generation = generation
        return made


class Sessions(dict[str, str]):
    """Gradio's session token -> user map, whose entries carry the generation the login verified."""

    def __setitem__(self, token: str, name: str) -> None:
        verified = _verified.get()
        # A name set without a verified login (there is none) gets a generation no account has.
        generation = verified[1] if verified is not None and verified[0] == name else -1
        super().__setitem__(token, SessionName(name, generation))

    def end(self, session: str) -> None:
        """Forget every token of ``session`` (the same name and generation): its page asks for a login again."""
        for token, value in list(self.items()):
            if value == session and getattr(value, "generation", None) == getattr(session, "generation", None):
                self.pop(token, None)


def login_check(project: Project) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's auth callback: argon2 and the lock-out write run in a small pool of their own (so logins
    queue there, not in the threads that serve annotators), and the verified generation is noted for
    :class:`Sessions`."""
    limiter = anyio.CapacityLimiter(CONCURRENT_CHECKS)
    store, rule = project.store, project.config.annotate

    async def auth(name: str, password: str) -> bool:
        login: Login | None = await anyio.to_thread.run_sync(
            lambda: check_login(store, name, password, rule), limiter=limiter)
        _verified.set(None if login is None else (name, login.generation))
        return login is not None

    return auth


@dataclass
class _Client:
    failures: int = 0
    last: float = 0.0


@dataclass
class LoginBackoff:
    """Failed logins per client address, in memory: after ``FREE_FAILURES`` in a window each further attempt
    waits twice as long as the one before (1 s, 2 s, 4 s ... up to ``MAX_WAIT_S``), refused without checking
    the password until then."""

    clients: dict[str, _Client] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    turns: dict[str, anyio.Semaphore] = field(default_factory=dict)
    lock: Lock = field(default_factory=Lock)

    def start(self, client: str) -> bool:
        """Count a login of ``client`` as under way; False (refuse it) when it has too many already."""
        with self.lock:
            if self.in_flight.get(client, 0) >= QUEUED_PER_CLIENT:
                return False
            self.in_flight[client] = self.in_flight.get(client, 0) + 1
            return True

    def done(self, client: str) -> None:
        with self.lock:
            left = self.in_flight.pop(client, 1) - 1
            if left:
                self.in_flight[client] = left
            else:
                self.turns.pop(client, None)

    def turn(self, client: str) -> anyio.Semaphore:
        """What ``client``'s logins take turns on, ``CHECKS_PER_CLIENT`` at a time, so that one address cannot
        queue more password checks than that ahead of everyone else's."""
        with self.lock:
            return self.turns.setdefault(client, anyio.Semaphore(CHECKS_PER_CLIENT))

    def wait(self, client: str, now: float) -> float:
        """Seconds ``client`` must wait before its next login attempt (0: it may try now)."""
        with self.lock:
            found = self.clients.get(client)
            if found is None or now - found.last > WINDOW_S:
                self.clients.pop(client, None)
                return 0.0
            if found.failures < FREE_FAILURES:
                return 0.0
            delay = min(MAX_WAIT_S, math.pow(2, found.failures - FREE_FAILURES))
            return max(0.0, found.last + delay - now)

    def failed(self, client: str, now: float) -> None:
        with self.lock:
            found = self.clients.setdefault(client, _Client())
            if now - found.last > WINDOW_S:
                found.failures = 0
            found.failures += 1
            found.last = now
            if len(self.clients) > 100_000:  # bound the memory an attack from many addresses takes
                for key in [k for k, c in self.clients.items() if now - c.last > WINDOW_S]:
                    del self.clients[key]


class LoginGuard:
    """ASGI middleware in front of Gradio's ``POST /login``: one address's logins take turns, ``CHECKS_PER_CLIENT``
    at a time (at most ``QUEUED_PER_CLIENT`` under way); a client in back-off gets 429 (with Retry-After) before
    any password is checked, also when it entered the back-off while this login waited for its turn. A 400 answer
    (wrong credentials) counts as a failure of its client."""

    def __init__(self, app: Any, backoff: LoginBackoff) -> None:
        self.app = app
        self.backoff = backoff

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown",))[0]
        if not self.backoff.start(client):  # too many of its logins under way already
            await _too_many(send, 1.0)
            return

        async def noted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                self.backoff.failed(client, time.monotonic())
            await send(message)

        try:
            async with self.backoff.turn(client):
                wait = self.backoff.wait(client, time.monotonic())
                if wait > 0:
                    await _too_many(send, wait)
                else:
                    await self.app(scope, receive, noted)
        finally:
            self.backoff.done(client)


async def _too_many(send: Any, wait: float) -> None:
    body = b'{"detail":"too many failed logins from this address: try again later"}'
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", str(math.ceil(wait)).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
