"""The WSGI entry point: ``journalist_ui.wsgi:app`` with settings from ``$SDWM_WS_CONFIG``."""

import os

from securedrop_wm.workstation.settings import CONFIG_ENV, load_workstation_settings

from . import create_app

app = create_app(load_workstation_settings(os.environ[CONFIG_ENV]))
