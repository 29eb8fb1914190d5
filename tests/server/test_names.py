"""Look-alike display names against the real server: refused on join and on rename, and
what everyone else sees is the normalised (NFC) name."""

from __future__ import annotations

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients


async def test_bidi_and_zero_width_names_are_refused_and_names_are_nfc(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(server, room, "Ada")
    mallory = await clients.connect(server)
    # "\u202eadA" is drawn "Ada": a second "Ada" that reverses whatever follows it
    for name, code_point in (("\u202eadA", "U+202E"), ("A\u200bda", "U+200B")):
        await mallory.send({"type": "join", "room": room, "name": name, "v": 1, "ref": "j"})
        err = await mallory.error("bad_name")
        assert err["ref"] == "j" and code_point in err["message"], err
    # typed decomposed ("e" + combining diaeresis): everyone sees the composed letter
    zoe = await clients.join(server, room, "Zoe\u0308")
    joined = await ada.expect("participant-joined")
    assert joined["participant"]["name"] == "Zo\u00eb"
    assert "Zo\u00eb" in [p["name"] for p in zoe.welcome["participants"]]
    # renames go through the same check; the name is unchanged after a refusal
    await zoe.send({"type": "rename", "name": "Ada\u2066", "ref": "r"})
    err = await zoe.error("bad_name")
    assert err["ref"] == "r" and "U+2066" in err["message"]
    await zoe.send({"type": "rename", "name": "\U0001f469\u200d\U0001f4bb Zo\u00eb"})
    upd = await ada.expect("participant-updated")
    assert upd["participant"]["name"] == "\U0001f469\u200d\U0001f4bb Zo\u00eb"
    assert not ada.of_type("error")
