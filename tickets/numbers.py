"""Ticket numbers: make, normalise, check.

A ticket number is the customer's key on every channel, so it must be easy to
read over the phone and impossible to guess:

- 11 random symbols from Crockford's base-32 alphabet (no I, L, O, U):
  55 bits from the operating system's CSPRNG, so enumerating numbers is
  hopeless;
- 1 check symbol from the same alphabet (Luhn mod 32), which catches every
  single-symbol typo and every swap of two adjacent different symbols before
  the database is asked;
- shown in three groups of four: ``7K3Q-9XWD-M2PA``.

Input is forgiving: case, spaces, dashes, dots and underscores are ignored,
O is read as 0 and I/L as 1, as Crockford's alphabet specifies.
"""

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE = len(ALPHABET)  # 32
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}

PAYLOAD_LENGTH = 11
LENGTH = PAYLOAD_LENGTH + 1
GROUP = 4
DISPLAY_LENGTH = LENGTH + LENGTH // GROUP - 1  # 14, with the dashes

_SEPARATORS = re.compile(r"[\s\-_.]+")
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})

# Matches a formatted ticket number anywhere in a text (a scanned URL, a pasted line).
FORMATTED_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


class InvalidNumber(ValueError):
    """The text cannot be a ticket number (wrong length, symbol or check)."""


def check_symbol(payload):
    """Luhn mod N over the payload: the symbol that makes the whole valid."""
    factor = 2
    total = 0
    for symbol in reversed(payload):
        addend = factor * _VALUE[symbol]
        factor = 1 if factor == 2 else 2
        total += addend // BASE + addend % BASE
    return ALPHABET[(BASE - total % BASE) % BASE]


def is_valid_compact(compact):
    """True when ``compact`` (12 canonical symbols, no dashes) passes the check."""
    if len(compact) != LENGTH or any(symbol not in _VALUE for symbol in compact):
        return False
    return check_symbol(compact[:-1]) == compact[-1]


def format_compact(compact):
    return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))


def generate():
    """A new random, valid, formatted ticket number."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(PAYLOAD_LENGTH))
    return format_compact(payload + check_symbol(payload))


def normalise(text):
    """The canonical, formatted number for what someone typed or scanned.

    Raises InvalidNumber when it cannot be a ticket number, so a typo is caught
    before any lookup.
    """
    if text is None:
        raise InvalidNumber("empty")
    compact = _SEPARATORS.sub("", str(text)).upper().translate(_LOOKALIKES)
    if len(compact) != LENGTH:
        raise InvalidNumber("wrong length")
    if any(symbol not in _VALUE for symbol in compact):
        raise InvalidNumber("unknown symbol")
    if not is_valid_compact(compact):
        raise InvalidNumber("check symbol does not match")
    return format_compact(compact)


def parse(text):
    """Like normalise(), but returns None instead of raising."""
    try:
        return normalise(text)
    except InvalidNumber:
        return None
