"""WSGI entry point for gunicorn: ``source_ui.wsgi:app``, configured by $SDWM_CONFIG."""

import os

from securedrop_wm.settings import CONFIG_ENV, load_settings
from source_ui import create_app

os.umask(0o077)
app = create_app(load_settings(os.environ.get(CONFIG_ENV, "data/config.toml")))
