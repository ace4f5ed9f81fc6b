"""The built-in ``shell`` plugin: the layout of every page (``templates/shell/``, the
static files in ``static/shell/``), the home page, the language switch and the list of
installed plugins."""
