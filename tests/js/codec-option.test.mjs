import assert from "node:assert/strict";
import { test } from "node:test";

import { preferCodec, videoCodecOption } from "../../src/parley/web/js/core/codec.js";

test("videoCodecOption: ?codec=h264 / vp8, anything else is the default (null)", () => {
  assert.equal(videoCodecOption("?codec=h264"), "h264");
  assert.equal(videoCodecOption("?relay=1&codec=H264"), "h264");
  assert.equal(videoCodecOption("?codec=vp8"), "vp8");
  for (const search of ["", "?codec=", "?codec=av1", "?codec=toString", null, undefined]) {
    assert.equal(videoCodecOption(search), null, String(search));
  }
});

// What Chromium lists (abridged), in its order.
const CAPS = [
  { mimeType: "video/VP8" },
  { mimeType: "video/rtx" },
  { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f" },
  { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f" },
  { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f" },
  { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" },
  { mimeType: "video/VP9", sdpFmtpLine: "profile-id=0" },
];

test("preferCodec: H.264 first, constrained baseline mode 1 ahead; nothing dropped", () => {
  const out = preferCodec(CAPS, "h264");
  assert.equal(out.length, CAPS.length);
  assert.deepEqual(
    out.slice(0, 4).map((c) => c.sdpFmtpLine.split("mode=")[1]),
    ["1;profile-level-id=42e01f", "1;profile-level-id=42001f", "1;profile-level-id=4d001f", "0;profile-level-id=42e01f"],
  );
  assert.deepEqual(out.slice(4).map((c) => c.mimeType), ["video/VP8", "video/rtx", "video/VP9"]);
});

test("preferCodec: VP8 first; unknown codec or none offered: null", () => {
  assert.equal(preferCodec(CAPS, "vp8")[0].mimeType, "video/VP8");
  assert.equal(preferCodec(CAPS, "av1"), null);
  assert.equal(preferCodec([{ mimeType: "video/VP8" }], "h264"), null);
  assert.equal(preferCodec(null, "h264"), null);
});
