"""POST /register and GET /register/available."""

from __future__ import annotations

from homeserver.http.errors import MatrixError, forbidden
from homeserver.http.request import field, parse_json_object, query_str
from homeserver.http.router import CLIENT_PREFIX, Router

REGISTER_FLOWS = [["m.login.dummy"]]
APPSERVICE_LOGIN = "m.login.application_service"


def register_routes(router: Router, hs) -> None:
    limits = hs.config.limits

    async def register(request):
        body = parse_json_object(request)
        kind = query_str(request, "kind", "user")
        if kind == "guest":
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest accounts are not available")
        if kind != "user":
            raise MatrixError(400, "M_INVALID_PARAM", "'kind' must be 'user' or 'guest'")
        if body.get("type") == APPSERVICE_LOGIN:
            return await register_appservice_user(request, body)
        if not hs.config.auth.registration_enabled:
            raise forbidden("Registration is disabled on this server")

        username = field(body, "username", str, None)
        password = field(body, "password", str, None)
        device_id = field(body, "device_id", str, None)
        device_name = field(body, "initial_device_display_name", str, None)
        inhibit_login = field(body, "inhibit_login", bool, False)
        want_refresh = field(body, "refresh_token", bool, False)

        ip = request.client_ip()
        # Validate the name first so a client learns of a taken name before any auth.
        if username is not None:
            await hs.accounts.check_username_available(username)
        if password is not None:
            hs.accounts.check_password_strength(password)
        await hs.ui_auth.require(body, "register", REGISTER_FLOWS)
        if username is None:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing parameter: username")
        if password is None:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing parameter: password")
        # Counted only for registrations that are about to happen, not for the UIA probe.
        hs.ratelimiter.check("register", ip, limits.register_per_second, limits.register_burst)
        user_id, session = await hs.accounts.register(
            username, password, device_id=device_id, device_name=device_name,
            inhibit_login=inhibit_login, want_refresh=want_refresh, ip=ip)
        if session is None:
            return 200, {"user_id": user_id, "home_server": hs.config.server_name}
        return 200, session.to_json(hs.config.server_name)

    async def register_appservice_user(request, body):
        """An application service creates a user of its users namespace: no UIA, no
        password, no rate limit, even when registration is closed to everyone else."""
        # By the as_token alone: bridges name the user to register in ?user_id= already.
        registration = await hs.auth.authenticate_appservice(request)
        if registration is None:
            raise forbidden("Only an application service may register with m.login.application_service")
        username = field(body, "username", str)
        user_id, session = await hs.accounts.register(
            username, None, device_id=field(body, "device_id", str, None),
            device_name=field(body, "initial_device_display_name", str, None),
            inhibit_login=field(body, "inhibit_login", bool, False),
            want_refresh=field(body, "refresh_token", bool, False), ip=request.client_ip(),
            appservice=registration)
        if session is None:
            return 200, {"user_id": user_id, "home_server": hs.config.server_name}
        return 200, session.to_json(hs.config.server_name)

    async def available(request):
        username = query_str(request, "username", required=True)
        hs.ratelimiter.check("register_available", request.client_ip(), limits.register_per_second * 10,
                             limits.register_burst * 10)
        await hs.accounts.check_username_available(username)
        return 200, {"available": True}

    router.add("POST", f"{CLIENT_PREFIX}/register", register)
    router.add("GET", f"{CLIENT_PREFIX}/register/available", available)
