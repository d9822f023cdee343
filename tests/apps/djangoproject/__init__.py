"""A minimal Django project served through its ASGI handler (no database)."""
