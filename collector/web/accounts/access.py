"""What routes ask before they answer: may this user do this, and may they see this ticket.

Objects of a site the user does not see answer 404, as if they did not exist, so a scoped
user cannot learn which tickets or devices other sites have; a visible object the user's role
may not change answers 403.
"""

from __future__ import annotations

from typing import Any

from fieldwatch.collector.web import ACTIONS, ROLES, User, allowed
from starlette.exceptions import HTTPException

from fieldwatch.errors import TicketNotFound


def require(user: User, action: str, site: str | None = None) -> None:
    """403 unless `user` may do `action` (on `site`), with a message saying what is missing."""
    if allowed(user, action, site):
        return
    need = ACTIONS.get(action)
    if need is not None and ROLES.index(user.role) >= ROLES.index(need):
        raise HTTPException(403, f"{user.name} has no access to site {site!r}")
    raise HTTPException(403, f"{user.name} is a {user.role}: {action} needs the role "
                             f"{need or 'that does not exist'}")


def require_every_site(user: User, what: str) -> None:
    """403 for scoped users on things that span every site (the outbox)."""
    if user.sites is not None:
        raise HTTPException(403, f"{what} spans every site: only users who see every site "
                                 "may use it")


def visible_ticket(store: Any, user: User, ticket_id: int) -> dict[str, Any]:
    """The ticket row, or TicketNotFound (404) when it does not exist or is of an unseen site."""
    t: dict[str, Any] = store.get_ticket(ticket_id)
    if not user.sees(t["site"]):
        raise TicketNotFound(ticket_id)
    return t
