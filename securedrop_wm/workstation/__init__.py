"""The air-gapped responder workstation: case database, accounts, import, replies.

Nothing here imports Flask; :mod:`journalist_ui` is a thin web layer over it.
"""
