"""Polls at the core: frames in (decoded as the server decodes them), effects out."""

from __future__ import annotations

from typing import Any

import pytest

from parley.core import polls
from parley.core import protocol as p
from parley.core.effects import Deliver, Effect
from parley.core.protocol import ErrorCode

from .test_moderation import Meeting


def deliveries(effects: list[Effect], kind: type) -> list[Deliver]:
    return [e for e in effects if isinstance(e, Deliver) and isinstance(e.message, kind)]


def polls_to(effects: list[Effect], pid: str | None) -> list[p.PollInfo]:
    """The polls a recipient gets (None: the deliveries to everyone)."""
    out = []
    for d in deliveries(effects, p.PollOut):
        assert isinstance(d.message, p.PollOut)
        if (pid is None and d.to is None) or (pid is not None and d.to and pid in d.to):
            out.append(d.message.poll)
    return out


class PollMeeting(Meeting):
    def __init__(self) -> None:
        super().__init__()
        for name in ("ann", "bob", "cy", "dee"):
            self.join(name)
        assert self.role("ann") == "host"

    def start(self, *options: str, question: str = "Lunch?", **kw: Any) -> str:
        effects = self.frame(
            "ann", type="poll-create", question=question, options=list(options or ("A", "B")), **kw
        )
        (public,) = polls_to(effects, None)
        return public.id

    def vote(self, name: str, poll: str, *choices: int) -> list[Effect]:
        return self.frame(name, type="poll-vote", poll=poll, choices=list(choices))


def test_a_poll_runs_from_start_to_results_in_the_history() -> None:
    m = PollMeeting()
    effects = m.frame(
        "ann", type="poll-create", question=" Lunch? ", options=["Pizza", "Soup", "Salad"]
    )
    (public,) = polls_to(effects, None)
    assert (public.question, public.options, public.counts) == (
        "Lunch?",
        ["Pizza", "Soup", "Salad"],
        None,
    )
    (for_host,) = polls_to(effects, m.ids["ann"])
    assert for_host.counts == [0, 0, 0]
    assert m.notes(effects) == ['ann started a poll: "Lunch?"']

    voted = m.vote("bob", public.id, 1)
    (ack,) = deliveries(voted, p.PollVoted)
    assert ack.to == (m.ids["bob"],) and ack.message == p.PollVoted(poll=public.id, choices=[1])
    # The host sees the live count; nobody else gets the counts while it is open.
    (live,) = polls_to(voted, m.ids["ann"])
    assert (live.counts, live.voters) == ([0, 1, 0], 1)
    assert polls_to(voted, m.ids["cy"]) == []

    m.vote("cy", public.id, 1)
    m.vote("dee", public.id, 0)
    m.vote("dee", public.id, 2)  # changed while open: counted once, for the new choice
    closed = m.frame("ann", type="poll-close", poll=public.id)
    (result,) = polls_to(closed, None)
    assert (result.closed, result.counts, result.voters, result.names) == (
        True,
        [0, 2, 1],
        3,
        None,
    )
    assert m.notes(closed) == ['Poll closed: "Lunch?" — Pizza: 0; Soup: 2; Salad: 1 (3 voters)']
    assert m.rooms.polls.open_polls("team") == []


def test_a_named_poll_says_who_chose_what_and_multiple_choice_counts_each() -> None:
    m = PollMeeting()
    poll = m.start("Mon", "Tue", "Wed", anonymous=False, multiple=True)
    m.vote("bob", poll, 0, 2)
    m.vote("cy", poll, 2)
    closed = m.frame("ann", type="poll-close", poll=poll)
    (result,) = polls_to(closed, None)
    assert result.counts == [1, 0, 2]
    assert result.names == [["bob"], [], ["bob", "cy"]]
    assert m.notes(closed) == [
        'Poll closed: "Lunch?" — Mon: 1 (bob); Tue: 0; Wed: 2 (bob, cy) (2 voters)'
    ]


def test_an_anonymous_poll_never_names_voters() -> None:
    m = PollMeeting()
    poll = m.start()
    live = polls_to(m.vote("bob", poll, 0), m.ids["ann"])
    closed = polls_to(m.frame("ann", type="poll-close", poll=poll), None)
    assert [i.names for i in live + closed] == [None, None]
    assert "bob" not in m.notes(m.rooms.polls.state_for("team", m.ids["ann"], True))


@pytest.mark.parametrize("count", [0, 1, 11])
def test_a_poll_needs_two_to_ten_options(count: int) -> None:
    m = PollMeeting()
    options = [f"o{i}" for i in range(count)]
    m.refused(ErrorCode.BAD_MESSAGE, "ann", type="poll-create", question="Q", options=options)
    assert m.rooms.polls.open_polls("team") == []


@pytest.mark.parametrize(
    ("question", "options", "code"),
    [
        ("", ["a", "b"], ErrorCode.EMPTY),
        ("   ", ["a", "b"], ErrorCode.EMPTY),
        ("q" * (polls.MAX_QUESTION_CHARS + 1), ["a", "b"], ErrorCode.TOO_LONG),
        ("Q", ["a", " "], ErrorCode.EMPTY),
        ("Q", ["a", "b" * (polls.MAX_OPTION_CHARS + 1)], ErrorCode.TOO_LONG),
        ("Q", ["a", "a"], ErrorCode.BAD_MESSAGE),
    ],
)
def test_bad_questions_and_options_are_refused(
    question: str, options: list[str], code: str
) -> None:
    m = PollMeeting()
    m.refused(code, "ann", type="poll-create", question=question, options=options)
    assert m.rooms.polls.open_polls("team") == []


def test_too_many_options_on_the_wire_are_refused_at_decoding() -> None:
    m = PollMeeting()
    m.refused(ErrorCode.BAD_MESSAGE, "ann", type="poll-create", question="Q", options=["x"] * 33)


def test_only_hosts_start_and_close_polls() -> None:
    m = PollMeeting()
    m.refused(ErrorCode.FORBIDDEN, "bob", type="poll-create", question="Q", options=["a", "b"])
    poll = m.start()
    m.vote("bob", poll, 0)
    m.refused(ErrorCode.FORBIDDEN, "bob", type="poll-close", poll=poll)
    (still,) = m.rooms.polls.open_polls("team")
    assert (still.closed, still.counts()) == (False, [1, 0])


def test_bad_votes_are_refused_and_change_nothing() -> None:
    m = PollMeeting()
    poll = m.start("a", "b", "c")
    m.vote("bob", poll, 1)
    m.refused(ErrorCode.BAD_MESSAGE, "bob", type="poll-vote", poll=poll, choices=[0, 2])
    m.refused(ErrorCode.BAD_MESSAGE, "bob", type="poll-vote", poll=poll, choices=[3])
    m.refused(ErrorCode.BAD_MESSAGE, "bob", type="poll-vote", poll=poll, choices=[-1])
    m.refused(ErrorCode.BAD_MESSAGE, "bob", type="poll-vote", poll=poll, choices=[1, 1])
    m.refused(ErrorCode.EMPTY, "bob", type="poll-vote", poll=poll, choices=[])
    m.refused(ErrorCode.POLL_CLOSED, "bob", type="poll-vote", poll="poll_nope", choices=[0])
    (still,) = m.rooms.polls.open_polls("team")
    assert still.counts() == [0, 1, 0]


def test_a_second_vote_replaces_the_first_and_closing_ends_voting() -> None:
    m = PollMeeting()
    poll = m.start()
    m.vote("bob", poll, 0)
    live = polls_to(m.vote("bob", poll, 1), m.ids["ann"])
    assert live[0].counts == [0, 1]
    m.frame("ann", type="poll-close", poll=poll)
    m.refused(ErrorCode.POLL_CLOSED, "bob", type="poll-vote", poll=poll, choices=[0])
    m.refused(ErrorCode.POLL_CLOSED, "ann", type="poll-close", poll=poll)


def test_limits_on_open_polls_and_polls_per_meeting() -> None:
    m = PollMeeting()
    opened = [m.start(question=f"Q{i}") for i in range(polls.MAX_OPEN_POLLS)]
    m.refused(
        ErrorCode.TOO_MANY, "ann", type="poll-create", question="one more", options=["a", "b"]
    )
    for poll in opened:
        m.frame("ann", type="poll-close", poll=poll)
    for i in range(polls.MAX_POLLS_PER_MEETING - polls.MAX_OPEN_POLLS):
        m.frame("ann", type="poll-close", poll=m.start(question=f"R{i}"))
    m.refused(ErrorCode.TOO_MANY, "ann", type="poll-create", question="last", options=["a", "b"])


def test_a_joiner_gets_the_open_polls_with_its_own_vote() -> None:
    m = PollMeeting()
    poll = m.start()
    m.vote("bob", poll, 1)
    (for_bob,) = polls_to(m.rooms.polls.state_for("team", m.ids["bob"], False), m.ids["bob"])
    assert (for_bob.mine, for_bob.counts) == ([1], None)
    (for_ann,) = polls_to(m.rooms.polls.state_for("team", m.ids["ann"], True), m.ids["ann"])
    assert (for_ann.mine, for_ann.counts) == (None, [0, 1])


def test_a_new_host_gets_the_live_counts() -> None:
    m = PollMeeting()
    poll = m.start()
    m.vote("cy", poll, 0)
    effects = m.frame("ann", type="set-role", to="bob", role="host")
    (for_bob,) = polls_to(effects, m.ids["bob"])
    assert for_bob.counts == [1, 0]


def test_polls_end_with_the_meeting() -> None:
    m = PollMeeting()
    m.start()
    m.frame("ann", type="end-meeting")
    assert m.rooms.polls.open_polls("team") == []
    assert m.rooms.polls.rooms == {}


def test_poll_changes_are_journalled_for_other_nodes() -> None:
    m = PollMeeting()
    m.rooms.journal.clear()
    poll = m.start()
    m.vote("bob", poll, 0)
    m.frame("ann", type="poll-close", poll=poll)
    kinds = [(k, r, x) for k, r, x in m.rooms.journal if k in ("poll", "vote")]
    assert kinds == [
        ("poll", "team", poll),
        ("vote", "team", f"{poll} {m.ids['bob']}"),
        ("poll", "team", poll),
    ]
