"""A small HTTP client of the annotation app's API, for scripts, simulated annotators and load tests.

It logs in like a browser (Gradio's cookie login) and calls the app's named endpoints directly
(``/gradio_api/run/<name>``); refusals come back as :class:`~curate.errors.RefusedError`.
"""

from __future__ import annotations

import secrets
from typing import Any

from curate.errors import CurateError, RefusedError
from curate.select.routing import MAX_RANKED


class AppClient:
    """One logged-in annotator. ``AppClient(url, name, password).item()`` is the item to do now."""

    def __init__(self, url: str, name: str, password: str, *, timeout: float = 30.0) -> None:
        import httpx

        self.name = name
        self._session = secrets.token_hex(8)  # one Gradio session, as a browser tab keeps: its state is reused
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        response = self._http.post("/login", data={"username": name, "password": password})
        if response.status_code != 200:
            self._http.close()
            raise RefusedError(f"login as {name} refused (HTTP {response.status_code})")

    def call(self, endpoint: str, *data: Any) -> list[Any]:
        """The outputs of endpoint ``endpoint`` called with ``data``."""
        response = self._http.post(f"/gradio_api/run/{endpoint}",
                                   json={"data": list(data), "session_hash": self._session})
        if response.status_code in (401, 403):
            raise RefusedError(f"{endpoint}: not logged in (HTTP {response.status_code})")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or "error" in body:
            raise RefusedError(f"{endpoint}: {body.get('error') or f'HTTP {response.status_code}'}")
        if "data" not in body:
            raise CurateError(f"{endpoint}: unexpected answer {response.text[:200]!r}")
        return body["data"]

    def item(self) -> dict[str, Any] | None:
        """The item this annotator should do now (None when the open rounds are done)."""
        return self.call("item")[0]

    def submit_pair(self, item: dict[str, Any], choice: str, *, confidence: int | None = None,
                    reason: str = "") -> dict[str, Any]:
        """Judge a pair item: ``choice`` is A, B (as shown), tie or both_bad. Returns the saved judgment."""
        return self.call("submit_pair", str(item["assignment"]), item["token"], choice, confidence, reason)[0]

    def submit_rank(self, item: dict[str, Any], ranks: list[int], *, confidence: int | None = None,
                    reason: str = "") -> dict[str, Any]:
        padded = [*ranks, *[None] * (MAX_RANKED - len(ranks))]
        return self.call("submit_rank", str(item["assignment"]), item["token"], confidence, reason, *padded)[0]

    def submit_rewrite(self, item: dict[str, Any], text: str, *, confidence: int | None = None,
                       reason: str = "") -> dict[str, Any]:
        return self.call("submit_rewrite", str(item["assignment"]), item["token"], text, confidence, reason)[0]

    def skip(self, item: dict[str, Any], reason: str = "", *, flag: bool = False) -> dict[str, Any]:
        return self.call("flag" if flag else "skip", str(item["assignment"]), item["token"], reason)[0]

    def undo(self, saved: dict[str, Any]) -> dict[str, Any]:
        """Take back ``saved`` (what a submit or skip returned), which must be this annotator's latest."""
        return self.call("undo", str(saved["assignment"]))[0]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
