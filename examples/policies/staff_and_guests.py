"""Staff (`"staff": true` in their token) come straight in as hosts; guests wait in the lobby."""

from parley.policy import allow, lobby


def on_join(join):
    return allow(role="host") if join.claims.get("staff") is True else lobby()
