"""What Socket.IO clients and the gateway say to each other, besides signals, as models.

The handlers (handlers.py, sessions.py) build their acks and events from these models, and
the published contract (gateway/http/contract.py, docs/asyncapi.json) is generated from
them, so the document cannot describe a payload the code does not send. Requests are read
by clients/requests.py (which also takes the older forms: a list of symbols, one symbol);
their models here describe what it accepts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.schema import PositionText

Side = Literal["BUY", "SELL"]
#: One value or a list of them, as a client may send either.
Values = Annotated[list[str] | str, Field(description="One value or a list of them.")]


class _Payload(BaseModel):
    # Exact: a field the code adds without adding it here fails the contract test.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterRequest(_Payload):
    """``subscribe``/``unsubscribe`` (and connect ``auth``): values to add or remove."""

    symbols: Values | None = None
    strategies: Values | None = None
    types: Annotated[list[Side] | Side, Field(description="BUY, SELL or both.")] | None = None


class ConnectAuth(FilterRequest):
    """The ``auth`` of the Socket.IO CONNECT packet: token, resume point, first filter."""

    # Other keys are ignored (clients may add their own), unlike in subscribe requests.
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str | None = Field(default=None, description="A client JWT (AUTH_REQUIRED).")
    offset: PositionText | None = Field(
        default=None, description="The last offset seen: the gateway sends the gap first."
    )
    latest_only: bool = Field(
        default=False,
        description="Opt in to losing older signals when the gateway is overloaded: it then "
        "sends only the newest signal of each symbol and strategy among those waiting "
        "(also as the query parameter latest_only=1). docs/delivery.md",
    )


class ConnectRefused(BaseModel):
    """python-socketio's CONNECT_ERROR data: why the connection was refused."""

    message: str


class AuthRefreshRequest(_Payload):
    token: str = Field(description="A fresh JWT for the same subject.")


class FilterAck(_Payload):
    """The filter now in force; empty lists mean any value."""

    ok: Literal[True] = True
    symbols: list[str]
    strategies: list[str]
    types: list[Side]


class Refusal(_Payload):
    """A refused request; the connection stays as it was."""

    ok: Literal[False] = False
    error: str = Field(description="Why, for people (token failures: the reason word).")


class AuthRefreshed(_Payload):
    ok: Literal[True] = True
    expires_at: float = Field(description="The new token's expiry, Unix seconds.")


class AuthExpiring(_Payload):
    expires_at: float = Field(description="When the session ends unless refreshed, Unix s.")


class AuthExpired(_Payload):
    """Empty: the token expired unrefreshed; the gateway disconnects the client."""
