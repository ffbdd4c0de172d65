"""Asking application services about users and aliases nobody has yet.

When a client looks up a user of this server that does not exist (profile, invite) and
the user is in a service's users namespace, or resolves an alias of this server that is
not in the directory and is in a service's aliases namespace, the service is asked
(``GET /_matrix/app/v1/users/{userId}`` or ``/rooms/{alias}``). A 200 means the service
created it meanwhile, so the caller looks again; anything else leaves it unknown.

``attach(hs)`` sets the hooks: ``hs.profiles_handler.user_query`` and
``hs.membership.alias_query`` (the directory's ``GET /directory/room/{alias}`` uses the
latter too).
"""

from __future__ import annotations

from twisted.logger import Logger

from appservice.client import AppServiceError

log = Logger(namespace="drocsid.appservice.queries")


class ApplicationServiceQueries:
    def __init__(self, hs):
        self._hs = hs

    def _services(self):
        return [r for r in getattr(self._hs, "appservices", None) or [] if r.url]

    async def query_user(self, user_id: str) -> bool:
        """Whether a service in whose namespace the user is says it now exists."""
        for registration in self._services():
            if registration.is_user_in_namespace(user_id) and user_id != registration.sender:
                if await self._ask(registration, "query_user", user_id):
                    return True
        return False

    async def query_alias(self, alias: str) -> bool:
        server_name = self._hs.config.server_name
        if ":" not in alias or alias.split(":", 1)[1] != server_name:
            return False
        for registration in self._services():
            if registration.is_alias_in_namespace(alias):
                if await self._ask(registration, "query_alias", alias):
                    return True
        return False

    async def _ask(self, registration, method: str, value: str) -> bool:
        try:
            return await getattr(self._hs.appservice_client, method)(registration, value)
        except AppServiceError as error:
            log.info("{method} {value} of {service} failed: {error}", method=method, value=value,
                     service=registration.id, error=str(error), event="appservice_query_failed")
            return False


def attach(hs) -> None:
    queries = ApplicationServiceQueries(hs)
    hs.appservice_queries = queries
    hs.profiles_handler.user_query = queries.query_user
    hs.membership.alias_query = queries.query_alias
