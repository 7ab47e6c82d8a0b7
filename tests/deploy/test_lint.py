"""The playbooks pass ansible-lint's production profile, offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deploy_harness import REPO

pytestmark = pytest.mark.deploy


def test_ansible_lint_production_profile() -> None:
    beside_python = Path(sys.executable).parent / "ansible-lint"
    lint = str(beside_python) if beside_python.exists() else shutil.which("ansible-lint")
    if lint is None:
        pytest.fail("ansible-lint not found: install it (pip install ansible-lint)")
    # The profile and offline mode come from .ansible-lint at the repository's root.
    proc = subprocess.run(
        [lint, "--offline", "--profile", "production", "ansible/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
