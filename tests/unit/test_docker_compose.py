"""Checks of the Docker Compose deployment that need no Docker.

docker-compose.yaml is validated against the Compose Specification's JSON Schema
(tests/data/compose-spec.json), then for what a schema cannot see: host paths that must
exist, the environment the retraining code reads, which database is which, healthchecks
behind every ``service_healthy`` condition, the MLflow server the workers talk to, the
Dockerfile against requirements.txt, and airflow_settings.yaml (Astro CLI format).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "requirements.txt"
SETTINGS_FILE = ROOT / "airflow_settings.yaml"

COMMON_ANCHOR = "x-airflow-common"
CONTAINER_ROOT = "/opt/airflow"

# The services of the official Airflow 3 docker-compose.yaml that build on x-airflow-common.
AIRFLOW_SERVICES = frozenset(
    {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-init",
        "airflow-cli",
        "flower",
    }
)
OFFICIAL_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis"}

# Environment variables of the official file, kept under the same names.
OFFICIAL_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    "_PIP_ADDITIONAL_REQUIREMENTS",
    "AIRFLOW_CONFIG",
)
# What include/retraining reads at run time.
PROJECT_ENV = (
    "PYTHONPATH",
    "AIRFLOW_CONN_RETRAINING_DB",
    "MLFLOW_TRACKING_URI",
    "RETRAINING_STORAGE_URI",
    "RETRAINING_CONFIG",
)
# Must be identical on every Airflow service (tokens signed by one are checked by the others).
SHARED_ENV = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    *PROJECT_ENV,
)
# Bind-mounted folders that airflow-init creates (`mkdir -p /opt/airflow/{...}`) and git ignores.
CREATED_AT_RUNTIME = frozenset({"logs", "config"})
HEALTHCHECKED = ("postgres", "redis", "airflow-apiserver", "airflow-scheduler", "mlflow")
INITDB_DIR = "/docker-entrypoint-initdb.d"

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


class Mount(NamedTuple):
    source: str
    target: str
    is_bind: bool


# --------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text())


def _expand(value: str) -> str:
    """Interpolate like Compose with an empty environment: ``${X:-d}`` -> ``d``, ``${X}`` -> ``""``."""
    return _VARIABLE.sub(lambda m: m.group("default") or "", value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def _mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, target = _expand(entry).split(":")[:2]
        else:
            source, target = _expand(str(entry.get("source", ""))), str(entry["target"])
        mounts.append(Mount(source, target, is_bind=source.startswith((".", "/", "~"))))
    return mounts


def _host_path(source: str) -> Path:
    return (ROOT / source).resolve()


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(_expand(str(entry)).split(":")[-1].split("/")[0]))
    return ports


def _flag(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def _node(mapping: yaml.MappingNode, key: str) -> yaml.Node:
    for key_node, value_node in mapping.value:
        if key_node.value == key:
            node: yaml.Node = value_node
            return node
    raise KeyError(key)


def _services_merging_common_anchor() -> set[str]:
    """Services whose mapping merges ``*airflow-common`` (read from the YAML node graph)."""
    root = yaml.compose(COMPOSE_FILE.read_text())
    assert isinstance(root, yaml.MappingNode)
    common = _node(root, COMMON_ANCHOR)
    services = _node(root, "services")
    assert isinstance(services, yaml.MappingNode)
    merging = set()
    for name_node, service_node in services.value:
        for key_node, value_node in service_node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            if any(node is common for node in merged):
                merging.add(name_node.value)
    return merging


def _dockerfile_instructions() -> Iterator[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            yield keyword.upper(), arguments.strip()


def _airflow_pin() -> str:
    if not REQUIREMENTS.exists():
        pytest.skip("requirements.txt is not in the repository yet: no apache-airflow pin to compare with")
    match = re.search(r"^apache-airflow(?:\[[^\]]*\])?==([^\s;#]+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, "requirements.txt must pin apache-airflow==X.Y.Z"
    return match.group(1)


def _init_sql() -> str:
    (init_dir,) = [m.source for m in _mounts(_services()["postgres"]) if m.target == INITDB_DIR]
    files = sorted(_host_path(init_dir).glob("*.sql"))
    assert files, f"no *.sql file in {init_dir}"
    return "\n".join(f.read_text() for f in files)


def _sql_names(sql: str, statement: str) -> set[str]:
    return {m.lower() for m in re.findall(rf"{statement}\s+\"?(\w+)\"?", sql, re.IGNORECASE)}


def _compose() -> dict[str, Any]:
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _common_env() -> dict[str, str]:
    return _environment(_compose()[COMMON_ANCHOR])


def _init_command() -> str:
    command = _services()["airflow-init"]["command"]
    return "\n".join(command) if isinstance(command, list) else str(command)


def _settings() -> dict[str, Any]:
    data = _load_yaml(SETTINGS_FILE)
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- schema


def _schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    # The schema declares draft-07 as "https://json-schema.org/draft-07/schema" (no trailing
    # "#"), which jsonschema does not recognise, so name the draft explicitly.
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification() -> None:
    assert _schema_errors(_compose()) == []


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("services", "postgres", "healthcheck", "tests"), ["CMD", "true"]),  # misspelt key
        (("services", "airflow-apiserver", "depends_on", "airflow-init", "condition"), "service_ready"),
        (("services", "postgres", "restart"), ["always"]),
    ],
)
def test_schema_rejects_broken_files(path: tuple[str, ...], bad_value: object) -> None:
    """The validation above is not vacuous: the schema catches typical mistakes."""
    broken = copy.deepcopy(_compose())
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value
    assert _schema_errors(broken)


# --------------------------------------------------------------------------- services and environment


def test_official_services_are_all_there() -> None:
    services = _services()
    assert OFFICIAL_SERVICES | {"mlflow"} <= services.keys()
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["flower"]["profiles"] == ["flower"]
    assert services["airflow-worker"]["command"] == "celery worker"
    assert _common_env()["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_airflow_services_build_on_the_common_anchor() -> None:
    assert _services_merging_common_anchor() == AIRFLOW_SERVICES


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_services_get_the_official_and_project_environment(name: str) -> None:
    env = _environment(_services()[name])
    assert [var for var in OFFICIAL_ENV if var not in env] == []
    assert [var for var in PROJECT_ENV if not env.get(var)] == []
    assert CONTAINER_ROOT in env["PYTHONPATH"].split(":")


def test_shared_settings_are_identical_on_every_airflow_service() -> None:
    services = _services()
    for var in SHARED_ENV:
        values = {_environment(services[name]).get(var) for name in AIRFLOW_SERVICES}
        assert len(values) == 1, f"{var} differs between services: {values}"


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_example_dags_are_not_loaded(name: str) -> None:
    assert _environment(_services()[name])["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"


def test_execution_api_url_points_at_the_api_server() -> None:
    url = urlsplit(_common_env()["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    apiserver = _services()["airflow-apiserver"]
    assert url.hostname == "airflow-apiserver"
    assert apiserver["command"] == "api-server"
    assert url.port in _container_ports(apiserver)
    assert url.path == "/execution/"


# --------------------------------------------------------------------------- files and volumes


def test_bind_mounted_host_paths_exist_or_are_created_by_airflow_init() -> None:
    mkdir = re.search(r"mkdir -v -p /opt/airflow/\{([^}]*)\}", _init_command())
    assert mkdir, "airflow-init no longer creates the runtime folders"
    created = set(mkdir.group(1).split(","))
    assert created >= CREATED_AT_RUNTIME
    problems = []
    for name, service in _services().items():
        for mount in _mounts(service):
            if not mount.is_bind:
                continue
            host = _host_path(mount.source)
            if host.parent == ROOT and host.name in CREATED_AT_RUNTIME:
                continue
            if not host.exists():
                problems.append(f"{name}: {mount.source} (-> {mount.target}) does not exist")
    assert problems == []


def test_include_package_is_mounted_on_the_python_path() -> None:
    mounts = {m.target: m for m in _mounts(_compose()[COMMON_ANCHOR])}
    include = mounts[f"{CONTAINER_ROOT}/include"]
    assert include.is_bind
    assert (_host_path(include.source) / "retraining").is_dir()
    assert CONTAINER_ROOT in _common_env()["PYTHONPATH"].split(":")


def test_retraining_config_is_a_file_of_the_repository() -> None:
    config = _common_env()["RETRAINING_CONFIG"]
    binds = [m for m in _mounts(_compose()[COMMON_ANCHOR]) if m.is_bind and config.startswith(m.target + "/")]
    assert binds, f"{config} is not inside a bind mount"
    mount = max(binds, key=lambda m: len(m.target))
    assert (_host_path(mount.source) / config.removeprefix(mount.target + "/")).is_file()


def test_storage_is_one_named_volume_mounted_on_every_airflow_service() -> None:
    uri = _common_env()["RETRAINING_STORAGE_URI"]
    path = uri.removeprefix("file://")
    assert path.startswith("/"), f"RETRAINING_STORAGE_URI must be an absolute path or file:// URI, not {uri}"
    volumes = set()
    for name in AIRFLOW_SERVICES:
        (mount,) = [m for m in _mounts(_services()[name]) if m.target == path]
        assert not mount.is_bind
        volumes.add(mount.source)
    assert len(volumes) == 1
    assert volumes <= set(_compose()["volumes"])


def test_named_volumes_are_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    used = {m.source for service in _services().values() for m in _mounts(service) if not m.is_bind}
    assert used
    assert used <= declared


# --------------------------------------------------------------------------- databases


def test_retraining_db_is_its_own_database() -> None:
    env = _common_env()
    postgres = _environment(_services()["postgres"])
    retraining = urlsplit(env["AIRFLOW_CONN_RETRAINING_DB"])
    metadata_db = _database(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert retraining.scheme in {"postgres", "postgresql"}
    assert retraining.hostname == "postgres"
    assert metadata_db == postgres["POSTGRES_DB"]
    assert _database(env["AIRFLOW__CELERY__RESULT_BACKEND"]) == metadata_db
    assert _database(env["AIRFLOW_CONN_RETRAINING_DB"]) not in {"", metadata_db}


def test_init_script_creates_the_databases_and_roles_in_use() -> None:
    env = _common_env()
    postgres = _environment(_services()["postgres"])
    backend_store = _flag(_services()["mlflow"]["command"], "--backend-store-uri")
    sql = _init_sql()
    databases = _sql_names(sql, "CREATE DATABASE")
    roles = _sql_names(sql, "CREATE ROLE") | {postgres["POSTGRES_USER"]}
    metadata_db = postgres["POSTGRES_DB"]
    for url in (env["AIRFLOW_CONN_RETRAINING_DB"], backend_store):
        assert _database(url) in databases
        assert urlsplit(url).username in roles
    assert _database(backend_store) not in {metadata_db, _database(env["AIRFLOW_CONN_RETRAINING_DB"])}
    # Nobody but the Airflow components opens the metadata database.
    assert metadata_db in _sql_names(sql, "REVOKE CONNECT ON DATABASE")


# --------------------------------------------------------------------------- health and start-up order


@pytest.mark.parametrize("name", HEALTHCHECKED)
def test_healthchecks_exist(name: str) -> None:
    healthcheck = _services()[name].get("healthcheck") or {}
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test")


def test_depends_on_targets_exist_and_can_report_their_condition() -> None:
    services = _services()
    problems = []
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition", "service_started")
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
            elif condition == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name} waits for {target} to be healthy, but it has no healthcheck")
            elif condition == "service_completed_successfully" and target != "airflow-init":
                problems.append(f"{name} waits for long-running {target} to exit")
    assert problems == []


def test_workers_wait_for_a_healthy_mlflow() -> None:
    depends_on = _services()["airflow-worker"]["depends_on"]
    assert depends_on["mlflow"] == {"condition": "service_healthy"}


def test_mlflow_server_is_reachable_by_the_workers() -> None:
    mlflow = _services()["mlflow"]
    command = mlflow["command"]
    tracking = urlsplit(_common_env()["MLFLOW_TRACKING_URI"])
    assert command[:2] == ["mlflow", "server"]
    assert tracking.scheme == "http"
    assert tracking.hostname == "mlflow"
    assert _flag(command, "--host") == "0.0.0.0"
    assert int(_flag(command, "--port")) == tracking.port
    assert tracking.port in _container_ports(mlflow)
    # MLflow 3 answers 403 to Host headers outside localhost and private IPs (as mlflow matches them).
    allowed = _flag(command, "--allowed-hosts").split(",")
    assert any(fnmatch.fnmatch(tracking.netloc, p) if "*" in p else tracking.netloc == p for p in allowed)
    # Artifacts are proxied by the server and kept on a named volume.
    assert "--serve-artifacts" in command
    artifacts = _flag(command, "--artifacts-destination")
    assert any(m.target == artifacts and not m.is_bind for m in _mounts(mlflow))
    assert mlflow["image"] == _compose()[COMMON_ANCHOR]["image"]


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_extends_the_official_image_and_installs_requirements() -> None:
    instructions = list(_dockerfile_instructions())
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) == 1
    assert froms[0].startswith("apache/airflow:")
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users
    assert users[-1] == "airflow"
    (install,) = [args for keyword, args in instructions if keyword == "RUN" and "-r /requirements.txt" in args]
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install
    assert "--constraint /constraints.txt" in install
    # pip runs after the last USER switch, i.e. as the airflow user, as the official docs do it.
    last_user = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    assert instructions.index(("RUN", install)) > last_user


def test_dockerfile_tag_matches_the_airflow_pin() -> None:
    pin = _airflow_pin()
    (image,) = [args for keyword, args in _dockerfile_instructions() if keyword == "FROM"]
    match = re.fullmatch(r"apache/airflow:(?P<version>[\w.]+?)(?:-python\d+\.\d+)?", image)
    assert match, f"unexpected base image {image}"
    assert match.group("version") == pin


def test_dockerfile_copies_files_that_exist() -> None:
    if not REQUIREMENTS.exists():
        pytest.skip("requirements.txt is not in the repository yet: the image cannot be built")
    copies = [args.split() for keyword, args in _dockerfile_instructions() if keyword == "COPY"]
    sources = [source for args in copies for source in args[:-1] if not source.startswith("--")]
    assert {"requirements.txt", "constraints.txt"} <= set(sources)
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []


def test_dockerfile_installs_openmp_when_lightgbm_is_required() -> None:
    if not REQUIREMENTS.exists():
        pytest.skip("requirements.txt is not in the repository yet")
    if not re.search(r"^lightgbm\b", REQUIREMENTS.read_text(), re.MULTILINE | re.IGNORECASE):
        pytest.skip("lightgbm is not in requirements.txt")
    # LightGBM links against libgomp.so.1 without bundling it: install it, do not rely on the base image.
    assert re.search(r"apt-get install[^&]*\blibgomp1\b", DOCKERFILE.read_text().replace("\\\n", " "))


# --------------------------------------------------------------------------- airflow_settings.yaml


def test_airflow_settings_have_the_astro_structure() -> None:
    settings = _settings()
    assert set(settings) == {"airflow"}
    assert set(settings["airflow"]) == {"connections", "pools", "variables"}
    for section in ("connections", "pools", "variables"):
        assert isinstance(settings["airflow"][section], list)


def test_airflow_settings_define_the_retraining_db_connection() -> None:
    connections = {c["conn_id"]: c for c in _settings()["airflow"]["connections"]}
    conn = connections["retraining_db"]
    assert conn["conn_type"] == "postgres"
    assert conn["conn_host"] == "127.0.0.1"
    assert conn["conn_port"] == 5432
    assert conn["conn_login"] == "postgres"
    # Same database name as in Compose: only the server differs between the two set-ups.
    assert conn["conn_schema"] == _database(_common_env()["AIRFLOW_CONN_RETRAINING_DB"]) == "retraining"


def test_airflow_settings_hold_no_secrets() -> None:
    for conn in _settings()["airflow"]["connections"]:
        assert not conn.get("conn_password"), f"{conn['conn_id']} has a password"
        extra = json.dumps(conn.get("conn_extra") or {}).lower()
        assert not re.search(r"password|secret|token|key", extra), f"{conn['conn_id']} extra looks secret"


def test_no_pool_is_required_by_the_dags() -> None:
    # promotions are serialised by an advisory lock, so a deployment without a custom pool works
    assert _settings()["airflow"]["pools"] == []
    assert "pools set" not in _init_command()
    dags = (ROOT / "dags").glob("*.py")
    assert all("pool=" not in d.read_text() for d in dags)
