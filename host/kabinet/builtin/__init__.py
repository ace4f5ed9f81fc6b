"""The built-in ``host`` plugin: the host's own features, registered through the same hooks
as any other plugin and laid out like an app (``plugin.py``, ``jobs.py``, ``api.py``,
``migrations/``). The other built-ins are :mod:`kabinet.identity`, :mod:`kabinet.roles`,
:mod:`kabinet.shell` and :mod:`kabinet.keycloak`."""
