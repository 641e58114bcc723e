"""Bad deployment settings fail at start-up within seconds, in one line naming the setting,
before anything is registered or written (no server needed: nothing listens at a free port)."""

import socket
from pathlib import Path

import pytest

from curation_assets.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_YAML = REPO_ROOT / "deploy" / "dagster.postgres.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def deployment_env(monkeypatch):
    for name in ("CURATION_ENGINE", "CURATION_RAY_ADDRESS", "CURATION_INSTANCE", "CURATION_DEPLOYMENT"):
        monkeypatch.setenv(name, "")  # recorded, so whatever main() exports is undone after the test
        monkeypatch.delenv(name)


def test_refusing_postgres_fails_at_start_in_one_line(isolated_env, deployment_env, demo_copy, monkeypatch, capsys):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("CURATION_PG_URL", f"postgresql+psycopg2://curation@127.0.0.1:{port}/postgres")
    data = isolated_env / "never"
    code = main(["run", "--input", str(demo_copy / "manifest.jsonl"), "--data-dir", str(data),
                 "--instance", str(POSTGRES_YAML)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: --instance {POSTGRES_YAML}: Postgres at 127.0.0.1:{port}"), err
    assert "refused" in err[0]
    assert not data.exists()  # nothing registered, no store created


def test_unset_postgres_credentials_fail_in_one_line(isolated_env, deployment_env, demo_copy, monkeypatch, capsys):
    monkeypatch.delenv("CURATION_PG_URL", raising=False)
    assert main(["run", "--input", str(demo_copy), "--data-dir", str(isolated_env / "never"),
                 "--instance", str(POSTGRES_YAML)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --instance {POSTGRES_YAML}: storage.postgres postgres_url reads $CURATION_PG_URL, which is not set")


def test_unreachable_ray_address_fails_at_start_in_one_line(isolated_env, deployment_env, demo_copy, capsys):
    port = _free_port()
    data = isolated_env / "never"
    assert main(["run", "--input", str(demo_copy), "--data-dir", str(data), "--engine", "ray",
                 "--ray-address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there (Connection refused)"]
    assert not data.exists()


def test_deployment_file_is_the_one_switch(isolated_env, deployment_env, demo_copy, tmp_path, capsys):
    port = _free_port()
    deploy = tmp_path / "cluster.yaml"
    deploy.write_text(f"engine: ray\nray_address: 127.0.0.1:{port}\ninstance: {POSTGRES_YAML}\n")
    assert main(["run", "--input", str(demo_copy), "--data-dir", str(isolated_env / "never"),
                 "--deployment", str(deploy)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there (Connection refused)")
    deploy.write_text("engine: spark\n")
    assert main(["run", "--input", str(demo_copy), "--data-dir", str(isolated_env / "never"),
                 "--deployment", str(deploy)]) == 2
    assert capsys.readouterr().err.strip() == "error: --engine 'spark': expected one of local, ray"
    assert not (isolated_env / "never").exists()


def test_ray_address_without_ray_engine_is_refused(isolated_env, deployment_env, demo_copy, capsys):
    assert main(["run", "--input", str(demo_copy), "--data-dir", str(isolated_env / "never"),
                 "--ray-address", "127.0.0.1:6379"]) == 2
    assert "add --engine ray" in capsys.readouterr().err
