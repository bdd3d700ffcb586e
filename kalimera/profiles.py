"""Which way a call goes: shared by the agents (an agent's profile) and the conversations (a
call's), so neither domain imports the other for it."""

from enum import StrEnum


class ProfileType(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
