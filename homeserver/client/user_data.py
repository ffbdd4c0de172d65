"""Account data and profiles."""

from __future__ import annotations

from homeserver.http.errors import forbidden, not_found
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_PREFIX, Router


def register_routes(router: Router, hs) -> None:
    async def own(request, user_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("Cannot access other users' account data")
        return requester

    async def put_account_data(request, user_id, data_type):
        await own(request, user_id)
        await hs.account_data_handler.put(user_id, "", data_type, parse_json_object(request))
        return 200, {}

    async def get_account_data(request, user_id, data_type):
        await own(request, user_id)
        content = await hs.account_data.get(user_id, "", data_type)
        if content is None:
            raise not_found("No such account data")
        return 200, content

    async def put_room_account_data(request, user_id, room_id, data_type):
        await own(request, user_id)
        await hs.account_data_handler.put(user_id, room_id, data_type, parse_json_object(request))
        return 200, {}

    async def get_room_account_data(request, user_id, room_id, data_type):
        await own(request, user_id)
        content = await hs.account_data.get(user_id, room_id, data_type)
        if content is None:
            raise not_found("No such account data")
        return 200, content

    async def get_profile(request, user_id):
        return 200, await hs.profiles_handler.get_profile(user_id)

    def profile_field(name):
        async def get(request, user_id):
            profile = await hs.profiles_handler.get_profile(user_id)
            if name not in profile:
                raise not_found(f"No {name} set")
            return 200, {name: profile[name]}

        async def put(request, user_id):
            requester = await hs.auth.authenticate(request)
            if requester.user_id != user_id:
                raise forbidden("Cannot change other users' profiles")
            body = parse_json_object(request)
            value = field(body, name, str, None, nullable=True)
            await hs.profiles_handler.set_field(user_id, name, value)
            return 200, {}
        return get, put

    P = CLIENT_PREFIX
    router.add("PUT", f"{P}/user/{{user_id}}/account_data/{{data_type}}", put_account_data)
    router.add("GET", f"{P}/user/{{user_id}}/account_data/{{data_type}}", get_account_data)
    router.add("PUT", f"{P}/user/{{user_id}}/rooms/{{room_id}}/account_data/{{data_type}}", put_room_account_data)
    router.add("GET", f"{P}/user/{{user_id}}/rooms/{{room_id}}/account_data/{{data_type}}", get_room_account_data)
    router.add("GET", f"{P}/profile/{{user_id}}", get_profile)
    for name in ("displayname", "avatar_url"):
        get, put = profile_field(name)
        router.add("GET", f"{P}/profile/{{user_id}}/{name}", get)
        router.add("PUT", f"{P}/profile/{{user_id}}/{name}", put)
