"""Accounts over the Matrix client-server API: register, login, whoami, logout, devices,
password changes and refresh tokens, against a running listener on both engines."""

from __future__ import annotations

from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"


class AccountsTests:
    @inline
    async def test_versions_and_well_known(self):
        status, body = await self.request("GET", "/_matrix/client/versions")
        self.assertEqual(status, 200)
        self.assertIn("v1.5", body["versions"])
        self.assertIn("unstable_features", body)
        status, body = await self.request("GET", "/.well-known/matrix/client")
        self.assertEqual(body, {"m.homeserver": {"base_url": "http://127.0.0.1"}})

    @inline
    async def test_two_step_registration_with_session(self):
        status, body = await self.request("POST", f"{V3}/register",
                                          {"username": "alice", "password": "correct horse battery"})
        self.assertEqual(status, 401)
        self.assertEqual(body["flows"], [{"stages": ["m.login.dummy"]}])
        session = body["session"]
        status, body = await self.request("POST", f"{V3}/register",
                                          {"username": "alice", "password": "correct horse battery",
                                           "auth": {"type": "m.login.dummy", "session": session}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["user_id"], "@alice:test.local")
        self.assertTrue(body["access_token"])
        self.assertTrue(body["device_id"])
        status, who = await self.request("GET", f"{V3}/account/whoami", token=body["access_token"])
        self.assertEqual((status, who["user_id"], who["device_id"]), (200, "@alice:test.local", body["device_id"]))

    @inline
    async def test_single_call_dummy_registration_like_nio(self):
        body = await self.register("bob", device_id="NIODEVICE", initial_device_display_name="nio")
        self.assertEqual(body["device_id"], "NIODEVICE")
        status, devices = await self.request("GET", f"{V3}/devices", token=body["access_token"])
        self.assertEqual(status, 200)
        self.assertEqual([(d["device_id"], d["display_name"]) for d in devices["devices"]],
                         [("NIODEVICE", "nio")])

    @inline
    async def test_register_taken_and_invalid_names(self):
        await self.register("carol")
        self.assertMatrixError(await self.request("POST", f"{V3}/register", {
            "username": "carol", "password": "another password", "auth": {"type": "m.login.dummy"}}),
            400, "M_USER_IN_USE")
        self.assertMatrixError(await self.request("POST", f"{V3}/register", {
            "username": "Carol!", "password": "another password", "auth": {"type": "m.login.dummy"}}),
            400, "M_INVALID_USERNAME")
        self.assertMatrixError(await self.request("POST", f"{V3}/register", {
            "username": "dave", "password": "short", "auth": {"type": "m.login.dummy"}}),
            400, "M_WEAK_PASSWORD")
        self.assertMatrixError(await self.request("GET", f"{V3}/register/available",
                                                  query={"username": "carol"}), 400, "M_USER_IN_USE")
        status, body = await self.request("GET", f"{V3}/register/available", query={"username": "dave"})
        self.assertEqual((status, body), (200, {"available": True}))
        # Nothing was stored for the refused attempts.
        self.assertFalse(await self.hs.users.user_exists("@dave:test.local"))

    @inline
    async def test_inhibit_login_creates_no_device(self):
        status, body = await self.request("POST", f"{V3}/register", {
            "username": "erin", "password": "correct horse battery", "inhibit_login": True,
            "auth": {"type": "m.login.dummy"}})
        self.assertEqual(status, 200)
        self.assertEqual(body["user_id"], "@erin:test.local")
        self.assertNotIn("access_token", body)
        self.assertEqual(await self.hs.devices.get_devices("@erin:test.local"), [])

    @inline
    async def test_login_with_identifier_and_legacy_user_field(self):
        await self.register("frank")
        status, flows = await self.request("GET", f"{V3}/login")
        self.assertEqual(flows, {"flows": [{"type": "m.login.password"}]})
        status, body = await self.login("frank")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["user_id"], "@frank:test.local")
        self.assertEqual(body["well_known"]["m.homeserver"]["base_url"], "http://127.0.0.1")
        status, legacy = await self.request("POST", f"{V3}/login", {
            "type": "m.login.password", "user": "@frank:test.local", "password": "correct horse battery"})
        self.assertEqual(status, 200, legacy)
        self.assertNotEqual(legacy["access_token"], body["access_token"])
        self.assertNotEqual(legacy["device_id"], body["device_id"])
        # Each login is a device of its own.
        status, devices = await self.request("GET", f"{V3}/devices", token=legacy["access_token"])
        self.assertEqual(len(devices["devices"]), 3)

    @inline
    async def test_wrong_password_and_unknown_user_are_refused_alike(self):
        await self.register("gina")
        self.assertMatrixError(await self.login("gina", "wrong password"), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.login("nobody", "wrong password"), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.login("@gina:elsewhere.example", "correct horse battery"),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", {
            "type": "m.login.token", "token": "x"}), 400, "M_UNKNOWN")
        self.assertEqual(len(await self.hs.devices.get_devices("@gina:test.local")), 1)

    @inline
    async def test_token_as_query_parameter(self):
        session = await self.register("hank")
        status, body = await self.request("GET", f"{V3}/account/whoami",
                                          query={"access_token": session["access_token"]})
        self.assertEqual((status, body["user_id"]), (200, "@hank:test.local"))

    @inline
    async def test_missing_bad_and_revoked_tokens(self):
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami"), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token="dat_nonsense"),
                               401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami",
                                                  headers={"Authorization": "Basic abc"}), 401, "M_MISSING_TOKEN")
        session = await self.register("ivan")
        status, _ = await self.request("POST", f"{V3}/logout", token=session["access_token"])
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=session["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        # Logging out ended the device too.
        self.assertEqual(await self.hs.devices.get_devices("@ivan:test.local"), [])

    @inline
    async def test_logout_all(self):
        first = await self.register("judy")
        status, second = await self.login("judy")
        status, _ = await self.request("POST", f"{V3}/logout/all", token=second["access_token"])
        self.assertEqual(status, 200)
        for token in (first["access_token"], second["access_token"]):
            self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=token),
                                   401, "M_UNKNOWN_TOKEN")
        status, again = await self.login("judy")
        self.assertEqual(status, 200)

    @inline
    async def test_device_get_update_and_delete_with_password(self):
        first = await self.register("kate")
        status, second = await self.login("kate")
        token = first["access_token"]
        other = second["device_id"]
        status, device = await self.request("GET", f"{V3}/devices/{other}", token=token)
        self.assertEqual((status, device["device_id"]), (200, other))
        status, _ = await self.request("PUT", f"{V3}/devices/{other}", {"display_name": "Phone"}, token=token)
        self.assertEqual(status, 200)
        status, device = await self.request("GET", f"{V3}/devices/{other}", token=token)
        self.assertEqual(device["display_name"], "Phone")
        self.assertMatrixError(await self.request("PUT", f"{V3}/devices/NOPE", {"display_name": "x"}, token=token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("PUT", f"{V3}/devices/{other}", {"display_name": 5},
                                                  token=token), 400, "M_INVALID_PARAM")

        status, challenge = await self.request("DELETE", f"{V3}/devices/{other}", token=token)
        self.assertEqual(status, 401)
        self.assertEqual(challenge["flows"], [{"stages": ["m.login.password"]}])
        auth = {"type": "m.login.password", "session": challenge["session"],
                "identifier": {"type": "m.id.user", "user": "kate"}}
        status, failed = await self.request("DELETE", f"{V3}/devices/{other}",
                                            {"auth": {**auth, "password": "wrong password"}}, token=token)
        self.assertEqual((status, failed["errcode"]), (401, "M_FORBIDDEN"))
        status, still = await self.request("GET", f"{V3}/account/whoami", token=second["access_token"])
        self.assertEqual(status, 200)
        status, _ = await self.request("DELETE", f"{V3}/devices/{other}",
                                       {"auth": {**auth, "password": "correct horse battery"}}, token=token)
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=second["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        status, devices = await self.request("GET", f"{V3}/devices", token=token)
        self.assertEqual([d["device_id"] for d in devices["devices"]], [first["device_id"]])

    @inline
    async def test_delete_devices_in_bulk(self):
        first = await self.register("leo")
        others = [(await self.login("leo"))[1]["device_id"] for _ in range(2)]
        status, challenge = await self.request("POST", f"{V3}/delete_devices", {"devices": others},
                                               token=first["access_token"])
        self.assertEqual(status, 401)
        status, _ = await self.request("POST", f"{V3}/delete_devices", {
            "devices": others, "auth": {"type": "m.login.password", "session": challenge["session"],
                                        "user": "@leo:test.local", "password": "correct horse battery"}},
            token=first["access_token"])
        self.assertEqual(status, 200)
        self.assertEqual(len(await self.hs.devices.get_devices("@leo:test.local")), 1)

    @inline
    async def test_change_password_logs_out_other_devices(self):
        first = await self.register("mia")
        status, second = await self.login("mia")
        body = {"new_password": "a brand new password"}
        status, challenge = await self.request("POST", f"{V3}/account/password", body, token=first["access_token"])
        self.assertEqual(status, 401)
        status, _ = await self.request("POST", f"{V3}/account/password", {
            **body, "auth": {"type": "m.login.password", "session": challenge["session"],
                             "identifier": {"type": "m.id.user", "user": "mia"},
                             "password": "correct horse battery"}}, token=first["access_token"])
        self.assertEqual(status, 200)
        status, _ = await self.request("GET", f"{V3}/account/whoami", token=first["access_token"])
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=second["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.login("mia"), 403, "M_FORBIDDEN")
        status, _ = await self.login("mia", "a brand new password")
        self.assertEqual(status, 200)

    @inline
    async def test_refresh_tokens_rotate_and_are_single_use(self):
        status, session = await self.request("POST", f"{V3}/register", {
            "username": "nina", "password": "correct horse battery", "refresh_token": True,
            "auth": {"type": "m.login.dummy"}})
        self.assertEqual(status, 200)
        self.assertTrue(session["refresh_token"])
        self.assertEqual(session["expires_in_ms"], 900 * 1000)
        status, fresh = await self.request("POST", f"{V3}/refresh", {"refresh_token": session["refresh_token"]})
        self.assertEqual(status, 200, fresh)
        self.assertNotEqual(fresh["access_token"], session["access_token"])
        # The old pair is gone; the new access token works.
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=session["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/refresh",
                                                  {"refresh_token": session["refresh_token"]}),
                               401, "M_UNKNOWN_TOKEN")
        status, who = await self.request("GET", f"{V3}/account/whoami", token=fresh["access_token"])
        self.assertEqual(who["user_id"], "@nina:test.local")

    @inline
    async def test_stored_credentials_are_hashed(self):
        session = await self.register("olga", password="plain text password")

        def read(txn):
            return (txn.select_one("SELECT password_hash FROM users WHERE user_id = ?", ("@olga:test.local",))[0],
                    [r[0] for r in txn.select_all("SELECT token_hash FROM access_tokens")])
        password_hash, token_hashes = await self.hs.db.run_interaction("read", read)
        self.assertTrue(password_hash.startswith("$argon2id$"))
        self.assertNotIn("plain text password", password_hash)
        self.assertNotIn(session["access_token"], token_hashes)
        self.assertEqual(len(token_hashes), 1)


class AccountsSqliteTests(AccountsTests, HomeserverTestCase):
    engine = "sqlite"


class AccountsPostgresTests(AccountsTests, HomeserverTestCase):
    engine = "postgres"
