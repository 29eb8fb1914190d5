"""Display names are the identity provider's: only tokens with a name get in, and nobody renames."""

from parley.policy import allow, deny


def on_join(join):  # the server already shows the token's `name` claim as the display name
    return allow() if join.claims.get("name") else deny("join with your invitation link")


def on_rename(rename):
    return None  # refused: the name stays the token's
