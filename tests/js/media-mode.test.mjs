import assert from "node:assert/strict";
import { test } from "node:test";

import { MEDIA_CLAIMS, MEDIA_MODES, mediaMode, mediaModeInfo, pageMediaMode } from "../../src/parley/web/js/core/media-mode.js";

test("mediaMode: sfu only when the welcome's room says so", () => {
  assert.equal(mediaMode({ media: "sfu" }), "sfu");
  assert.equal(mediaMode({ media: "mesh" }), "mesh");
});

test("mediaMode: missing or unknown values mean mesh (the session the client builds)", () => {
  for (const room of [undefined, null, {}, { media: null }, { media: "SFU" }, { media: "relay" }, "sfu"]) {
    assert.equal(mediaMode(room), "mesh", JSON.stringify(room));
  }
});

test("mediaModeInfo: visible text, accessible text and tooltip per mode", () => {
  assert.deepEqual(
    { ...mediaModeInfo("mesh") },
    {
      mode: "mesh",
      prefix: "Media: ",
      text: "Peer-to-peer",
      label: "Media: peer-to-peer",
      title: "Video goes directly between browsers",
    },
  );
  assert.deepEqual(
    { ...mediaModeInfo("sfu") },
    {
      mode: "sfu",
      prefix: "Media: ",
      text: "Via server",
      label: "Media: via server",
      title: "Video is forwarded by the server",
    },
  );
  assert.equal(mediaModeInfo(undefined), MEDIA_MODES.mesh);
});

test("mediaModeInfo: the read-out text is the hidden prefix plus the visible text", () => {
  for (const info of Object.values(MEDIA_MODES)) {
    assert.equal((info.prefix + info.text).toLowerCase(), info.label.toLowerCase());
  }
});

test("MEDIA_MODES is frozen (shared by every meeting)", () => {
  assert.ok(Object.isFrozen(MEDIA_MODES));
  assert.ok(Object.isFrozen(MEDIA_MODES.sfu));
});

test("pageMediaMode: only the server's two values; anything else claims nothing", () => {
  assert.equal(pageMediaMode("sfu"), "sfu");
  assert.equal(pageMediaMode("mesh"), "mesh");
  for (const v of [undefined, null, "", "SFU", "p2p"]) assert.equal(pageMediaMode(v), null, String(v));
});

test("MEDIA_CLAIMS: each mode's page text makes no claim of the other", () => {
  const mesh = /peer[- ]to[- ]peer|directly|between (?:participants' )?browsers/i;
  const sfu = /through (?:this|the) server|via server|forward/i;
  for (const text of Object.values(MEDIA_CLAIMS.sfu)) assert.doesNotMatch(text, mesh);
  for (const text of Object.values(MEDIA_CLAIMS.mesh)) assert.doesNotMatch(text, sfu);
  assert.match(MEDIA_CLAIMS.sfu.hint, /through this server/);
  assert.match(MEDIA_CLAIMS.mesh.hint, /directly between/);
});
