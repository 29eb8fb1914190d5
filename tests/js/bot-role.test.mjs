// The bot role (granted only by a join token, `parley token --role bot`) has its own badge.
import assert from "node:assert/strict";
import { test } from "node:test";

import { roleLabel } from "../../src/parley/web/js/core/moderation.js";

test("a bot is shown with a Bot badge", () => {
  assert.equal(roleLabel("bot"), "Bot");
});
