"""Which writing systems a text uses, and a warning when an encoder was not trained on them.

An English-only encoder (MiniLM, MPNet) turns Chinese or Russian item text into vectors that carry
little meaning, so a text model ranks near chance and nothing else says why. ``script_shares``
counts the letters of each script (the first word of a letter's Unicode name: ``LATIN``,
``CJK``, ``CYRILLIC``, ``HANGUL``, ...), and ``check_scripts`` warns once per call when most
letters lie outside the scripts of the encoder's declared languages (``Source.languages`` in
:mod:`lmrec.text.sources`).

>>> script_shares(["Heat", "玩具总动"])
{'LATIN': 0.5, 'CJK': 0.5}
"""
from __future__ import annotations

import unicodedata
import warnings
from collections import Counter
from typing import Sequence

# the scripts each declared language is written in; "multilingual" accepts any script
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {"en": ("LATIN",), "multilingual": ()}
MULTILINGUAL_ENCODER = "multilingual-e5-small"
SAMPLE = 5000  # texts read for the check: enough for a share, cheap for a large catalogue
THRESHOLD = 0.5  # warn when more than this share of letters is outside the encoder's scripts


class ScriptWarning(UserWarning):
    """Item text is mostly in a script the encoder was not trained on."""


def script_of(char: str) -> str:
    """The script of one letter, from its Unicode name ("LATIN", "CJK", "CYRILLIC", ...)."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def script_shares(texts: Sequence[str], sample: int = SAMPLE) -> dict[str, float]:
    """Share of the letters (``str.isalpha``) of the first ``sample`` texts per script, largest first."""
    counts: Counter[str] = Counter()
    for text in texts[:sample]:
        counts.update(script_of(c) for c in str(text) if c.isalpha())
    total = sum(counts.values())
    return {script: n / total for script, n in counts.most_common()} if total else {}


def foreign_share(texts: Sequence[str], languages: Sequence[str]) -> tuple[float, str | None]:
    """(share of letters outside the scripts of ``languages``, the most common such script);
    (0.0, None) when the languages include "multilingual" or a language of unknown script."""
    known: set[str] = set()
    for language in languages:
        scripts = LANGUAGE_SCRIPTS.get(language)
        if not scripts:  # multilingual, or a language this table does not know: no claim to check
            return 0.0, None
        known.update(scripts)
    shares = script_shares(texts)
    foreign = {s: v for s, v in shares.items() if s not in known}
    return sum(foreign.values()), next(iter(foreign), None)


def check_scripts(texts: Sequence[str], encoder: str, languages: Sequence[str] | None,
                  what: str = "item texts") -> str | None:
    """Warn (:class:`ScriptWarning`) when most letters of ``texts`` are in a script outside
    ``languages`` (the encoder's declared languages; None: unknown, nothing is checked).
    Returns the warning's message, or None."""
    if not languages:
        return None
    share, script = foreign_share(texts, languages)
    if share <= THRESHOLD:
        return None
    message = (f"{share:.0%} of the letters of the {what} are not in the scripts the encoder {encoder!r} was "
               f"trained on (languages: {', '.join(languages)}; most common other script: {script}); its vectors "
               f"will carry little meaning and the model may rank near chance. Use a multilingual encoder: "
               f"encoder='{MULTILINGUAL_ENCODER}' (lmrec encoders install {MULTILINGUAL_ENCODER}).")
    warnings.warn(message, ScriptWarning, stacklevel=3)
    return message
