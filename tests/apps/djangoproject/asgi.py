"""The project's ASGI application, as ``manage.py startproject`` would write it."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.djangoproject.settings")

application = get_asgi_application()
