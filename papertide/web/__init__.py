"""The web interface: server-rendered pages over :mod:`papertide.daily` (see :mod:`.app`)."""

from papertide.web.app import create_app

__all__ = ["create_app"]
