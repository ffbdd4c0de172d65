#!/usr/bin/env bash
# Entrypoint of the Drocsid homeserver image.
#
# With no arguments: on first start (no configuration file yet) write one with
# `drocsid generate-config`, then replace this shell with `drocsid run`, so the
# server is PID 1 and gets SIGTERM directly for a graceful shutdown.
#
# With arguments: a drocsid subcommand runs as `drocsid "$@"`
# (e.g. `docker compose run --rm homeserver migrate --config /data/drocsid.toml`);
# anything else is executed as given (e.g. `bash`).
#
# Environment:
#   DROCSID_CONFIG       configuration file (default /data/drocsid.toml)
#   DROCSID_SERVER_NAME  server name written into a new configuration; falls back
#                        to DROCSID__INSTANCE__DOMAIN, then localhost:8008. It
#                        ends up in every user and room ID, so choose it before
#                        the first start.
#   DROCSID__SECTION__KEY  overrides of single configuration keys, applied by
#                        drocsid itself on every start (see homeserver/config.py).
set -euo pipefail

config="${DROCSID_CONFIG:-/data/drocsid.toml}"

log() { echo "drocsid-entrypoint: $*" >&2; }

if [ "$#" -gt 0 ]; then
    case "$1" in
        run | generate-config | migrate | register-user | --version | --help | -h)
            exec drocsid "$@" ;;
        *)
            exec "$@" ;;
    esac
fi

if [ ! -e "$config" ]; then
    config_dir="$(dirname "$config")"
    if [ ! -d "$config_dir" ] || [ ! -w "$config_dir" ]; then
        log "cannot write $config: $config_dir is missing or not writable by uid $(id -u)."
        log "For a bind mount, chown it to $(id -u):$(id -g) first."
        exit 1
    fi

    server_name="${DROCSID_SERVER_NAME:-${DROCSID__INSTANCE__DOMAIN:-}}"
    if [ -z "$server_name" ]; then
        server_name="localhost:8008"
        log "neither DROCSID_SERVER_NAME nor DROCSID__INSTANCE__DOMAIN is set; using $server_name"
    fi

    log "first start: writing $config for server name $server_name"
    # --data-dir is relative to the configuration file's folder: "." keeps the
    # signing key, TLS pair, SQLite database and media in the same volume.
    drocsid generate-config --server-name "$server_name" --config "$config" --data-dir .
fi

exec drocsid run --config "$config"
