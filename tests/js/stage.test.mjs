// Stage and audience: settings, the audience's chat box, the hosts' stage actions.
import assert from "node:assert/strict";
import { test } from "node:test";

import { hostActions, roleLabel } from "../../src/parley/web/js/core/moderation.js";
import { chatState, inAudience, stageSettings } from "../../src/parley/web/js/core/stage.js";

const aud = { id: "p_a", name: "Aud", role: "observer", mic: false, cam: false, screen: false, hand: true };
const bea = { ...aud, id: "p_b", name: "Bea", role: "participant", hand: false };

test("stage settings are absent when off", () => {
  assert.deepEqual(stageSettings(undefined), { stage: false, chat: "everyone" });
  assert.deepEqual(stageSettings({ stage: true, chat: "questions" }), { stage: true, chat: "questions" });
  assert.deepEqual(stageSettings({ chat: "nonsense" }), { stage: false, chat: "everyone" });
  assert.equal(inAudience(aud, { stage: true }), true);
  assert.equal(inAudience(aud, {}), false); // an observer outside stage mode
  assert.equal(inAudience(bea, { stage: true }), false);
});

test("the audience's chat box follows the room's chat setting", () => {
  assert.deepEqual(chatState(aud, {}), { allowed: true, question: false, note: "" });
  assert.equal(chatState(aud, { chat: "stage" }).allowed, false);
  assert.match(chatState(aud, { chat: "stage" }).note, /limited the chat to the people on stage/);
  assert.deepEqual(
    { ...chatState(aud, { chat: "questions" }), note: "" },
    { allowed: true, question: true, note: "" },
  );
  assert.equal(chatState(bea, { chat: "stage" }).allowed, true); // the stage chats
});

test("hosts invite the audience to the stage and move speakers back", () => {
  const viewer = { selfId: "p_h", selfRole: "host", stage: true };
  const invite = hostActions(aud, viewer).find((a) => a.id === "invite-stage");
  assert.equal(invite?.label, "Invite Aud to stage");
  assert.deepEqual(invite?.message, { type: "set-role", to: "p_a", role: "participant" });
  const back = hostActions(bea, viewer).find((a) => a.id === "move-audience");
  assert.equal(back?.label, "Move Bea to audience");
  assert.deepEqual(back?.message, { type: "set-role", to: "p_b", role: "observer" });
  assert.equal(hostActions(aud, { ...viewer, selfRole: "observer" }).length, 0);
  assert.equal(roleLabel("observer", true), "Audience");
  assert.equal(roleLabel("participant", true), "On stage");
  assert.equal(roleLabel("observer"), "Observer");
});
