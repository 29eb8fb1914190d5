"""Listed words are starred out of chat, whole words in any case, before anyone sees them."""

import re

WORDS = ("darn", "heck", "frak")
PATTERN = re.compile(r"\b(?:" + "|".join(map(re.escape, WORDS)) + r")\b", re.IGNORECASE)


def on_chat(msg):
    return PATTERN.sub(lambda m: "*" * len(m.group()), msg.text)
