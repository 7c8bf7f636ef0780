"""The remote engine: a client of our model server with the same interface as the local one.

Retries connection failures (the server may be starting), and turns HTTP errors into the named
exceptions of :mod:`vip_model.errors` with what to do about them. No Qt.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from vip_model.engine import Answer, CancelToken, EngineInfo, Request, Streamed
from vip_model.errors import InvalidRequest, ModelError, OutOfMemory

TOKEN_ENV = "VIPSTUDIO_TOKEN"


class ServerUnavailable(ModelError):
    """The server cannot be reached, or it stopped answering."""


class AuthenticationFailed(ModelError):
    """The server refused the token (HTTP 401) or the client's Host/Origin (HTTP 403)."""


class ServerBusy(ModelError):
    """The server's queue stayed full (HTTP 503) through every retry."""


class RemoteEngine:
    """An :class:`~vip_model.engine.Engine` answered by ``vipstudio serve`` at ``url``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout_s: float = 600.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_parallel: int = 8,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"server URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_parallel = max_parallel
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0)
        )

    # -- the Engine interface ---------------------------------------------------------------

    def info(self) -> EngineInfo:
        data = self._call("GET", "/v1/models")
        entry = data["data"][0]
        return EngineInfo.from_dict({**entry["vip"], "engine": f"remote {self.url}"})

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def ask(self, request: Request, cancel: CancelToken | None = None) -> Answer:
        if cancel is not None:
            # A cancellable call streams, so that cancelling can close the connection.
            return self.stream(request, cancel).result()
        data = self._call("POST", "/v1/ask", json={**request.to_dict(), "stream": False})
        return Answer.from_dict(data["answer"])

    def batch(self, requests: Sequence[Request], cancel: CancelToken | None = None) -> list[Answer]:
        """Sends the requests concurrently: the server groups them into batches."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(requests))) as pool:
            return list(pool.map(lambda r: self.ask(r, cancel), requests))

    def stream(self, request: Request, cancel: CancelToken | None = None) -> Streamed:
        cancel = cancel if cancel is not None else CancelToken()
        body = {**request.to_dict(), "stream": True, "format": "ndjson"}
        return Streamed(self._stream(body, cancel), cancel)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------

    def _stream(self, body: dict[str, Any], cancel: CancelToken) -> Generator[str, None, Answer]:
        for attempt in range(self.retries + 1):
            try:
                with self._http.stream("POST", "/v1/ask", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        if self._retry_later(response, attempt):
                            continue
                        self._raise_for(response)
                    for line in response.iter_lines():
                        if cancel.cancelled:
                            # Closing the response drops the connection: the server cancels.
                            return Answer(text="", finish_reason="cancelled")
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        if "delta" in event:
                            yield event["delta"]
                        elif "answer" in event:
                            return Answer.from_dict(event["answer"])
                        elif "error" in event:
                            raise ModelError(f"the server failed: {event['error']}")
                raise ServerUnavailable(f"{self.url} closed the stream before the answer")
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise self._down(exc) from None
                time.sleep(self.backoff_s * 2**attempt)
            except httpx.HTTPError as exc:
                raise ServerUnavailable(f"{self.url} stopped answering ({exc})") from None
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise self._down(exc) from None
                time.sleep(self.backoff_s * 2**attempt)
                continue
            except httpx.HTTPError as exc:
                raise ServerUnavailable(f"{self.url} stopped answering ({exc})") from None
            if self._retry_later(response, attempt):
                continue
            if response.status_code != 200:
                self._raise_for(response)
            return response.json()
        raise AssertionError("unreachable")

    def _retry_later(self, response: httpx.Response, attempt: int) -> bool:
        """Wait and say "retry" for a full queue or pixel budget (503 with Retry-After); other
        503s, such as running out of memory, would fail the same way again."""
        retry_after = response.headers.get("retry-after")
        if response.status_code != 503 or retry_after is None or attempt >= self.retries:
            return False
        time.sleep(float(retry_after))
        return True

    def _down(self, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(
            f"cannot reach the model server at {self.url} ({exc}): start it with "
            "`vipstudio serve --model MODEL`, or check the URL"
        )

    def _raise_for(self, response: httpx.Response) -> None:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        status = response.status_code
        if status == 401:
            raise AuthenticationFailed(
                f"the server refused the token: pass --token or set {TOKEN_ENV} ({message})"
            )
        if status in (413, 415, 422, 400):
            raise InvalidRequest(message)
        if status == 403:
            raise AuthenticationFailed(f"the server refused this client: {message}")
        if status == 408:
            raise ServerUnavailable(f"{self.url} timed out reading the request: {message}")
        if status == 503:
            if "memory" in message.lower():
                raise OutOfMemory(message)
            raise ServerBusy(f"the server is busy: {message}")
        raise ModelError(f"the server answered {status}: {message}")
