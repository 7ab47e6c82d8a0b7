"""The daily retention unit (``securedrop-wm maintain``) runs as the apps' user with the
same sandbox as the apps' units, from a daily timer the role enables."""

from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "ansible/roles/sdwm_app"
UNITS = ROLE / "templates/etc/systemd/system"


def _directives(text: str, after: str) -> list[str]:
    """The ``Key=value`` lines from the comment line starting with ``after`` to ``[Install]``
    or the end."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    out = []
    for line in lines[start:]:
        if line.startswith("[Install]"):
            break
        if "=" in line and not line.startswith("#"):
            out.append(line)
    return out


def test_the_maintain_unit_has_the_apps_user_and_sandbox() -> None:
    app = (UNITS / "securedrop-wm-app.service.j2").read_text()
    unit = (UNITS / "securedrop-wm-maintain.service.j2").read_text()
    assert _directives(unit, "# Sandbox") == _directives(app, "# Sandbox")
    for line in ("User={{ sdwm_common_user }}", "Group={{ sdwm_common_group }}", "UMask=0077"):
        assert line in unit.splitlines()
    assert "ExecStart={{ sdwm_app_venv }}/bin/securedrop-wm maintain" in unit.splitlines()
    assert "LimitCORE=0" in unit.splitlines()


def test_the_role_installs_and_enables_a_daily_timer() -> None:
    timer = (UNITS / "securedrop-wm-maintain.timer.j2").read_text().splitlines()
    assert "OnCalendar=daily" in timer and "Persistent=true" in timer
    tasks = yaml.safe_load((ROLE / "tasks/services.yml").read_text())
    enabled = [
        t["ansible.builtin.systemd_service"]
        for t in tasks
        if "ansible.builtin.systemd_service" in t
    ]
    assert {
        "name": "securedrop-wm-maintain.timer",
        "state": "started",
        "enabled": True,
        "daemon_reload": True,
    } in enabled
    written = [t for t in tasks if t.get("name") == "Write the daily retention units"]
    assert written and set(written[0]["loop"]) == {
        "securedrop-wm-maintain.service",
        "securedrop-wm-maintain.timer",
    }
