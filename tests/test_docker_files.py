"""Lint of docker/: the Dockerfile, its entrypoint, docker-compose.yml and .env.example.

Nothing here needs a Docker engine. The compose file is read with PyYAML and its
${VAR:-default} references are filled in the way Compose does, so the homeserver's
environment can be handed to the real configuration loader. The one test that
runs the docker CLI (`docker compose config -q`, which needs no engine either) is
skipped when that CLI or its compose plugin is missing.
"""

from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import yaml  # PyYAML is a dependency of the project: a missing one fails this module.
from twisted.trial import unittest

from homeserver.config import ENV_PREFIX, SCHEMA, TOP_LEVEL, load_config

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
ENTRYPOINT = DOCKER / "entrypoint.sh"
ENV_EXAMPLE = DOCKER / ".env.example"

EXPECTED_SERVICES = {"postgres", "redis", "minio", "minio-init", "livekit", "homeserver"}
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
CLI_SUBCOMMANDS = ("run", "generate-config", "migrate", "register-user")


# --- Compose-style variable interpolation -------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?\Z", re.S)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: dict[str, str], refs: list | None = None) -> str:
    """Fill $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR:+alt}, $$.

    Each reference is appended to ``refs`` as (name, operator or None).
    """
    refs = [] if refs is None else refs
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
            continue
        if following == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise InterpolationError(f"unclosed ${{ in {text!r}")
            match = _BRACED.match(text[i + 2:j - 1])
            if match is None:
                raise InterpolationError(f"invalid reference {text[i:j]!r}")
            name, op, arg = match.groups()
            refs.append((name, op))
            value = env.get(name)
            unset = value is None or (op is not None and op.startswith(":") and value == "")
            if op in (":-", "-"):
                default = interpolate(arg, env, refs)
                out.append(default if unset else value)
            elif op in (":?", "?"):
                if unset:
                    raise InterpolationError(f"required variable {name} is missing: {arg}")
                out.append(value)
            elif op in (":+", "+"):
                alternative = interpolate(arg, env, refs)
                out.append("" if unset else alternative)
            else:
                out.append(value or "")  # Compose warns and substitutes an empty string
            i = j
            continue
        match = _NAME.match(text, i + 1)
        if match is None:
            raise InterpolationError(f"a lone $ in {text!r} (write $$ for a literal one)")
        refs.append((match.group(), None))
        out.append(env.get(match.group(), ""))
        i = match.end()
    return "".join(out)


def interpolate_tree(node, env: dict[str, str], refs: list | None = None):
    """Interpolate every string value (not mapping keys, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, env, refs)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env, refs) for value in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not _NAME.fullmatch(name.strip()):
            raise AssertionError(f"{path.name} line {number} is not NAME=value: {line!r}")
        values[name.strip()] = value.strip()
    return values


def load_compose_raw() -> dict:
    with open(COMPOSE_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_compose(env: dict[str, str] | None = None) -> dict:
    return interpolate_tree(load_compose_raw(), env or {})


def service_environment(service: dict) -> dict[str, str | None]:
    """A service's environment as a dict, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        result: dict[str, str | None] = {}
        for item in raw:
            name, sep, value = item.partition("=")
            result[name] = value if sep else None
        return result
    result = {}
    for name, value in raw.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        result[name] = None if value is None else str(value)
    return result


def depends_on(service: dict) -> dict[str, str]:
    """Dependency name -> condition, from either the list or the mapping form."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def container_ports(service: dict) -> set[str]:
    """Container-side ports as "8008" or "7882/udp"."""
    found = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            port = str(entry["target"])
            protocol = entry.get("protocol", "tcp")
        else:
            port, _, protocol = str(entry).partition("/")
            port = port.rsplit(":", 1)[-1]
            protocol = protocol or "tcp"
        found.add(port if protocol == "tcp" else f"{port}/{protocol}")
    return found


def config_key_for(env_name: str) -> tuple[str | None, str]:
    """The (section, key) a DROCSID__ variable sets, split as homeserver.config does."""
    rest = env_name[len(ENV_PREFIX):].lower()
    if "__" in rest:
        section, key = rest.split("__", 1)
        return section, key
    return None, rest


def is_config_key(env_name: str) -> bool:
    section, key = config_key_for(env_name)
    if section is None:
        return key in TOP_LEVEL
    return key in SCHEMA.get(section, {})


# --- Dockerfile parsing ---------------------------------------------------------------

def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank lines and comments, inside a continuation too, as Docker does
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        instruction, _, arguments = line.partition(" ")
        instructions.append((instruction.upper(), arguments.strip()))
    if pending:
        raise AssertionError(f"{path.name} ends inside a continued line")
    return instructions


def dockerfile_stages(instructions) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults (before the first FROM), then each stage's instructions."""
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for instruction, arguments in instructions:
        if instruction == "FROM":
            stages.append([(instruction, arguments)])
        elif not stages:
            if instruction == "ARG":
                name, _, default = arguments.partition("=")
                global_args[name.strip()] = default.strip()
        else:
            stages[-1].append((instruction, arguments))
    return global_args, stages


def dockerfile_env(stage) -> dict[str, str]:
    values = {}
    for instruction, arguments in stage:
        if instruction != "ENV":
            continue
        tokens = shlex.split(arguments)
        if tokens and "=" not in tokens[0]:  # legacy form: ENV NAME value
            values[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            name, _, value = token.partition("=")
            values[name] = value
    return values


def substitute_args(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether a context path is left out, by Docker's rules: the last matching pattern
    wins, `!` re-includes, and a pattern matching a folder covers what is inside it."""
    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out += pattern[i:end + 1]
                i = end + 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + r"\Z")

    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = os.path.normpath(body.strip().lstrip("/"))
        compiled = regex(body)
        if any(compiled.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def read_dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


# --- Tests ---------------------------------------------------------------------------

class ComposeFileTests(unittest.TestCase):
    def setUp(self):
        self.compose = load_compose()
        self.services = self.compose.get("services") or {}

    def test_parses_with_the_expected_services(self):
        self.assertIsInstance(self.compose, dict)
        self.assertEqual(EXPECTED_SERVICES - set(self.services), set(), "services missing")
        self.assertNotIn("version", self.compose, "the top-level version key is obsolete")

    def test_every_service_has_an_image_or_a_build(self):
        for name, service in self.services.items():
            self.assertTrue(service.get("image") or service.get("build"), f"service {name} has neither")

    def test_homeserver_build_context_and_dockerfile_exist(self):
        build = self.services["homeserver"]["build"]
        if isinstance(build, str):
            build = {"context": build}
        context = (DOCKER / build.get("context", ".")).resolve()
        self.assertTrue(context.is_dir(), f"build context {context} is not a folder")
        self.assertEqual(context, REPO, "the build context must be the repository root")
        self.assertTrue((context / "setup.cfg").is_file())
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        self.assertTrue(dockerfile.is_file(), f"{dockerfile} does not exist")
        self.assertEqual(dockerfile, DOCKERFILE)

    def test_depends_on_names_defined_services(self):
        for name, service in self.services.items():
            for dependency, condition in depends_on(service).items():
                self.assertIn(dependency, self.services, f"{name} depends on undefined service {dependency}")
                self.assertNotEqual(dependency, name, f"{name} depends on itself")
                self.assertIn(condition, DEPENDS_CONDITIONS, f"{name} -> {dependency}: bad condition")
                if condition == "service_healthy":
                    target = self.services[dependency]
                    self.assertTrue(target.get("healthcheck") or target.get("build"),
                                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck")

    def test_homeserver_waits_for_postgres_and_redis(self):
        needs = depends_on(self.services["homeserver"])
        self.assertEqual(needs.get("postgres"), "service_healthy")
        self.assertEqual(needs.get("redis"), "service_healthy")

    def test_drocsid_variables_name_real_configuration_keys(self):
        checked = 0
        for name, service in self.services.items():
            for variable in service_environment(service):
                if variable.startswith(ENV_PREFIX):
                    checked += 1
                    self.assertTrue(is_config_key(variable),
                                    f"{name}: {variable} sets no configuration key (see homeserver/config.py)")
                else:
                    # A near miss such as DROCSID_SERVER__PORT would be silently ignored.
                    self.assertFalse(variable.startswith("DROCSID") and "__" in variable,
                                     f"{name}: {variable} looks like a mistyped {ENV_PREFIX} variable")
        self.assertGreater(checked, 0, "no DROCSID__ variables found at all")

    def test_homeserver_environment_is_a_valid_configuration(self):
        # The image's ENV, overridden by the compose environment, as the container sees it.
        _, stages = dockerfile_stages(dockerfile_instructions())
        for label, env in (("defaults", {}), (".env.example", read_env_file(ENV_EXAMPLE))):
            compose = load_compose(env)
            environ = {k: v for k, v in dockerfile_env(stages[-1]).items() if k.startswith(ENV_PREFIX)}
            environ.update({k: v for k, v in service_environment(compose["services"]["homeserver"]).items()
                            if v is not None})
            config = load_config(None, environ=environ)  # raises ConfigError naming a bad key or value
            self.assertEqual(config.server.host, "0.0.0.0", label)
            self.assertIn(str(config.server.port), container_ports(compose["services"]["homeserver"]), label)
            self.assertIn(str(config.federation.port), container_ports(compose["services"]["homeserver"]),
                          label)
            self.assertTrue(config.database_url.startswith("postgres://"), label)
            self.assertTrue(config.redis.url.startswith("redis://"), label)
            self.assertTrue(config.s3.endpoint, label)
            self.assertTrue(config.livekit.api_key and config.livekit.api_secret, label)
            if "DROCSID_SERVER_NAME" in env:
                self.assertEqual(config.server_name, env["DROCSID_SERVER_NAME"], label)

    def test_service_addresses_point_at_compose_services(self):
        environment = service_environment(self.services["homeserver"])
        for variable in ("DROCSID__DATABASE__URL", "DROCSID__REDIS__URL", "DROCSID__S3__ENDPOINT",
                         "DROCSID__LIVEKIT__URL"):
            host = urlparse(environment[variable]).hostname
            self.assertIn(host, self.services, f"{variable} points at {host}, not a compose service")

    def test_credentials_agree_between_services(self):
        for label, env in (("defaults", {}), (".env.example", read_env_file(ENV_EXAMPLE))):
            services = load_compose(env)["services"]
            hs = service_environment(services["homeserver"])

            postgres = service_environment(services["postgres"])
            url = urlparse(hs["DROCSID__DATABASE__URL"])
            self.assertEqual((url.username, url.password, url.path.lstrip("/")),
                             (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]),
                             label)

            minio = service_environment(services["minio"])
            self.assertEqual((hs["DROCSID__S3__ACCESS_KEY"], hs["DROCSID__S3__SECRET_KEY"]),
                             (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]), label)
            self.assertGreaterEqual(len(minio["MINIO_ROOT_PASSWORD"]), 8, f"{label}: MinIO needs 8 characters")
            init = services["minio-init"]
            self.assertEqual(service_environment(init)["MINIO_ROOT_USER"], minio["MINIO_ROOT_USER"], label)
            bucket = re.escape(hs["DROCSID__S3__BUCKET"])
            self.assertRegex(" ".join(init["command"]), rf"\bmc mb\b.*\S/{bucket}(?:\s|$)",
                             f"{label}: minio-init does not create the homeserver's bucket")

            keys = yaml.safe_load(service_environment(services["livekit"])["LIVEKIT_KEYS"])
            self.assertEqual(keys, {hs["DROCSID__LIVEKIT__API_KEY"]: hs["DROCSID__LIVEKIT__API_SECRET"]}, label)

    def test_backing_services_as_specified(self):
        services = self.services
        self.assertTrue(services["postgres"]["image"].startswith("postgres:17"))
        self.assertIn("pg_isready", " ".join(services["postgres"]["healthcheck"]["test"]))
        self.assertTrue(services["postgres"].get("volumes"))
        self.assertTrue(services["redis"]["image"].startswith("redis:7"))
        self.assertIn("--appendonly yes", " ".join(services["redis"]["command"]))
        self.assertIn("9001", container_ports(services["minio"]))
        self.assertEqual(services["minio-init"]["depends_on"]["minio"]["condition"], "service_healthy")
        self.assertIn("drocsid-uploads", " ".join(services["minio-init"]["command"]))
        self.assertIn("--dev", services["livekit"]["command"])
        self.assertEqual({"7880", "7881", "7882/udp"} - container_ports(services["livekit"]), set())
        self.assertEqual({"8008", "8448"} - container_ports(services["homeserver"]), set())

    def test_named_volumes_are_declared(self):
        declared = set(self.compose.get("volumes") or {})
        for name, service in self.services.items():
            for volume in service.get("volumes") or []:
                source = volume["source"] if isinstance(volume, dict) else str(volume).split(":", 1)[0]
                if not source.startswith((".", "/", "~")):
                    self.assertIn(source, declared, f"{name} uses undeclared volume {source}")

    def test_variables_have_defaults_and_are_listed_in_env_example(self):
        refs: list = []
        interpolate_tree(load_compose_raw(), {}, refs)
        self.assertTrue(refs)
        for name, op in refs:
            self.assertEqual(op, ":-", f"${{{name}}} should carry a default: ${{{name}:-...}}")
        used = {name for name, _ in refs}
        listed = set(read_env_file(ENV_EXAMPLE))
        self.assertEqual(used - listed, set(), "variables used in docker-compose.yml but not in .env.example")
        self.assertEqual(listed - used, set(), "variables in .env.example that docker-compose.yml never uses")

    def test_docker_compose_config(self):
        docker = shutil.which("docker")
        if docker is None:
            raise unittest.SkipTest("the docker CLI is not on PATH; `docker compose config` not run")
        try:
            version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise unittest.SkipTest(f"`docker compose version` could not run: {error}")
        if version.returncode != 0:
            raise unittest.SkipTest("the docker compose plugin is not installed "
                                    f"(`docker compose version`: {(version.stderr or version.stdout).strip()})")
        result = subprocess.run([docker, "compose", "-f", "docker/docker-compose.yml", "config", "-q"],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, f"docker compose config failed:\n{result.stdout}{result.stderr}")


class DockerfileTests(unittest.TestCase):
    def setUp(self):
        self.instructions = dockerfile_instructions()
        self.global_args, self.stages = dockerfile_stages(self.instructions)
        self.assertTrue(self.stages, "no FROM in the Dockerfile")
        self.final = self.stages[-1]

    def final_instructions(self, name: str) -> list[str]:
        return [arguments for instruction, arguments in self.final if instruction == name]

    def test_from_python_slim(self):
        stage_names = set()
        for stage in self.stages:
            image, *rest = stage[0][1].split()
            image = substitute_args(image, self.global_args)
            if image not in stage_names:
                self.assertEqual(image, "python:3.11-slim", f"stage based on {image}")
            if len(rest) == 2 and rest[0].upper() == "AS":
                stage_names.add(rest[1])

    def test_exposes_client_and_federation_ports(self):
        exposed = {port.split("/")[0] for line in self.final_instructions("EXPOSE") for port in line.split()}
        self.assertEqual({"8008", "8448"} - exposed, set())

    def test_runs_as_non_root(self):
        users = self.final_instructions("USER")
        self.assertTrue(users, "no USER in the final stage")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"))

    def test_data_volume(self):
        volumes = set()
        for line in self.final_instructions("VOLUME"):
            volumes.update(json.loads(line) if line.startswith("[") else line.split())
        self.assertIn("/data", volumes)

    def test_server_binds_all_interfaces(self):
        env = dockerfile_env(self.final)
        self.assertEqual(env.get("DROCSID__SERVER__HOST"), "0.0.0.0")
        for name in env:
            if name.startswith(ENV_PREFIX):
                self.assertTrue(is_config_key(name), f"ENV {name} sets no configuration key")

    def test_entrypoint_is_the_copied_script(self):
        (entrypoint,) = self.final_instructions("ENTRYPOINT")[-1:]
        command = json.loads(entrypoint)
        copies = {}
        for line in self.final_instructions("COPY"):
            tokens = [t for t in shlex.split(line) if not t.startswith("--")]
            if any(t.startswith("--from") for t in shlex.split(line)):
                continue
            *sources, destination = tokens
            for source in sources:
                self.assertTrue((REPO / source).exists(), f"COPY source {source} is not in the repository")
                copies[destination] = source
        target = command[0]
        matches = [dest for dest in copies if dest == target or dest.endswith("/" + target)]
        self.assertTrue(matches, f"ENTRYPOINT {target} is not a copied file")
        self.assertEqual(copies[matches[0]], "docker/entrypoint.sh")

    def test_healthcheck_probes_the_client_versions_endpoint(self):
        (healthcheck,) = self.final_instructions("HEALTHCHECK")[-1:]
        match = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)\Z", healthcheck, re.S)
        self.assertIsNotNone(match, "HEALTHCHECK has no CMD")
        command = json.loads(match.group(2))
        self.assertEqual(command[:2], ["python", "-c"])
        self.assertIn("127.0.0.1", command[2])
        self.assertIn("/_matrix/client/versions", command[2])
        self.assertIn("8008", command[2])

        # Run the probe itself against a throwaway server and against a closed port.
        paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                self.send_response(200 if self.path == "/_matrix/client/versions" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"versions": ["v1.11"]}')

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)

        def probe(port: int) -> int:
            env = dict(os.environ, DROCSID__SERVER__PORT=str(port))
            return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                                  timeout=30).returncode

        self.assertEqual(probe(server.server_address[1]), 0)
        self.assertEqual(paths, ["/_matrix/client/versions"])
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        self.assertNotEqual(probe(closed_port), 0)

    def test_dockerignore_keeps_what_the_build_needs(self):
        patterns = read_dockerignore()
        parser = configparser.ConfigParser()
        parser.read(REPO / "setup.cfg")
        packages = [name.strip() for name in parser["options.packages.find"]["include"].split()
                    if name.strip() and "." not in name and "*" not in name]
        self.assertTrue(packages)
        needed = ["setup.cfg", "pyproject.toml", "LICENSE", "docker/entrypoint.sh"]
        needed += [f"{package}/__init__.py" for package in packages]
        for path in needed:
            self.assertFalse(dockerignore_excludes(patterns, path), f"{path} is left out of the build context")
        for path in (".git/HEAD", ".venv/bin/python", "docker/.env", "drocsid.toml", "data/signing.key",
                     "homeserver/__pycache__/app.cpython-311.pyc"):
            self.assertTrue(dockerignore_excludes(patterns, path), f"{path} is sent in the build context")


class EntrypointTests(unittest.TestCase):
    def test_bash_syntax(self):
        bash = shutil.which("bash")
        self.assertIsNotNone(bash, "bash is needed to check entrypoint.sh")
        result = subprocess.run([bash, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(ENTRYPOINT.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n"))

    def make_fake_drocsid(self, tmp: Path) -> Path:
        """A `drocsid` on PATH that records its arguments; generate-config runs the real one."""
        bindir = tmp / "bin"
        bindir.mkdir()
        fake = bindir / "drocsid"
        fake.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "$*" >> {shlex.quote(str(tmp / "calls"))}\n'
            'if [ "$1" = generate-config ]; then\n'
            f"  exec {shlex.quote(sys.executable)} -c "
            "'import sys; from homeserver.cli import main; sys.exit(main(sys.argv[1:]))' \"$@\"\n"
            "fi\n",
            encoding="utf-8")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        return bindir

    def run_entrypoint(self, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
        bindir = self.make_fake_drocsid(tmp) if not (tmp / "bin").exists() else tmp / "bin"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DROCSID")}
        environ.update(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                       PYTHONPATH=str(REPO), **env)
        return subprocess.run(["bash", str(ENTRYPOINT), *args], env=environ, capture_output=True, text=True,
                              timeout=120)

    def calls(self, tmp: Path) -> list[str]:
        path = tmp / "calls"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def test_first_start_generates_the_configuration_then_runs(self):
        tmp = Path(self.mktemp()).resolve()
        (tmp / "data").mkdir(parents=True)
        config = tmp / "data" / "drocsid.toml"
        result = self.run_entrypoint(tmp, DROCSID_CONFIG=str(config), DROCSID_SERVER_NAME="chat.example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(tmp), [
            f"generate-config --server-name chat.example.org --config {config} --data-dir .",
            f"run --config {config}",
        ])
        loaded = load_config(config, environ={})
        self.assertEqual(loaded.server_name, "chat.example.org")
        self.assertEqual(loaded.data_dir, config.parent)
        self.assertTrue(loaded.signing_key_path.is_file())

        # Later starts leave the configuration alone.
        before = config.read_bytes()
        result = self.run_entrypoint(tmp, DROCSID_CONFIG=str(config), DROCSID_SERVER_NAME="other.example")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(tmp)[2:], [f"run --config {config}"])
        self.assertEqual(config.read_bytes(), before)

    def test_server_name_falls_back_to_the_instance_domain(self):
        tmp = Path(self.mktemp()).resolve()
        tmp.mkdir(parents=True)
        config = tmp / "drocsid.toml"
        result = self.run_entrypoint(tmp, DROCSID_CONFIG=str(config), DROCSID__INSTANCE__DOMAIN="hs.example")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(load_config(config, environ={}).server_name, "hs.example")

    def test_unwritable_config_folder_is_a_clear_error(self):
        tmp = Path(self.mktemp()).resolve()
        tmp.mkdir(parents=True)
        config = tmp / "missing" / "drocsid.toml"
        result = self.run_entrypoint(tmp, DROCSID_CONFIG=str(config))
        self.assertEqual(result.returncode, 1)
        self.assertIn("not writable", result.stderr)
        self.assertEqual(self.calls(tmp), [])

    def test_arguments_pass_through(self):
        tmp = Path(self.mktemp()).resolve()
        tmp.mkdir(parents=True)
        config = tmp / "drocsid.toml"
        result = self.run_entrypoint(tmp, "migrate", "--config", str(config), DROCSID_CONFIG=str(config))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(tmp), [f"migrate --config {config}"])
        self.assertFalse(config.exists())
        result = self.run_entrypoint(tmp, "echo", "hello")
        self.assertEqual((result.returncode, result.stdout), (0, "hello\n"))
