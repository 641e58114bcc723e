"""Which deployment a process runs in: the one switch between one machine and a cluster.

Three settings, each from a flag, a deployment YAML, or the environment (in that order):

- engine: `local` (default: a process pool on this machine, no Ray) or `ray` (decode tasks
  and model actors on a Ray cluster);
- ray_address: the cluster to join (`HOST:PORT` of the head's GCS, `ray://HOST:10001`, or
  `auto` for a cluster started on this machine);
- instance: a dagster.yaml variant for the Dagster instance (e.g. deploy/dagster.postgres.yaml);
  default: the project's SQLite dagster.yaml.

The settings travel as environment variables, so every process of a deployment (the CLI's
shard workers, `dagster dev`'s code server, daemon and run workers) reads the same ones.
`check()` fails in seconds with one line naming the bad setting, before any shard runs.
No Dagster and no Ray import at module level: the default path never loads either.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

ENGINE_ENV = "CURATION_ENGINE"
RAY_ADDRESS_ENV = "CURATION_RAY_ADDRESS"
INSTANCE_ENV = "CURATION_INSTANCE"
DEPLOYMENT_ENV = "CURATION_DEPLOYMENT"
ENGINES = ("local", "ray")
CONNECT_TIMEOUT_S = 3.0


class DeploymentError(RuntimeError):
    """A bad deployment setting; the message is one line naming it."""


@dataclass(frozen=True)
class Deployment:
    engine: str = "local"
    ray_address: str | None = None
    instance: str | None = None  # path of a dagster.yaml variant

    @property
    def uses_ray(self) -> bool:
        return self.engine == "ray"


def from_env() -> Deployment:
    base = load_yaml(os.environ[DEPLOYMENT_ENV]) if os.environ.get(DEPLOYMENT_ENV) else Deployment()
    return replace(
        base,
        engine=os.environ.get(ENGINE_ENV) or base.engine,
        ray_address=os.environ.get(RAY_ADDRESS_ENV) or base.ray_address,
        instance=os.environ.get(INSTANCE_ENV) or base.instance,
    )


def load_yaml(path: str | Path) -> Deployment:
    """A deployment file: `engine`, `ray_address`, `instance` (relative to the file)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DeploymentError(f"--deployment {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DeploymentError(f"--deployment {path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    unknown = set(data) - {"engine", "ray_address", "instance"}
    if not isinstance(data, dict) or unknown:
        raise DeploymentError(f"--deployment {path}: unknown keys {sorted(unknown)} (expected engine, ray_address, instance)")
    instance = data.get("instance")
    if instance and not Path(instance).is_absolute():
        instance = str((path.parent / instance).resolve())
    return Deployment(engine=data.get("engine") or "local", ray_address=data.get("ray_address"), instance=instance)


def resolve(engine: str | None = None, ray_address: str | None = None, instance: str | None = None,
            deployment_file: str | None = None) -> Deployment:
    """Flags over the deployment file over the environment."""
    if deployment_file:
        os.environ[DEPLOYMENT_ENV] = str(Path(deployment_file).resolve())
    current = from_env()
    return replace(current, engine=engine or current.engine, ray_address=ray_address or current.ray_address,
                   instance=str(Path(instance).resolve()) if instance else current.instance)


def export(dep: Deployment) -> None:
    """Make every child process (shard workers, dagster dev) see the same deployment."""
    os.environ[ENGINE_ENV] = dep.engine
    for env, value in ((RAY_ADDRESS_ENV, dep.ray_address), (INSTANCE_ENV, dep.instance)):
        if value:
            os.environ[env] = value
        else:
            os.environ.pop(env, None)


def check(dep: Deployment) -> None:
    """Fail fast, one readable line per bad setting, before anything is registered or run.
    A Ray address is only probed here (TCP); `ray_cluster.check_joins` joins it."""
    if dep.engine not in ENGINES:
        raise DeploymentError(f"--engine {dep.engine!r}: expected one of {', '.join(ENGINES)}")
    if dep.uses_ray:
        if not dep.ray_address:
            raise DeploymentError("--engine ray needs --ray-address (HOST:PORT, ray://HOST:10001 or auto)")
        check_ray_address(dep.ray_address)
    elif dep.ray_address:
        raise DeploymentError(f"--ray-address {dep.ray_address} is set but --engine is {dep.engine!r}; add --engine ray")
    if dep.instance:
        check_instance(dep.instance)


def _host_port(address: str) -> tuple[str, int] | None:
    if address == "auto":
        return None
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    if not parsed.hostname or not parsed.port:
        raise DeploymentError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    return parsed.hostname, parsed.port


def check_ray_address(address: str) -> None:
    """A TCP connect first: ray.init on an address nobody answers retries for a minute."""
    hp = _host_port(address)
    if hp is not None:
        try:
            with socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DeploymentError(f"--ray-address {address}: no Ray cluster answers there ({reason})") from None
    # Joining for real needs Ray: ray_cluster.check_joins does it after this probe.


def check_instance(path: str) -> None:
    """The instance file exists, and a Postgres storage in it accepts a connection now."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise DeploymentError(f"--instance {path}: no such file")
    config = yaml.safe_load(p.read_text()) or {}
    pg = (config.get("storage") or {}).get("postgres")
    if not pg:
        return
    url = _postgres_url(path, pg)
    import psycopg2

    try:  # libpq takes no "+driver" in the scheme (SQLAlchemy's postgresql+psycopg2://)
        psycopg2.connect(re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url),
                         connect_timeout=int(CONNECT_TIMEOUT_S)).close()
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DeploymentError(f"--instance {path}: Postgres at {_where(url)} refused the connection ({first})") from None


def _resolve(value, path: str, key: str):
    if isinstance(value, dict) and "env" in value:
        name = value["env"]
        if os.environ.get(name) is None:
            raise DeploymentError(f"--instance {path}: storage.postgres {key} reads ${name}, which is not set")
        return os.environ[name]
    return value


def _postgres_url(path: str, pg: dict) -> str:
    from urllib.parse import quote, urlencode

    if "postgres_url" in pg:
        return _resolve(pg["postgres_url"], path, "postgres_url")
    db = {k: _resolve(v, path, k) for k, v in (pg.get("postgres_db") or {}).items()}
    user = quote(str(db.get("username", "")), safe="")
    if db.get("password"):
        user += ":" + quote(str(db["password"]), safe="")
    query = f"?{urlencode(db['params'])}" if db.get("params") else ""
    return f"postgresql://{user}@{db.get('hostname', '')}:{db.get('port', 5432)}/{db.get('db_name', '')}{query}"


def _where(url: str) -> str:
    """host:port/db for the error line (never the password)."""
    parsed = urlparse(url)
    try:
        port = parsed.port or 5432
    except ValueError:
        port = "?"
    return f"{parsed.hostname or '(unix socket)'}:{port}/{parsed.path.lstrip('/')}"
