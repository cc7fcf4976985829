"""Whether a requested value reads as something it is not, for the mark staff are shown.

Two ways a name is made to pass for another: a word mixing alphabets (an "Alice" whose A is
Cyrillic), and a whole word in another alphabet whose every letter looks Latin ("Васон",
Cyrillic throughout) set among Latin words or replacing a Latin value. A name written in its
own alphabet ("Вера Иванова") is neither: a Cyrillic word that cannot pass for Latin beside it
says so. Staff are shown a mark; nothing is refused.
"""

# ruff: noqa: RUF001, RUF002 - the Cyrillic, Greek and Armenian look-alikes are this module's subject

import unicodedata

from domains.validators import label_scripts_mixed, letter_script

MIXED_ALPHABETS = "mixed"
LOOKS_LATIN = "looks_latin"

# Letters of other alphabets that look like a Latin letter (Unicode's confusables, UTS 39):
# those whose look-alike is a Latin letter or its small capital (н as ʜ, т as ᴛ).
LATIN_LOOKALIKES = frozenset(
    # Cyrillic
    "АВЕКМНОРСТУХІЈЅԚԜҮӀ"
    "авекмнорстухіјѕһԁԛԝүӏ"
    # Greek
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"
    "αικνορυϲϳ"
    # Armenian
    "ՍՕ"
    "օսհոզ"
)


def _letters(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch).startswith("L")]


def word_looks_latin(word: str) -> bool:
    """Whether every letter of `word` is another alphabet's look-alike of a Latin letter."""
    letters = _letters(word)
    return bool(letters) and all(ch in LATIN_LOOKALIKES for ch in letters)


def value_lookalike(new: str, old: str = "") -> str:
    """How a requested value reads as another: MIXED_ALPHABETS, LOOKS_LATIN, or "".

    LOOKS_LATIN: a word looks Latin throughout while the value's other words are Latin (at
    least one), or, with none, while the current value `old` is Latin.
    """
    words = new.split()
    if any(label_scripts_mixed(word) for word in words):
        return MIXED_ALPHABETS
    rest_words = [word for word in words if not word_looks_latin(word)]
    if len(rest_words) == len(words):
        return ""
    rest = {letter_script(ch) for word in rest_words for ch in _letters(word)}
    rest.discard("")
    if rest - {"LATIN"}:
        return ""  # written in its own alphabet, beside words that cannot pass for Latin
    latin_beside = "LATIN" in rest
    if latin_beside or any(letter_script(ch) == "LATIN" for ch in _letters(old)):
        return LOOKS_LATIN
    return ""
