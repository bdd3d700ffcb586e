"""The thirteen configuration sections: the runtime's section names and their snake_case keys.

Postgres and the runtime export key the document by section name (as the voice runtime's
``appsettings.json`` does); API bodies and responses use the snake_case keys, and accept both.
"""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("AIHub", "ai_hub"),
    ("AudioServer", "audio_server"),
    ("Azure", "azure"),
    ("ElevenLabsTTS", "eleven_labs_tts"),
    ("CallProcessing", "call_processing"),
    ("Redis", "redis"),
    ("KnowledgeBase", "knowledge_base"),
    ("BackgroundAudio", "background_audio"),
    ("WebTalk", "web_talk"),
    ("ExperimentalFeatures", "experimental_features"),
    ("Serilog", "serilog"),
    ("Logging", "logging"),
    ("AllowedHosts", "allowed_hosts"),
)

NAMES: tuple[str, ...] = tuple(name for name, _ in SECTIONS)
KEYS: tuple[str, ...] = tuple(key for _, key in SECTIONS)
KEY_OF: dict[str, str] = dict(SECTIONS)
NAME_OF: dict[str, str] = {key: name for name, key in SECTIONS}

# A section body over this many bytes (as JSON) is refused with 413.
MAX_SECTION_BYTES = 64 * 1024


def section_name(text: str) -> str | None:
    """The section name for a path segment that is a section name or its snake_case key."""
    if text in KEY_OF:
        return text
    return NAME_OF.get(text)


# Fields a section marks secret beyond the name rule of ``secrets.is_secret_name`` (lower case,
# top level of the section): a SAS URL and a credentials object grant access like a key does.
EXTRA_SECRETS: dict[str, frozenset[str]] = {
    "KnowledgeBase": frozenset({"sasurl"}),
    "AudioServer": frozenset({"credentials"}),
}
