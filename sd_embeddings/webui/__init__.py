"""The AUTOMATIC1111 adapter: the only package that talks to the WebUI's ``modules``.

Every module here imports ``modules.*`` lazily (inside functions), so importing this package does nothing and
the unit tests can run it against a small fake of the WebUI. ``entry.register()`` is called by the shim in
``scripts/``; everything else hangs off it.
"""
