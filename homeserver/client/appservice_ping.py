"""POST /_matrix/client/v1/appservice/{appserviceId}/ping: a service asks the homeserver
to ping it back, to learn that both directions work."""

from __future__ import annotations

import json

from homeserver.http.errors import MatrixError, forbidden
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_V1_PREFIX, Router


def register_routes(router: Router, hs) -> None:
    async def ping(request, appservice_id):
        requester = await hs.auth.authenticate(request)
        if requester.appservice_id is None or requester.appservice_id != appservice_id:
            raise forbidden("Only the application service itself may ping it")
        registration = next(r for r in hs.appservices if r.id == appservice_id)
        body = parse_json_object(request, allow_empty=True)
        transaction_id = field(body, "transaction_id", str, None)
        if not registration.url:
            raise MatrixError(400, "M_URL_NOT_SET", "The application service has no url")
        from appservice.client import AppServiceError

        started = hs.clock.time_ms()
        try:
            await hs.appservice_client.ping(registration, transaction_id)
        except AppServiceError as error:
            if error.errcode == "M_CONNECTION_TIMEOUT":
                raise MatrixError(504, "M_CONNECTION_TIMEOUT", "The application service did not answer in time")
            if error.errcode == "M_BAD_STATUS":
                bad_status = MatrixError(502, "M_BAD_STATUS", f"The application service answered {error.status}")
                bad_status.extra.update(status=error.status, body=json.dumps(error.body))
                raise bad_status
            raise MatrixError(502, "M_CONNECTION_FAILED", "The homeserver could not reach the application service")
        return 200, {"duration_ms": max(0, hs.clock.time_ms() - started)}

    router.add("POST", f"{CLIENT_V1_PREFIX}/appservice/{{appservice_id}}/ping", ping)
