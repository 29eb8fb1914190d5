import assert from "node:assert/strict";
import { test } from "node:test";

import {
  charCount,
  checkChat,
  checkName,
  errorText,
  generateRoomName,
  initials,
  isValidRoom,
  joinErrorText,
  slugRoom,
  splitLinks,
} from "../../src/parley/web/js/core/text.js";

test("splitLinks: plain text stays one text segment", () => {
  assert.deepEqual(splitLinks("hello <b>world</b>"), [{ type: "text", text: "hello <b>world</b>" }]);
});

test("splitLinks: http and https links become link segments", () => {
  assert.deepEqual(splitLinks("see https://example.com/a?b=1 and http://x.org"), [
    { type: "text", text: "see " },
    { type: "link", text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
    { type: "text", text: " and " },
    { type: "link", text: "http://x.org", href: "http://x.org/" },
  ]);
});

test("splitLinks: trailing punctuation is not part of the link", () => {
  const segs = splitLinks("Go to https://example.com/page. Then (https://example.com/x) ok!");
  const links = segs.filter((s) => s.type === "link").map((s) => s.text);
  assert.deepEqual(links, ["https://example.com/page", "https://example.com/x"]);
  assert.equal(segs.map((s) => s.text).join(""), "Go to https://example.com/page. Then (https://example.com/x) ok!");
});

test("splitLinks: balanced parentheses stay in the URL", () => {
  const segs = splitLinks("https://en.wikipedia.org/wiki/Foo_(bar)");
  assert.deepEqual(segs, [
    { type: "link", text: "https://en.wikipedia.org/wiki/Foo_(bar)", href: "https://en.wikipedia.org/wiki/Foo_(bar)" },
  ]);
});

test("splitLinks: other schemes are never links", () => {
  for (const t of ["javascript:alert(1)", "data:text/html,<script>x</script>", "ftp://x.org", "file:///etc/passwd"]) {
    assert.deepEqual(splitLinks(t), [{ type: "text", text: t }]);
  }
});

test("splitLinks: a bare scheme is text", () => {
  assert.deepEqual(splitLinks("http:// nothing"), [{ type: "text", text: "http:// nothing" }]);
});

test("splitLinks: text is preserved exactly, including newlines", () => {
  const text = "line1\nhttps://a.example/x\n\nline3 https://b.example";
  assert.equal(
    splitLinks(text)
      .map((s) => s.text)
      .join(""),
    text,
  );
});

test("splitLinks: null and empty", () => {
  assert.deepEqual(splitLinks(""), []);
  assert.deepEqual(splitLinks(null), []);
});

test("initials", () => {
  assert.equal(initials("Ada Lovelace"), "AL");
  assert.equal(initials("ada"), "A");
  assert.equal(initials("  grace  brewster murray hopper "), "GH");
  assert.equal(initials("jean-luc"), "JL");
  assert.equal(initials("émile zola"), "ÉZ");
  assert.equal(initials("😀 smile"), "😀S");
  assert.equal(initials(""), "?");
  assert.equal(initials("   "), "?");
  assert.equal(initials(undefined), "?");
});

test("charCount counts code points like the server", () => {
  assert.equal(charCount("abc"), 3);
  assert.equal(charCount("😀😀"), 2);
});

test("checkChat: limits", () => {
  assert.deepEqual(checkChat("hi", 4000), { ok: true, text: "hi" });
  assert.equal(checkChat("", 4000).code, "empty");
  assert.equal(checkChat(" \n\t", 4000).code, "empty");
  assert.equal(checkChat("x".repeat(4000), 4000).ok, true);
  const over = checkChat("x".repeat(4001), 4000);
  assert.equal(over.ok, false);
  assert.equal(over.code, "too_long");
  assert.match(over.message, /4,001/);
  assert.match(over.message, /4,000/);
  assert.equal(checkChat("😀".repeat(4000), 4000).ok, true);
});

test("checkName trims and limits", () => {
  assert.deepEqual(checkName("  Ada "), { ok: true, name: "Ada" });
  assert.equal(checkName("").ok, false);
  assert.equal(checkName("   ").ok, false);
  assert.equal(checkName("x".repeat(64)).ok, true);
  assert.equal(checkName("x".repeat(65)).ok, false);
});

test("room names", () => {
  assert.ok(isValidRoom("team-1_a.b"));
  assert.ok(!isValidRoom(""));
  assert.ok(!isValidRoom("a b"));
  assert.ok(!isValidRoom("x".repeat(65)));
  assert.ok(!isValidRoom("é"));
  assert.equal(slugRoom("  Team  standup! "), "Team-standup");
  const name = generateRoomName((n) => 0);
  assert.equal(name, "aaa-aaaa-aaa");
  assert.ok(isValidRoom(generateRoomName((n) => Math.floor(Math.random() * n))));
});

test("errorText has a clear room_full message", () => {
  assert.match(errorText("room_full"), /This room is full/);
  assert.equal(errorText("whatever", "fallback"), "fallback");
});

test("a refused name says why (the server names the character)", () => {
  const message = "display names cannot contain control, invisible or text-direction characters (U+202E RIGHT-TO-LEFT OVERRIDE)";
  assert.equal(joinErrorText("bad_name", message), `That name can't be used: ${message}.`);
  assert.match(joinErrorText("bad_name"), /That name can't be used/);
});

test("only a refused name reads \"That name can't be used\"; other refusals keep their own text", () => {
  // the pre-join screen always passes a message (the server's, or a fallback)
  for (const code of ["token_required", "password_required", "bad_password", "locked", "banned", "denied", "room_full"]) {
    assert.equal(joinErrorText(code, "a host declined your request to join"), errorText(code), code);
  }
  assert.equal(joinErrorText("denied", "Could not join the meeting."), "A host declined your request");
});
