"""The token schema family. The token itself appears once, in ``TokenCreated``."""

import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from kalimera.auth import Scope


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))] | None = Field(
        None,
        description="What the token may do; each must be a scope of the token making it. "
        "Default: the default scopes (all but agents:runtime, tokens:admin and settings:admin) "
        "that it has.",
        examples=[["conversations:read", "statistics:read"]],
    )
    expires_at: AwareDatetime | None = Field(
        None,
        description="When the token stops working (answers 401), with a time zone; never later "
        "than the making token's own expiry, which is the default when it has one.",
    )


class TokenRead(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: AwareDatetime
    last_used_at: AwareDatetime | None = Field(description="To the minute")
    expires_at: AwareDatetime | None
    revoked_at: AwareDatetime | None
    created_by: uuid.UUID | None = Field(
        description="The token that made this one; null when made by the CLI"
    )


class TokenCreated(TokenRead):
    token: str = Field(description="The token itself: shown this once, stored only as a hash")


class TokenPage(BaseModel):
    tokens: list[TokenRead]
    total: int
    pages: int
    current_page: int


class TokenRevoked(BaseModel):
    message: str = "Token revoked"
