from __future__ import annotations

from django.urls import path

from tests.apps.djangoproject import views

urlpatterns = [
    path("", views.index),
    path("async/", views.async_view),
    path("echo/", views.echo),
    path("protected/", views.protected),
    path("stream/", views.stream),
]
