"""Login, logout, token refresh and whoami."""

from __future__ import annotations

from appservice.loading import WEBHOOKS_SERVICE_ID
from homeserver.http.errors import MatrixError, forbidden
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_PREFIX, CLIENT_V1_PREFIX, Router

PASSWORD_LOGIN = "m.login.password"
APPSERVICE_LOGIN = "m.login.application_service"


def login_identifier(body: dict) -> str:
    """The user a login names: ``identifier`` (m.id.user) or the legacy ``user`` field."""
    identifier = body.get("identifier")
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise MatrixError(400, "M_INVALID_PARAM", "'identifier' must be an object")
        id_type = field(identifier, "type", str)
        if id_type != "m.id.user":
            raise MatrixError(400, "M_UNKNOWN", f"Unsupported identifier type {id_type}")
        return field(identifier, "user", str)
    return field(body, "user", str)


def register_routes(router: Router, hs) -> None:
    limits = hs.config.limits

    async def login_flows(request):
        flows = [{"type": PASSWORD_LOGIN}]
        if any(r.id != WEBHOOKS_SERVICE_ID for r in hs.appservices):  # a configured service, not ours
            flows.append({"type": APPSERVICE_LOGIN})
        return 200, {"flows": flows}

    async def login(request):
        body = parse_json_object(request)
        if body.get("type") == APPSERVICE_LOGIN:
            return await appservice_login(request, body)
        ip = request.client_ip()
        hs.ratelimiter.check("login", ip, limits.login_per_second, limits.login_burst)
        login_type = field(body, "type", str)
        if login_type != PASSWORD_LOGIN:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {login_type}")
        identifier = login_identifier(body)
        password = field(body, "password", str)
        device_id = field(body, "device_id", str, None)
        device_name = field(body, "initial_device_display_name", str, None)
        want_refresh = field(body, "refresh_token", bool, False)

        user_id = hs.accounts.user_id_from_login(identifier)
        if user_id is None:
            raise forbidden("Invalid username or password")
        # Failed attempts per account are limited too, so a password cannot be guessed
        # from many addresses.
        hs.ratelimiter.check("login_failures", user_id, limits.login_failures_per_second,
                             limits.login_failures_burst, record=False)
        try:
            session = await hs.accounts.login(user_id, password, device_id=device_id,
                                              device_name=device_name, want_refresh=want_refresh, ip=ip)
        except MatrixError as error:
            if error.status == 403:
                hs.ratelimiter.record("login_failures", user_id, limits.login_failures_per_second)
            raise
        answer = session.to_json(hs.config.server_name)
        answer["well_known"] = {"m.homeserver": {"base_url": hs.config.server.public_baseurl}}
        return 200, answer

    async def appservice_login(request, body):
        """An application service logs in as a user of its namespace (a device for it)."""
        requester = await hs.auth.authenticate(request)
        registration = next((r for r in hs.appservices if r.id == requester.appservice_id), None)
        if registration is None:
            raise forbidden("Only an application service may log in with m.login.application_service")
        user_id = hs.accounts.user_id_from_login(login_identifier(body))
        if user_id is None or not registration.is_user_in_namespace(user_id):
            raise MatrixError(403, "M_EXCLUSIVE", "This user is not in the application service's namespace")
        user = await hs.users.get_user(user_id)
        if user is None:
            raise forbidden("Application service has not registered this user")
        if user.deactivated:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        session = await hs.accounts.create_session(
            user_id, device_id=field(body, "device_id", str, None),
            device_name=field(body, "initial_device_display_name", str, None),
            want_refresh=field(body, "refresh_token", bool, False), ip=request.client_ip())
        answer = session.to_json(hs.config.server_name)
        answer["well_known"] = {"m.homeserver": {"base_url": hs.config.server.public_baseurl}}
        return 200, answer

    async def refresh(request):
        body = parse_json_object(request)
        token = field(body, "refresh_token", str)
        hs.ratelimiter.check("refresh", request.client_ip(), limits.login_per_second * 3, limits.login_burst * 3)
        session = await hs.accounts.refresh(token)
        return 200, {"access_token": session.access_token, "refresh_token": session.refresh_token,
                     "expires_in_ms": session.expires_in_ms}

    async def logout(request):
        requester = await hs.auth.authenticate(request)
        await hs.accounts.logout(requester)
        return 200, {}

    async def logout_all(request):
        requester = await hs.auth.authenticate(request)
        await hs.accounts.logout_all(requester)
        return 200, {}

    async def whoami(request):
        requester = await hs.auth.authenticate(request)
        answer = {"user_id": requester.user_id, "device_id": requester.device_id, "is_guest": requester.is_guest}
        if not requester.device_id:  # an application service acting without ?device_id=
            del answer["device_id"]
        return 200, answer

    router.add("GET", f"{CLIENT_PREFIX}/login", login_flows)
    router.add("POST", f"{CLIENT_PREFIX}/login", login)
    for prefix in (CLIENT_PREFIX, CLIENT_V1_PREFIX):
        router.add("POST", f"{prefix}/refresh", refresh)
    router.add("POST", f"{CLIENT_PREFIX}/logout", logout)
    router.add("POST", f"{CLIENT_PREFIX}/logout/all", logout_all)
    router.add("GET", f"{CLIENT_PREFIX}/account/whoami", whoami)
