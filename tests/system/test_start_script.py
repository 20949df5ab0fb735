"""`bash scripts/start` on a fresh copy: the `.env` it makes holds secrets, so it is the
user's alone (mode 600), and it says what to fill in instead of starting half set up."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_start_makes_a_private_env_from_the_template(tmp_path: Path) -> None:
    tree = tmp_path / "threadscribe"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "start", tree / "scripts" / "start")
    shutil.copy(ROOT / ".env.example", tree / ".env.example")
    # The project's own virtualenv stands in for the one scripts/start would make, and the
    # install step is pointed at it: what is under test is what happens to `.env`.
    venv_bin = tree / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    done = subprocess.run(
        ["bash", "scripts/start"], cwd=tree, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1, done.stderr
    made = tree / ".env"
    assert made.read_text() == (tree / ".env.example").read_text()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert "put your AssemblyAI key" in done.stdout
    assert "threadscribe doctor" in done.stdout
