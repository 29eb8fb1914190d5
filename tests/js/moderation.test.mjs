// Roles, host actions, the raise-hand queue, the lobby, join options, final screens.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  finalScreen,
  hostActions,
  mutedText,
  needsPassword,
  newlyWaiting,
  pageOptions,
  peekTokenClaims,
  raisedHands,
  roleLabel,
  roomSettings,
  settingsSummary,
} from "../../src/parley/web/js/core/moderation.js";
import { joinErrorText } from "../../src/parley/web/js/core/text.js";

const bob = { id: "p_b", name: "Bob", role: "participant", mic: true, cam: true, screen: false, hand: false };

test("role badges", () => {
  assert.equal(roleLabel("host"), "Host");
  assert.equal(roleLabel("observer"), "Observer");
  assert.equal(roleLabel("participant"), null);
  assert.equal(roleLabel(undefined), null);
});

test("non-hosts get no host actions; hosts none for themselves", () => {
  assert.deepEqual(hostActions(bob, { selfId: "p_a", selfRole: "participant" }), []);
  assert.deepEqual(hostActions(bob, { selfId: "p_a", selfRole: "observer" }), []);
  assert.deepEqual(hostActions(bob, { selfId: "p_b", selfRole: "host" }), []);
});

test("host actions for a participant with mic and camera on", () => {
  const actions = hostActions(bob, { selfId: "p_a", selfRole: "host", label: "Bob" });
  assert.deepEqual(
    actions.map((a) => a.label),
    ["Mute Bob", "Turn off camera of Bob", "Make Bob host", "Make Bob observer", "Remove Bob"],
  );
  assert.deepEqual(actions[0].message, { type: "mute", to: "p_b", kind: "mic" });
  assert.deepEqual(actions[1].message, { type: "mute", to: "p_b", kind: "cam" });
  assert.deepEqual(actions[2].message, { type: "set-role", to: "p_b", role: "host" });
  assert.equal(actions.at(-1).confirm, true);
});

test("host actions follow the target's state", () => {
  const quiet = { ...bob, mic: false, cam: false, hand: true, screen: true, role: "observer" };
  const labels = hostActions(quiet, { selfId: "p_a", selfRole: "host", label: "Bob (2)" }).map((a) => a.label);
  assert.deepEqual(labels, [
    "Stop screen sharing of Bob (2)",
    "Lower hand of Bob (2)",
    "Make Bob (2) host",
    "Make Bob (2) participant",
    "Remove Bob (2)",
  ]);
  const host = hostActions({ ...bob, role: "host" }, { selfId: "p_a", selfRole: "host" }).map((a) => a.id);
  assert.ok(!host.includes("make-host"));
  assert.ok(host.includes("make-participant") && host.includes("make-observer"));
});

test("raised hands in the order they went up", () => {
  const people = [
    { id: "a", hand: true, hand_at: 30 },
    { id: "b", hand: false, hand_at: null },
    { id: "c", hand: true, hand_at: 10 },
    { id: "d", hand: true, hand_at: 20 },
  ];
  assert.deepEqual(raisedHands(people).map((p) => p.id), ["c", "d", "a"]);
  assert.deepEqual(raisedHands([]), []);
});

test("who newly knocked", () => {
  const a = { id: "l1", name: "Eve" };
  const b = { id: "l2", name: "Mallory" };
  assert.deepEqual(newlyWaiting([], [a]), [a]);
  assert.deepEqual(newlyWaiting([a], [a, b]), [b]);
  assert.deepEqual(newlyWaiting([a, b], [b]), []);
  assert.deepEqual(newlyWaiting(undefined, undefined), []);
});

test("room settings normalised and summarised", () => {
  assert.deepEqual(roomSettings(undefined), { locked: false, lobby: false, has_password: false, max_participants: null });
  const s = roomSettings({ locked: true, lobby: true, has_password: true, max_participants: 6, extra: 1 });
  assert.deepEqual(s, { locked: true, lobby: true, has_password: true, max_participants: 6 });
  assert.equal(settingsSummary(s), "Locked · Lobby on · Password");
  assert.equal(settingsSummary({}), "");
});

test("password errors ask for the password", () => {
  assert.equal(needsPassword("password_required"), true);
  assert.equal(needsPassword("bad_password"), true);
  assert.equal(needsPassword("rate_limited"), false);
});

test("page options: token and relay", () => {
  assert.deepEqual(pageOptions(""), { token: null, relay: false });
  assert.deepEqual(pageOptions("?token=abc.def.ghi&relay=1"), { token: "abc.def.ghi", relay: true });
  assert.deepEqual(pageOptions("?relay=0&token="), { token: null, relay: false });
});

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

test("token claims are peeked (not verified) for the pre-join screen", () => {
  const token = `${b64url({ alg: "HS256" })}.${b64url({ name: "Zoë", role: "observer", room: "team", exp: 9 })}.sig`;
  assert.deepEqual(peekTokenClaims(token), { name: "Zoë", role: "observer", room: "team", exp: 9 });
  const odd = `${b64url({})}.${b64url({ role: "admin" })}.x`;
  assert.deepEqual(peekTokenClaims(odd), { name: null, role: "participant", room: null, exp: null });
  assert.equal(peekTokenClaims("not-a-jwt"), null);
  assert.equal(peekTokenClaims("a.!!!.c"), null);
  assert.equal(peekTokenClaims(`${b64url({})}.${b64url([1])}.x`), null);
  assert.equal(peekTokenClaims(null), null);
});

test("final screens", () => {
  assert.equal(finalScreen("removed").title, "You were removed from the meeting");
  assert.equal(finalScreen(4001).rejoin, false);
  assert.match(finalScreen("removed", { ban: true }).detail, /can't rejoin/);
  assert.equal(finalScreen("meeting-ended").title, "The host ended the meeting");
  assert.equal(finalScreen(4002).title, "The host ended the meeting");
  assert.equal(finalScreen(4000).title, "You joined from another tab/window");
  assert.equal(finalScreen(4000).rejoin, true);
});

test("muted toasts", () => {
  assert.equal(mutedText("mic"), "A host turned off your microphone");
  assert.equal(mutedText("cam"), "A host turned off your camera");
  assert.match(mutedText("screen"), /screen/);
});

test("join errors are clear", () => {
  assert.match(joinErrorText("rate_limited", "too many wrong passwords; retry in 42 s"), /^Too many attempts\. Too many wrong passwords; retry in 42 s\.$/);
  assert.match(joinErrorText("rate_limited", ""), /Wait a minute/);
  assert.match(joinErrorText("bad_token", "token expired"), /invitation link is not valid \(token expired\)/);
  assert.match(joinErrorText("token_required"), /invitation/);
  assert.match(joinErrorText("password_required"), /password/);
  assert.match(joinErrorText("bad_password"), /password is not right/);
  assert.match(joinErrorText("locked"), /locked/);
  assert.equal(joinErrorText("denied"), "A host declined your request");
  assert.match(joinErrorText("banned"), /removed/);
  assert.match(joinErrorText("room_full"), /full/);
  assert.equal(joinErrorText("weird", "server says"), "server says");
});
