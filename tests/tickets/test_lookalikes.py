"""The supervisor's mark on a requested value that reads as another.

A word mixing alphabets was marked; a whole word in another alphabet whose letters all look
Latin ("Васон", Cyrillic throughout, beside "Tan") was not, so an "Alice" typed entirely in
Cyrillic look-alikes passed unmarked. The pages' mark: test_staff_approvals.
"""

# ruff: noqa: RUF001, RUF003 - names written in look-alike letters are what is tested

import pytest

from tickets.lookalikes import LOOKS_LATIN, MIXED_ALPHABETS, value_lookalike

# "Alice" in Cyrillic letters throughout: А, palochka, і, с, е.
ALICE_CYRILLIC = "\u0410\u04cf\u0456\u0441\u0435"


@pytest.mark.parametrize(
    ("new", "old"),
    [
        (f"{ALICE_CYRILLIC} Tan", "Alice Tan"),
        ("Васон Lim", "Bob Lim"),  # beside a Latin word
        ("Васон", "Bacon Lim"),  # alone, in place of a Latin value
        ("ΤΟΜ Lee", "Tom Lee"),  # Greek capitals
        ("Jalan Ѕаја 5", "Jalan Saja 5"),  # an address
    ],
)
def test_a_word_whose_letters_all_look_latin_among_latin_text_is_marked(new, old):
    assert value_lookalike(new, old) == LOOKS_LATIN


@pytest.mark.parametrize(
    ("new", "old"),
    [
        # Russian, Greek, Malay, Chinese and Tamil names as their owners write them, replacing
        # a Latin spelling or not
        ("Вера Иванова", "Vera Ivanova"),
        ("Анна Петрова", "Anna Petrova"),
        ("Ольга Смирнова", ""),
        ("Νίκος Παπαδόπουλος", "Nikos Papadopoulos"),
        ("Nur Aisyah binti Ahmad", "Nur Aisyah"),
        ("Siti Nurhaliza", "Siti"),
        ("陈美玲", "Tan Mei Ling"),
        ("Tan Mei Ling 陈美玲", "Tan Mei Ling"),
        ("முத்து குமார்", "Muthu Kumar"),
        # a Cyrillic name wholly made of look-alike letters, with no Latin to pass for
        ("Вера", ""),
        ("Вера", "Вера Иванова"),
        ("Алексей Соколов", "Alexei Sokolov"),
    ],
)
def test_names_written_in_their_own_alphabet_are_not_marked(new, old):
    assert value_lookalike(new, old) == ""


def test_a_word_mixing_alphabets_stays_marked_as_such():
    assert value_lookalike("\u0410lice Tan", "Alice Tan") == MIXED_ALPHABETS
