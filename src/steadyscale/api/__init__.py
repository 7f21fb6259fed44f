"""The HTTP API served by ``steadyscale run`` and its live web page (``static/``)."""
