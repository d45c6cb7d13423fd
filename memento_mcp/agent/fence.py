"""Neutralise anything in a stored case that a model could read as an <untrusted-case> tag.

Retrieved cases are other agents' text, fenced in the planner's prompt by <untrusted-case> tags
(issue 12). A case that contains a closing tag could end its own fence and speak as the prompt;
one that contains an opening tag could pose as a second, positive case. A model reads
`</UNTRUSTED-CASE>`, `< / untrusted case >`, fullwidth `＜／`, Cyrillic `е` for `e` or a zero-width
space inside the name as the same tag, so matching the exact ASCII string is not enough.

Matching runs on a *skeleton* of the text, built one character at a time so that every skeleton
position maps back to the original: NFKC (fullwidth, mathematical and circled letters fold to
ASCII), case folded, invisible characters (format, combining and control marks) dropped, and
bracket and slash look-alikes mapped to `<`, `>` and `/`. Because no table of homoglyphs is ever
complete, any non-ASCII letter left in the name counts as a stand-in for the letter it replaces.
Each match, from its bracket through the name (and a `>` right after it), is replaced by a
plain marker; all other text is kept as it was.
"""

from __future__ import annotations

import re
import unicodedata

MARKER = "[fence tag removed]"

_INVISIBLE = {"Cf", "Mn", "Me", "Cc"}
"""Format (zero-width, BOM, soft hyphen), combining marks, controls: a reader does not see them."""

_LOOKALIKES = str.maketrans(
    {
        # left angle brackets that NFKC leaves alone
        **dict.fromkeys("‹❮❬⟨〈《≺˂ᐸ⋖⧼〈", "<"),
        **dict.fromkeys("›❯❭⟩〉》≻˃ᐳ⋗⧽〉", ">"),
        **dict.fromkeys("⁄∕⧸╱∖⧹\\", "/"),
    }
)


def _name() -> str:
    """`untrusted`, separators, `case`; each letter may be any non-ASCII look-alike."""

    def word(text: str) -> str:
        return "".join(f"(?:{ch}|[^\\x00-\\x7f])" for ch in text)

    return word("untrusted") + r"[\W_]*" + word("case")


_OPEN = r"(?:<|&lt;?|&#0*60;?|&#x0*3c;?)"
_CLOSE = r"(?:>|&gt;?|&#0*62;?|&#x0*3e;?)"
_TAG = re.compile(rf"{_OPEN}\s*(?:/\s*)?{_name()}(?:\s*{_CLOSE})?")


def _skeleton(text: str) -> tuple[str, list[int]]:
    """The folded text, and for each of its characters the index it came from in `text`."""
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if ch.isspace():
            chars.append(" ")
            origin.append(index)
            continue
        if unicodedata.category(ch) in _INVISIBLE:
            continue
        for folded in unicodedata.normalize("NFKC", ch).casefold().translate(_LOOKALIKES):
            if unicodedata.category(folded) in _INVISIBLE:
                continue
            chars.append(folded)
            origin.append(index)
    return "".join(chars), origin


def neutralise(text: str) -> str:
    """`text` with every look-alike of an <untrusted-case> tag replaced by MARKER."""
    if text.isascii() and "<" not in text and "&" not in text:
        return text  # no opening bracket in any form: the common case, without the skeleton
    skeleton, origin = _skeleton(text)
    spans = [(origin[m.start()], origin[m.end() - 1] + 1) for m in _TAG.finditer(skeleton)]
    if not spans:
        return text
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts += [text[position:start], MARKER]
        position = end
    parts.append(text[position:])
    return "".join(parts)
