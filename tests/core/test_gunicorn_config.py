"""The deployed gunicorn config applies the package's own policy: no access log."""

from __future__ import annotations

import runpy
from pathlib import Path

import jinja2

from securedrop_wm.server import gunicorn_options, gunicorn_policy

TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "ansible/roles/sdwm_app/templates/etc/securedrop-wm/gunicorn/app.conf.py.j2"
)


def test_the_ansible_config_is_the_policy_with_the_roles_variables(tmp_path: Path) -> None:
    role = {
        "ansible_managed": "Ansible managed",
        "sdwm_app_gunicorn": {"name": "source", "socket": "/run/x/s.sock", "workers": 3},
        "sdwm_common_run_dir": "/run/x",
        "sdwm_app_log_level": "error",
        "sdwm_app_worker_timeout": 1800,
    }
    role["sdwm_app_gunicorn"]["threads"] = 5
    config = tmp_path / "source.conf.py"
    config.write_text(jinja2.Template(TEMPLATE.read_text()).render(**role))
    settings = runpy.run_path(str(config))
    policy = gunicorn_policy(timeout=1800, loglevel="error")
    assert {k: settings[k] for k in policy} == policy
    assert settings["accesslog"] is None
    assert settings["bind"] == ["unix:/run/x/s.sock"]
    assert (settings["workers"], settings["threads"], settings["umask"]) == (3, 5, 0o111)


def test_serve_uses_the_same_policy() -> None:
    options = gunicorn_options("127.0.0.1", 8080, 2, 4)
    assert options["bind"] == "127.0.0.1:8080"
    assert {k: options[k] for k in gunicorn_policy()} == gunicorn_policy()
    assert options["accesslog"] is None
    assert options["timeout"] == 3600
    assert options["loglevel"] == "warning"
