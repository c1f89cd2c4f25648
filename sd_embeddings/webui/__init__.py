"""The WebUI adapter: the only package that talks to the WebUI's ``modules``.

Every module here imports ``modules.*`` lazily (inside functions), so importing this package does nothing and
the unit tests can run it against a small fake of the WebUI. ``entry.register()`` is called by the shim in
``scripts/``; it picks a ``host.Host`` (``a1111.A1111Host`` today) by probing the WebUI's classes, and everything else
reaches the WebUI's prompt path through that host.
"""
