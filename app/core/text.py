"""Identity text: one normalization for comparison keys, one validator for names.

Every identity string (email, tag name) goes through `identity_key` / `normalize_email` at
creation, at login and in every uniqueness check, so "the same string" means the same thing
everywhere: NFKC folds compatibility forms (ﬁ → fi, ｘ → x, composed vs. decomposed accents),
casefold is Unicode's case-insensitive comparison (ß → ss, İ → i̇), and email domains are
compared as IDNA A-labels (bücher.de ≡ xn--bcher-kva.de).

`check_name` refuses what makes a name display as something else: control characters (TAB,
LF, ...), bidi overrides and isolates (U+202E ...), zero-width and other invisible format
characters, private-use and unassigned code points, lone surrogates and NUL.
`check_single_script` refuses identifiers mixing scripts (Latin "bob" vs. Cyrillic-o "bоb"),
a short version of Unicode TS #39's "highly restrictive" profile.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Invisible format characters a display name may legitimately need: ZWNJ/ZWJ shape Persian,
# Indic scripts and emoji sequences. Identifiers (emails, tags) refuse them too.
_NAME_JOINERS = frozenset("\u200c\u200d")
# Script sets UTS #39 allows together (Japanese, Chinese with Bopomofo, Korean), besides one script.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def identity_key(value: str) -> str:
    """The comparison key of an identity string: NFKC, casefold, NFKC again (casefold can
    produce non-normalized sequences), surrounding whitespace removed."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold()).strip()


def normalize_email(value: str) -> str:
    """The stored and compared form of an email: key of the local part @ A-label domain.

    Works on any string (login gets unvalidated input): what cannot be IDNA-encoded keeps its
    identity key, which can then match no stored (validated) address.
    """
    local, at, domain = identity_key(value).rpartition("@")
    if not at:
        return identity_key(value)
    return f"{local}@{_domain_key(domain)}"


@lru_cache(maxsize=1024)
def _domain_key(domain: str) -> str:
    try:
        import idna  # email-validator's own dependency: IDNA 2008 with UTS #46 mapping

        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except (UnicodeError, ValueError, ImportError):  # idna.IDNAError is a UnicodeError
        return domain


def _bad_char(ch: str, allow_joiners: bool) -> bool:
    category = unicodedata.category(ch)
    if category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
        return True
    if category == "Cf":
        return not (allow_joiners and ch in _NAME_JOINERS)
    return False


def check_name(value: str, *, identifier: bool = False) -> str:
    """Refuse control, bidi, zero-width and other invisible characters (pydantic → 422).

    Used as an AfterValidator: the ValueError becomes a 422 naming the field.
    """
    for ch in value:
        if _bad_char(ch, allow_joiners=not identifier):
            raise ValueError(
                f"must not contain control, bidi or invisible characters (found U+{ord(ch):04X})"
            )
    return value


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None  # digits, punctuation, symbols: "Common", fit any script
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else None


def check_single_script(value: str) -> str:
    """Refuse an identifier whose letters mix scripts in a way UTS #39 does not allow."""
    scripts = {s for s in map(_script, value) if s}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        raise ValueError(f"must not mix scripts ({', '.join(sorted(scripts))}): it could imitate another name")
    return value


def clean_identifier(value: str) -> str:
    """Names that identify (tags): no invisible characters, one script, NFKC-normalized."""
    check_name(value, identifier=True)
    check_single_script(value)
    return unicodedata.normalize("NFKC", value)


def clean_display_name(value: str) -> str:
    """Names people read (full names, item names): no control/bidi/invisible, NFC-normalized."""
    check_name(value)
    return unicodedata.normalize("NFC", value)
