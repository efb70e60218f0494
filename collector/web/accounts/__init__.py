"""Desk accounts: users (store.py), argon2 passwords (passwords.py), login sessions
(sessions.py), CSRF tokens (csrf.py), the middleware that says who is asking (middleware.py),
the login/logout routes (routes.py) and the checks routes make (access.py).

Pages need only `csrf_token` and `form_of` from here, and the contract in collector/web.
"""

from fieldwatch.collector.web.accounts.csrf import csrf_token, form_of

__all__ = ["csrf_token", "form_of"]
