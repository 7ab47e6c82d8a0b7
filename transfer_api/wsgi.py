"""WSGI entry point for gunicorn: ``transfer_api.wsgi:app``, configured by $SDWM_CONFIG."""

import os

from securedrop_wm.settings import CONFIG_ENV, load_settings
from transfer_api import create_app

os.umask(0o077)
app = create_app(load_settings(os.environ.get(CONFIG_ENV, "data/config.toml")))
