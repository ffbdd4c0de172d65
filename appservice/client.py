"""Requests from the homeserver to application services: transactions, user and alias
queries, and ping.

Services are reached at their registration's ``url`` (usually plain HTTP on localhost, so
the federation deny list does not apply), with ``Authorization: Bearer <hs_token>`` and
JSON bodies. A non-2xx answer at a ``/_matrix/app/v1/...`` path is tried once more at the
legacy unprefixed path (``/transactions/{txnId}``, ``/users/{userId}``, ``/rooms/{alias}``)
as the specification allows for services written before the prefix existed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import treq
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool

log = Logger(namespace="drocsid.appservice.client")

DEFAULT_TIMEOUT_S = 60.0
MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = b"Drocsid (application service client)"


class AppServiceError(Exception):
    """A request to an application service failed.

    ``errcode``: ``M_CONNECTION_FAILED`` (no connection or no answer),
    ``M_CONNECTION_TIMEOUT`` (no answer in time) or ``M_BAD_STATUS`` (a non-2xx answer,
    whose HTTP status is ``status`` and JSON object ``body``)."""

    def __init__(self, errcode: str, status: int | None = None, message: str = "", body: Any = None):
        super().__init__(f"{errcode} {status or ''} {message}".strip())
        self.errcode = errcode
        self.status = status
        self.message = message
        self.body = body if body is not None else {}


def _segment(value: str) -> str:
    return quote(value, safe="")


class ApplicationServiceClient:
    def __init__(self, reactor, clock, timeout_s: float = DEFAULT_TIMEOUT_S):
        self._reactor = reactor
        self._clock = clock
        self.timeout_s = timeout_s
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 2
        self._pool.retryAutomatically = False

    async def close(self) -> None:
        await self._pool.closeCachedConnections()

    # -- the API ------------------------------------------------------------------------

    async def ping(self, registration, transaction_id: str | None = None) -> None:
        body: dict = {}
        if transaction_id is not None:
            body["transaction_id"] = transaction_id
        await self._call(registration, "POST", "/_matrix/app/v1/ping", None, body)

    async def query_user(self, registration, user_id: str) -> bool:
        """Whether the service says it has the user (it creates it before answering 200)."""
        return await self._query(registration, "/users/" + _segment(user_id))

    async def query_alias(self, registration, alias: str) -> bool:
        """Whether the service says it has the alias (created before answering 200)."""
        return await self._query(registration, "/rooms/" + _segment(alias))

    async def push(self, registration, txn_id: str | int, body: dict) -> None:
        tail = "/transactions/" + _segment(str(txn_id))
        await self._call(registration, "PUT", "/_matrix/app/v1" + tail, tail, body)

    # -- plumbing ----------------------------------------------------------------------

    async def _query(self, registration, tail: str) -> bool:
        try:
            await self._call(registration, "GET", "/_matrix/app/v1" + tail, tail, None)
        except AppServiceError as error:
            if error.errcode == "M_BAD_STATUS" and error.status == 404:
                return False
            raise
        return True

    async def _call(self, registration, method: str, path: str, legacy_path: str | None, body: Any) -> Any:
        if not registration.url:
            raise AppServiceError("M_CONNECTION_FAILED", None, f"{registration.id} has no url")
        status, answer = await self._request(registration, method, path, body)
        if 200 <= status < 300:
            return answer
        first = (status, answer)
        if legacy_path is not None:
            status, answer = await self._request(registration, method, legacy_path, body)
            if 200 <= status < 300:
                return answer
            # The prefixed path's answer is the meaningful one unless it only said
            # "no such endpoint".
            if first[0] not in (404, 405):
                status, answer = first
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
        raise AppServiceError("M_BAD_STATUS", status, f"{registration.id} answered {status} {errcode or ''}".strip(),
                              answer if isinstance(answer, dict) else {})

    async def _request(self, registration, method: str, path: str, body: Any) -> tuple[int, Any]:
        url = registration.url.rstrip("/") + path
        headers = {b"Authorization": [f"Bearer {registration.hs_token}".encode()],
                   b"User-Agent": [USER_AGENT]}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers[b"Content-Type"] = [b"application/json"]
        timed_out = []

        async def attempt():
            response = await treq.request(method, url.encode("utf-8"), data=data, headers=headers,
                                          pool=self._pool, reactor=self._reactor)
            content = await treq.content(response)
            return response.code, content

        d = defer.ensureDeferred(attempt())
        timer = self._reactor.callLater(self.timeout_s, lambda: (timed_out.append(True), d.cancel()))
        try:
            status, content = await d
        except Exception as error:
            if timed_out:
                raise AppServiceError("M_CONNECTION_TIMEOUT", None,
                                      f"{registration.id} did not answer in {self.timeout_s:g}s") from None
            raise AppServiceError("M_CONNECTION_FAILED", None,
                                  f"{registration.id} at {registration.url}: {error.__class__.__name__}") from None
        finally:
            if timer.active():
                timer.cancel()
        try:
            answer = json.loads(content[:MAX_RESPONSE_BYTES]) if content else {}
        except ValueError:
            answer = {}
        return status, answer
