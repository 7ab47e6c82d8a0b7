"""``python -m securedrop_wm.workstation ...``: the same commands as
``securedrop-wm workstation ...``."""

from .cli import workstation

workstation()
