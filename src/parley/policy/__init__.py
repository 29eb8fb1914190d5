"""Policy hooks: a plain Python module that decides who gets in and what is said.

``parley serve --policy policy.py`` loads a module whose functions are all optional,
sync or async::

    from parley.policy import allow, deny, lobby

    def on_join(join):      # join.room, join.name, join.claims, join.address, join.participants
        if join.name.lower().startswith("mallory"):
            return deny("not here")
        return allow(role="host") if join.claims.get("staff") else allow()

    def on_chat(msg):       # None drops it, a str replaces the text, msg passes it
        return None if "forbidden-word" in msg.text else msg

Also ``on_rename(rename)`` (like on_chat: None refuses), ``on_leave(leave)``,
``on_room_open(room)``, ``on_room_close(room)``, and timers (:func:`every`, :func:`at`)
whose functions get a :class:`Actions` context that can act.
See docs/hooks.md.
"""

from .api import (
    Actions,
    Allow,
    ChatInfo,
    Deny,
    JoinInfo,
    LeaveInfo,
    Lobby,
    RenameInfo,
    RoomInfo,
    allow,
    at,
    deny,
    every,
    lobby,
)

__all__ = [
    "Actions",
    "Allow",
    "ChatInfo",
    "Deny",
    "JoinInfo",
    "LeaveInfo",
    "Lobby",
    "RenameInfo",
    "RoomInfo",
    "allow",
    "at",
    "deny",
    "every",
    "lobby",
]
