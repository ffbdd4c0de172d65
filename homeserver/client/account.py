"""Password changes and devices: the actions that ask for the password again (UIA)."""

from __future__ import annotations

from homeserver.http.errors import MatrixError, not_found
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_PREFIX, Router

PASSWORD_FLOWS = [["m.login.password"]]


def register_routes(router: Router, hs) -> None:
    async def change_password(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request)
        new_password = field(body, "new_password", str)
        logout_devices = field(body, "logout_devices", bool, True)
        hs.accounts.check_password_strength(new_password)
        await hs.ui_auth.require(body, "change_password", PASSWORD_FLOWS, requester.user_id,
                                 hs.accounts.check_password)
        await hs.accounts.change_password(requester, new_password, logout_devices)
        return 200, {}

    async def list_devices(request):
        requester = await hs.auth.authenticate(request)
        devices = await hs.devices.get_devices(requester.user_id)
        return 200, {"devices": [d.to_json() for d in devices]}

    async def get_device(request, device_id):
        requester = await hs.auth.authenticate(request)
        device = await hs.devices.get_device(requester.user_id, device_id)
        if device is None:
            raise not_found("No such device")
        return 200, device.to_json()

    async def update_device(request, device_id):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        display_name = field(body, "display_name", str, None, nullable=True)
        if display_name is not None and len(display_name) > 100:
            raise MatrixError(400, "M_INVALID_PARAM", "Device name is longer than 100 characters")
        if not await hs.devices.set_display_name(requester.user_id, device_id, display_name):
            raise not_found("No such device")
        return 200, {}

    async def delete_device(request, device_id):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        if await hs.devices.get_device(requester.user_id, device_id) is None:
            raise not_found("No such device")
        await hs.ui_auth.require(body, "delete_devices", PASSWORD_FLOWS, requester.user_id,
                                 hs.accounts.check_password)
        await hs.devices.delete_devices(requester.user_id, [device_id])
        return 200, {}

    async def delete_devices(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request)
        device_ids = field(body, "devices", list)
        if not all(isinstance(d, str) for d in device_ids):
            raise MatrixError(400, "M_INVALID_PARAM", "'devices' must be a list of device IDs")
        await hs.ui_auth.require(body, "delete_devices", PASSWORD_FLOWS, requester.user_id,
                                 hs.accounts.check_password)
        await hs.devices.delete_devices(requester.user_id, device_ids)
        return 200, {}

    router.add("POST", f"{CLIENT_PREFIX}/account/password", change_password)
    router.add("GET", f"{CLIENT_PREFIX}/devices", list_devices)
    router.add("GET", f"{CLIENT_PREFIX}/devices/{{device_id}}", get_device)
    router.add("PUT", f"{CLIENT_PREFIX}/devices/{{device_id}}", update_device)
    router.add("DELETE", f"{CLIENT_PREFIX}/devices/{{device_id}}", delete_device)
    router.add("POST", f"{CLIENT_PREFIX}/delete_devices", delete_devices)
