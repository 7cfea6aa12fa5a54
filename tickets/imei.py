"""IMEI and serial numbers: normalise and check.

Customers and clerks type or scan either an IMEI (15 digits, the last one a
Luhn check digit) or a manufacturer's serial (letters and digits). Both are
stored normalised: upper case, without spaces, dashes, slashes or dots, so a
look-up by either finds the device however it was typed.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_SEPARATORS = re.compile(r"[\s\-/.]+")
_SERIAL = re.compile(r"^[0-9A-Z]{4,32}$")
IMEI_LENGTH = 15


def luhn_valid(digits):
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def looks_like_imei(value):
    return len(value) == IMEI_LENGTH and value.isdigit()


def normalise(text):
    """The stored form of an IMEI or serial; raises ValidationError if it cannot be one."""
    value = _SEPARATORS.sub("", text or "").upper()
    if not value:
        raise ValidationError(_("Enter the IMEI or serial number."), code="required")
    if looks_like_imei(value):
        if not luhn_valid(value):
            raise ValidationError(
                _("This IMEI is not valid: one of its 15 digits is wrong. Check it on the box or dial *#06#."),
                code="imei_checksum",
            )
        return value
    if not _SERIAL.match(value):
        raise ValidationError(
            _("An IMEI has 15 digits; a serial number has 4 to 32 letters and digits."),
            code="serial_format",
        )
    return value


def parse(text):
    """Like normalise(), but returns None instead of raising."""
    try:
        return normalise(text)
    except ValidationError:
        return None
