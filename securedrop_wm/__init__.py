"""securedrop-wm core: everything both user interfaces stand on, with no Flask import."""

__version__ = "0.1.0"
