"""The HTTP API: the app and its server (app.py), the guard every request passes first
(guard.py), bearer-token checks for the plain Starlette routes (auth.py), silences (silences.py)."""
