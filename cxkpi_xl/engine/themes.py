"""Feedback themes: the phrases that recur in free-text comments, each with how many
comments have it and one of them as an example.

A phrase is a run of two or three words inside one clause of a comment that neither
starts nor ends with a stop word ("easy to use", "great support team"; not "to use" or
"every"). Stop words are those of the comments' language, told by which of the shipped
lists (English, French, German, Spanish) covers most of their words; no download is
needed. A two-word phrase that only ever occurs inside one three-word phrase is left
out in favour of the longer one. Each comment counts once per phrase however often it
repeats it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

STOP_WORDS_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a about above after again against all also am an and any are aren't as at be "
        "because been before being below between both but by can can't cannot could "
        "couldn't did didn't do does doesn't doing don't down during each even ever every "
        "few for from further get gets got had hadn't has hasn't have haven't having he "
        "her here hers herself him himself his how i i'd i'll i'm i've if in into is isn't "
        "it it's its itself just let's me more most much must my myself no nor not now of "
        "off on once one only or other ought our ours ourselves out over own quite rather "
        "really same shall she should so some still such than that that's the their theirs "
        "them themselves then there there's these they they're this those through to too "
        "under until up upon us very was wasn't we we're were weren't what what's when "
        "where which while who whom why will with won't would wouldn't yet you you're your "
        "yours yourself".split()
    ),
    "fr": frozenset(
        "a au aux avec ce ces cette dans de des du elle en est et eux il ils je la le les "
        "leur lui ma mais me mes moi mon ne nos notre nous on ou par pas pour qu que qui sa "
        "se ses son sont sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y "
        "été être avoir ai as avons avez ont était très trop plus peu bien aussi".split()
    ),
    "de": frozenset(
        "aber alle als also am an auch auf aus bei bin bis bist da damit dann das dass dem "
        "den der des die dies doch du durch ein eine einem einen einer eines er es für hat "
        "hatte ich ihr im in ist ja kann kein man mehr mich mir mit muss nach nicht noch nur "
        "oder ob ohne schon sehr sein sich sie sind so über um und uns von vor war wie wir "
        "wird wo zu zum zur zu".split()
    ),
    "es": frozenset(
        "a al algo como con de del el ella en entre es esta este esto ha hay la las le les "
        "lo los más me mi muy no nos o para pero por que se sin su sus también te tiene un "
        "una uno unos y ya yo era son está están ser fue muy mucho poco".split()
    ),
}
"""Stop-word lists per language (ISO 639-1 code); short lists written here, kept light
(the phrases only need the commonest function words)."""

CONJUNCTIONS: dict[str, frozenset[str]] = {
    "en": frozenset("and or but nor yet so because although though while".split()),
    "fr": frozenset("et ou mais donc car".split()),
    "de": frozenset("und oder aber denn sondern".split()),
    "es": frozenset("y e o u pero sino".split()),
}
"""Words that join two thoughts: a phrase never runs across one ("team and easy")."""

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\n\r\t\"/|&+-]+")


@dataclass(frozen=True)
class Theme:
    """A phrase, how many comments have it, and one of them."""

    phrase: str
    comments: int
    example: str


def language_of(texts: Iterable[str]) -> str:
    """The language whose stop words cover most words of ``texts`` (English on a tie or
    when none is found)."""
    words = Counter(w for t in texts for w in _WORD.findall(t.lower().replace("’", "'")))
    hits = {
        lang: sum(n for w, n in words.items() if w in stop)
        for lang, stop in STOP_WORDS_BY_LANGUAGE.items()
    }
    best = max(hits, key=lambda lang: (hits[lang], lang == "en"))
    return best if hits[best] else "en"


def _clauses(text: str, joins: frozenset[str]) -> list[list[str]]:
    """The words of each clause of ``text``: split at punctuation and conjunctions."""
    out: list[list[str]] = []
    for part in _CLAUSE.split(text.lower().replace("’", "'")):
        out.append([])
        for word in _WORD.findall(part):
            if word in joins:
                out.append([])
            else:
                out[-1].append(word)
    return out


def _phrases(text: str, stop: frozenset[str], joins: frozenset[str]) -> set[str]:
    found = set()
    for words in _clauses(text, joins):
        for n in (2, 3):
            for i in range(len(words) - n + 1):
                run = words[i : i + n]
                if run[0] in stop or run[-1] in stop:
                    continue
                found.add(" ".join(run))
    return found


def feedback_themes(
    comments: Iterable[Any], top: int = 10, language: str | None = None
) -> list[Theme]:
    """The ``top`` phrases of ``comments`` (blanks and non-text ignored), most comments
    first, then longer phrases, then alphabetical; stop words of ``language`` (detected
    when None). Phrases found in one comment only are left out when any phrase is found
    in two or more."""
    texts = Counter(" ".join(c.split()) for c in comments if isinstance(c, str) and c.strip())
    if not texts:
        return []
    language = language or language_of(texts)
    stop = STOP_WORDS_BY_LANGUAGE.get(language, frozenset())
    joins = CONJUNCTIONS.get(language, frozenset())
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for text, n in sorted(texts.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0])):
        for phrase in _phrases(text, stop, joins):
            counts[phrase] += n
            examples.setdefault(phrase, text)  # the most frequent (then shortest) comment
    # A pair inside a triple of the same count says nothing the triple does not.
    triples = [p for p in counts if p.count(" ") == 2]
    for pair in [p for p in counts if p.count(" ") == 1]:
        if any(counts[t] == counts[pair] and f" {pair} " in f" {t} " for t in triples):
            del counts[pair]
    if any(n >= 2 for n in counts.values()):
        counts = Counter({p: n for p, n in counts.items() if n >= 2})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -kv[0].count(" "), kv[0]))
    return [Theme(p, n, examples[p]) for p, n in ranked[:top]]


__all__ = ["STOP_WORDS_BY_LANGUAGE", "Theme", "feedback_themes", "language_of"]
