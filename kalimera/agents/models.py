"""Pydantic models: one per configuration section, and the agent's schema family.

Section fields are named as in the voice runtime's ``appsettings.json`` (``ApiKey``) and accept
their snake_case spelling too (``api_key``); fields a model does not name are kept as sent. A
secret field is typed ``str`` or left open, so the mask ``"********"`` is always a valid value.
"""

import math
import uuid
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    RootModel,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from kalimera.agents.sections import NAMES, SECTIONS
from kalimera.profiles import ProfileType

# An avatar is judged by its URL alone (no network call at write time): an http(s) URL whose
# path ends in one of these image extensions.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif", ".bmp"})

MAX_DEPTH = 32
INT64 = 2**63


def _check_text(text: str) -> str:
    if "\x00" in text:
        msg = "text must not contain NUL characters"
        raise ValueError(msg)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        msg = "text must be valid Unicode (no lone surrogates)"
        raise ValueError(msg) from None
    return text


def storable(value: Any) -> Any:
    """``value`` when Postgres can store it as jsonb and every reader can serialise it back:
    text without NUL or lone surrogates, integers within 64 bits, finite numbers, nesting at
    most ``MAX_DEPTH`` deep. Raises ValueError (a 422) otherwise."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            msg = f"nested more than {MAX_DEPTH} levels deep"
            raise ValueError(msg)
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int) and not -INT64 <= item < INT64:
            msg = "integers must fit in 64 bits"
            raise ValueError(msg)
        elif isinstance(item, float) and not math.isfinite(item):
            msg = "numbers must be finite"
            raise ValueError(msg)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return value


Text = Annotated[str, AfterValidator(_check_text)]
Secret = str | None
Fraction = Annotated[float, Field(ge=0, le=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
DotnetLevel = Literal["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"]
SerilogLevel = Literal["Verbose", "Debug", "Information", "Warning", "Error", "Fatal"]


class Section(BaseModel):
    """A section: known fields typed, unknown fields kept, PascalCase or snake_case names."""

    model_config = ConfigDict(
        extra="allow", alias_generator=to_pascal, populate_by_name=True, frozen=True
    )

    _storable = model_validator(mode="before")(storable)

    def stored(self) -> dict[str, Any]:
        """What is stored: the fields the client sent, under their appsettings names."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class AIHub(Section):
    endpoint: HttpUrl | None = None
    api_key: Secret = None
    deployment_name: str | None = None
    model_name: str | None = None
    api_version: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Fraction | None = None
    system_prompt: str | None = None
    welcome_message: str | None = None


class AudioServer(Section):
    host: str | None = None
    port: Port | None = None
    sample_rate: Annotated[int, Field(gt=0, le=384_000)] | None = None
    channels: Annotated[int, Field(ge=1, le=8)] | None = None
    buffer_milliseconds: Annotated[int, Field(gt=0, le=60_000)] | None = None
    credentials: Any = None


class Azure(Section):
    speech_key: Secret = None
    region: str | None = None
    recognition_language: str | None = None
    voice_name: str | None = None
    speech_endpoint: HttpUrl | None = None


class ElevenLabsTTS(Section):
    api_key: Secret = None
    voice_id: str | None = None
    model_id: str | None = None
    stability: Fraction | None = None
    similarity_boost: Fraction | None = None
    style: Fraction | None = None
    use_speaker_boost: bool | None = None
    optimize_streaming_latency: Annotated[int, Field(ge=0, le=4)] | None = None
    output_format: str | None = None


class CallProcessing(Section):
    max_call_duration_seconds: Annotated[int, Field(gt=0, le=86_400)] | None = None
    silence_timeout_ms: Annotated[int, Field(ge=0, le=600_000)] | None = None
    record_calls: bool | None = None
    language: str | None = None
    end_call_phrases: list[str] | None = None


class Redis(Section):
    connection_string: Secret = None
    instance_name: str | None = None
    database: Annotated[int, Field(ge=0)] | None = None


class KnowledgeBase(Section):
    enabled: bool | None = None
    endpoint: HttpUrl | None = None
    index_name: str | None = None
    api_key: Secret = None
    sas_url: Secret = None
    top_k: Annotated[int, Field(ge=1, le=100)] | None = None


class BackgroundAudio(Section):
    enabled: bool | None = None
    file_url: HttpUrl | None = None
    volume: Fraction | None = None
    loop: bool | None = None


class WebTalk(Section):
    enabled: bool | None = None
    allowed_origins: list[str] | None = None
    max_sessions: Annotated[int, Field(ge=0)] | None = None


class ExperimentalFeatures(Section):
    """Feature flags: any name, kept as sent."""


class Serilog(Section):
    using: list[str] | None = None
    minimum_level: SerilogLevel | dict[str, Any] | None = None
    write_to: list[dict[str, Any]] | None = None
    enrich: list[str] | None = None
    properties: dict[str, Any] | None = None


class Logging(Section):
    log_level: dict[str, DotnetLevel] | None = None


class AllowedHosts(RootModel[str | dict[str, Any]]):
    """``"*"`` or a host list as in appsettings.json, or an object."""

    _storable = model_validator(mode="before")(storable)

    def stored(self) -> str | dict[str, Any]:
        return self.root


SECTION_MODELS: dict[str, type[Section] | type[AllowedHosts]] = {
    "AIHub": AIHub,
    "AudioServer": AudioServer,
    "Azure": Azure,
    "ElevenLabsTTS": ElevenLabsTTS,
    "CallProcessing": CallProcessing,
    "Redis": Redis,
    "KnowledgeBase": KnowledgeBase,
    "BackgroundAudio": BackgroundAudio,
    "WebTalk": WebTalk,
    "ExperimentalFeatures": ExperimentalFeatures,
    "Serilog": Serilog,
    "Logging": Logging,
    "AllowedHosts": AllowedHosts,
}
assert tuple(SECTION_MODELS) == NAMES


def _check_avatar(value: HttpUrl | None) -> HttpUrl | None:
    if value is not None and PurePosixPath(value.path or "").suffix.lower() not in IMAGE_EXTENSIONS:
        msg = f"must be an http(s) URL to an image ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        raise ValueError(msg)
    return value


class _Sections(BaseModel):
    """The thirteen sections, each under its snake_case key or its section name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ai_hub: AIHub | None = Field(None, validation_alias=AliasChoices("ai_hub", "AIHub"))
    audio_server: AudioServer | None = Field(
        None, validation_alias=AliasChoices("audio_server", "AudioServer")
    )
    azure: Azure | None = Field(None, validation_alias=AliasChoices("azure", "Azure"))
    eleven_labs_tts: ElevenLabsTTS | None = Field(
        None, validation_alias=AliasChoices("eleven_labs_tts", "ElevenLabsTTS")
    )
    call_processing: CallProcessing | None = Field(
        None, validation_alias=AliasChoices("call_processing", "CallProcessing")
    )
    redis: Redis | None = Field(None, validation_alias=AliasChoices("redis", "Redis"))
    knowledge_base: KnowledgeBase | None = Field(
        None, validation_alias=AliasChoices("knowledge_base", "KnowledgeBase")
    )
    background_audio: BackgroundAudio | None = Field(
        None, validation_alias=AliasChoices("background_audio", "BackgroundAudio")
    )
    web_talk: WebTalk | None = Field(None, validation_alias=AliasChoices("web_talk", "WebTalk"))
    experimental_features: ExperimentalFeatures | None = Field(
        None, validation_alias=AliasChoices("experimental_features", "ExperimentalFeatures")
    )
    serilog: Serilog | None = Field(None, validation_alias=AliasChoices("serilog", "Serilog"))
    logging: Logging | None = Field(None, validation_alias=AliasChoices("logging", "Logging"))
    allowed_hosts: AllowedHosts | None = Field(
        None, validation_alias=AliasChoices("allowed_hosts", "AllowedHosts")
    )

    def sections(self) -> dict[str, Any]:
        """The sections the body gave, keyed by section name, as they are to be stored."""
        given = {}
        for name, key in SECTIONS:
            if key in self.model_fields_set:
                value = getattr(self, key)
                given[name] = {} if value is None else value.stored()
        return given


class AgentUpdate(_Sections):
    """A full update: the fields given change; sections given replace those sections."""

    name: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    profile_type: ProfileType | None = Field(
        None, validation_alias=AliasChoices("profile_type", "type")
    )
    description: Annotated[Text, Field(max_length=5000)] | None = None
    avatar: Annotated[HttpUrl, Field(max_length=2048)] | None = None

    _avatar = field_validator("avatar")(_check_avatar)

    @field_validator("name", "profile_type")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            msg = "may be omitted but not null"
            raise ValueError(msg)
        return value

    def columns(self) -> dict[str, Any]:
        """The fixed columns the body gave."""
        fields = ("name", "profile_type", "description", "avatar")
        values = {f: getattr(self, f) for f in fields if f in self.model_fields_set}
        if values.get("avatar") is not None:
            values["avatar"] = str(values["avatar"])
        if "profile_type" in values:
            values["profile_type"] = ProfileType(values["profile_type"]).value
        return values


class AgentCreate(AgentUpdate):
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    # The seed's create bodies carry no type: an agent answers calls unless told otherwise.
    profile_type: ProfileType = Field(
        ProfileType.INBOUND, validation_alias=AliasChoices("profile_type", "type")
    )

    def columns(self) -> dict[str, Any]:
        given = {"name": self.name, "profile_type": self.profile_type.value}
        return {"description": None, "avatar": None, **super().columns(), **given}


SectionDocument = dict[str, Any] | str


class AgentRead(BaseModel):
    """An agent as every read answers it: secrets masked, every section present."""

    id: uuid.UUID
    name: str
    description: str | None
    avatar: str | None
    profile_type: ProfileType
    created_at: datetime
    updated_at: datetime
    ai_hub: dict[str, Any]
    audio_server: dict[str, Any]
    azure: dict[str, Any]
    eleven_labs_tts: dict[str, Any]
    call_processing: dict[str, Any]
    redis: dict[str, Any]
    knowledge_base: dict[str, Any]
    background_audio: dict[str, Any]
    web_talk: dict[str, Any]
    experimental_features: dict[str, Any]
    serilog: dict[str, Any]
    logging: dict[str, Any]
    allowed_hosts: SectionDocument


class AgentPage(BaseModel):
    items: list[AgentRead]
    total: int
    page: int
    limit: int


class AgentCreated(BaseModel):
    id: uuid.UUID
    message: Literal["AI Agent created successfully"] = "AI Agent created successfully"


class AgentUpdated(BaseModel):
    id: uuid.UUID
    message: Literal["AI Agent updated successfully"] = "AI Agent updated successfully"


class AgentDeleted(BaseModel):
    message: Literal["AI Agent deleted successfully"] = "AI Agent deleted successfully"


class SectionUpdated(BaseModel):
    message: Literal["Configuration updated successfully"] = "Configuration updated successfully"
    configuration: dict[str, SectionDocument]
