"""Resend's HTTP API: ``POST {base}/emails`` with a JSON body and a bearer key."""

from __future__ import annotations

import json

import treq
from twisted.internet import defer

from homeserver.mail import MailError

TIMEOUT_SECS = 20


class ResendMailer:
    name = "resend"

    def __init__(self, base_url: str, api_key: str, from_address: str):
        self._url = base_url.rstrip("/") + "/emails"
        self._api_key = api_key
        self._from = from_address

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        body = {"from": self._from, "to": [to], "subject": subject, "text": text}
        if html is not None:
            body["html"] = html
        try:
            response = await treq.post(self._url, data=json.dumps(body).encode(), timeout=TIMEOUT_SECS,
                                       persistent=False,
                                       headers={"Authorization": f"Bearer {self._api_key}",
                                                "Content-Type": "application/json"})
            await response.content()
        except (defer.CancelledError, defer.TimeoutError) as error:
            raise MailError(f"Resend did not answer ({type(error).__name__})")
        except Exception as error:  # twisted's connection errors are not all OSErrors
            raise MailError(f"Resend could not be reached ({type(error).__name__})")
        if not 200 <= response.code < 300:
            # Resend's error body may echo the request; only the status is reported.
            raise MailError(f"Resend answered {response.code}")
