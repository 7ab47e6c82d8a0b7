"""What the three web apps share: security headers, HTML error pages, translations and
the typed way to reach the core services an app was built with.

Each app (``source_ui``, ``journalist_ui``, ``transfer_api``) keeps its own
``create_app(settings)``; this package holds only the glue they would otherwise copy.
Flask lives here and in the apps, never in the core :mod:`securedrop_wm`.
"""
