"""The ``drocsid`` command: run, generate-config, migrate, register-user, --version.

Each command prints what it did; a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from homeserver import __version__
from homeserver.config import ConfigError, load_config, render_toml

DEFAULT_CONFIG = "drocsid.toml"


class CommandError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drocsid", description="Drocsid homeserver")
    parser.add_argument("--version", action="version", version=f"drocsid {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the homeserver (makes a configuration on first run)")
    run.add_argument("--config", default=DEFAULT_CONFIG, help=f"configuration file (default {DEFAULT_CONFIG})")

    gen = commands.add_parser("generate-config",
                              help="write a configuration file, signing key and self-signed TLS pair")
    gen.add_argument("--server-name", required=True, help="the server name, e.g. example.org")
    gen.add_argument("--config", default=DEFAULT_CONFIG, help="where to write it")
    gen.add_argument("--data-dir", default="./data", help="data directory (relative to the config file)")

    mig = commands.add_parser("migrate", help="bring the database schema up to date")
    mig.add_argument("--config", default=DEFAULT_CONFIG)

    reg = commands.add_parser("register-user", help="create an account")
    reg.add_argument("user", help="localpart (alice) or user ID (@alice:example.org)")
    reg.add_argument("--admin", action="store_true", help="make the account a server admin")
    reg.add_argument("--password", help="password (default: asked, or read from standard input)")
    reg.add_argument("--config", default=DEFAULT_CONFIG)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    try:
        return {"run": cmd_run, "generate-config": cmd_generate_config, "migrate": cmd_migrate,
                "register-user": cmd_register_user}[args.command](args)
    except (CommandError, ConfigError) as error:
        print(f"drocsid: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("drocsid: interrupted", file=sys.stderr)
        return 130


def _write_config(path: Path, server_name: str, data_dir: str) -> None:
    from homeserver.signing_key import load_or_create_signing_key

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(render_toml(server_name, data_dir))
    config = load_config(path, environ={})
    key_path = config.signing_key_path
    existed = key_path.exists()
    load_or_create_signing_key(key_path)
    print(f"wrote configuration {path}")
    print(f"{'kept' if existed else 'generated'} signing key {key_path}")
    if config.federation.enabled:
        from federation.tls import ensure_certificate

        cert, key, made = ensure_certificate(config)
        if made:
            print(f"generated self-signed federation certificate {cert} and key {key}"
                  " (replace them with a CA-signed pair to federate with servers that check certificates)")
        else:
            print(f"kept federation certificate {cert}")


def cmd_generate_config(args) -> int:
    path = Path(args.config)
    if path.exists():
        raise CommandError(f"{path} already exists; not overwriting it")
    _write_config(path, args.server_name, args.data_dir)
    return 0


def _load(path: str):
    return load_config(path)


def cmd_run(args) -> int:
    path = Path(args.config)
    if not path.exists():
        if args.config != DEFAULT_CONFIG:
            raise CommandError(f"configuration file {path} does not exist")
        # First run with no configuration: make the embedded default one.
        _write_config(path, "localhost:8008", "./data")
    config = _load(str(path))

    from twisted.internet import reactor
    from twisted.logger import Logger

    from homeserver.app import Homeserver, StartupError
    from homeserver.logging_setup import setup_logging

    setup_logging(config)
    log = Logger(namespace="drocsid.cli")
    outcome = {"status": 0}
    try:
        hs = Homeserver(config, reactor)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from error

    async def start():
        try:
            await hs.start()
        except StartupError as error:
            print(f"drocsid: {error}", file=sys.stderr)
            outcome["status"] = 1
            reactor.stop()
        except Exception as error:  # anything else at start is fatal too, with a traceback in the log
            log.failure("start failed")
            print(f"drocsid: start failed: {error}", file=sys.stderr)
            outcome["status"] = 1
            reactor.stop()

    from twisted.internet import defer

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(hs.stop()))
    reactor.run()
    return outcome["status"]


def _open_database(config):
    from twisted.internet import reactor

    from storage.database import DatabasePool

    if config.database_url.startswith("sqlite"):
        config.data_dir.mkdir(parents=True, exist_ok=True)
    db = DatabasePool.from_url(reactor, config.database_url, config.database.max_connections)
    return db


def cmd_migrate(args) -> int:
    from storage.migrations import current_version, migrate_sync

    config = _load(args.config)
    db = _open_database(config)
    try:
        applied = migrate_sync(db, report=print)
        version = current_version(db)
    except Exception as error:
        raise CommandError(f"migration failed on {db.target.describe()}: {error}") from error
    finally:
        db.close()
    if not applied:
        print(f"{db.target.describe()} is up to date (schema version {version})")
    else:
        print(f"{db.target.describe()} is now at schema version {version}")
    return 0


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Confirm password: "):
            raise CommandError("passwords do not match")
        return first
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        raise CommandError("no password given (use --password or pipe it on standard input)")
    return line


def cmd_register_user(args) -> int:
    import time

    from homeserver.handlers.passwords import PasswordHashing
    from homeserver.http.errors import MatrixError
    from homeserver.identifiers import localpart_from_login, user_id_for, validate_new_localpart
    from storage.migrations import migrate_sync
    from storage.stores.users import insert_user_txn

    config = _load(args.config)
    localpart = localpart_from_login(args.user, config.server_name)
    if localpart is None:
        raise CommandError(f"{args.user} does not belong to this server ({config.server_name})")
    try:
        validate_new_localpart(localpart, config.server_name)
    except MatrixError as error:
        raise CommandError(error.error) from error
    password = _read_password(args.password)
    if len(password) < config.auth.password_min_length:
        raise CommandError(f"password must be at least {config.auth.password_min_length} characters")
    auth = config.auth
    hashing = PasswordHashing(None, auth.password_hash_time_cost, auth.password_hash_memory_kib,
                              auth.password_hash_parallelism)
    user_id = user_id_for(localpart, config.server_name)
    db = _open_database(config)
    try:
        migrate_sync(db)
        created = db.run_sync("register_user", insert_user_txn, user_id, hashing.hash_sync(password),
                              int(time.time() * 1000), args.admin)
    finally:
        db.close()
    if not created:
        raise CommandError(f"{user_id} already exists")
    print(f"registered {user_id}{' (admin)' if args.admin else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
