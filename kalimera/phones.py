"""Phone numbers in E.164, the one form in which a contact's number and a call's are compared.

A contact's ``contact_no`` is stored in E.164 (``+302101234567``); telephony's numbers are
stored as sent, and the call's counterpart in E.164 beside them (``contact_number``), so a
conversation finds its contact by equality on an index.
"""


def e164(raw: str, region: str) -> str:
    """``raw`` in E.164; numbers without a country code are read as in ``region``.

    Raises ValueError with a message for the caller when it is not a valid phone number.
    """
    import phonenumbers  # here, not at the top: the cold start need not load its metadata

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        msg = "not a phone number"
        raise ValueError(msg) from None
    if not phonenumbers.is_valid_number(number):
        msg = "not a valid phone number (write it with its country code, e.g. +302101234567)"
        raise ValueError(msg)
    if number.extension:
        msg = "phone number extensions are not supported"
        raise ValueError(msg)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def e164_or_none(raw: str | None, region: str) -> str | None:
    """``raw`` in E.164, or None when there is none or it is no valid number (``anonymous``,
    a SIP address, a typo): such a call has no contact."""
    if raw is None or not raw.strip():
        return None
    try:
        return e164(raw, region)
    except ValueError:
        return None
