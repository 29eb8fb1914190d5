import assert from "node:assert/strict";
import { test } from "node:test";

import { excerpt, highlight, queryWords } from "../../src/parley/web/js/core/search.js";
import { downloadName } from "../../src/parley/web/js/ui/chat-export.js";

test("queryWords keeps words only, lowercased, once each", () => {
  assert.deepEqual(queryWords('"Budget" NEAR(budget, Café) -x* text:y'), ["budget", "near", "café", "x", "text", "y"]);
  assert.deepEqual(queryWords("  ()*\"- "), []);
});

test("highlight marks whole words of the query, any case, and keeps every character", () => {
  const segs = highlight("Budgets and the BUDGET, budget!", ["budget"]);
  assert.equal(segs.map((s) => s.text).join(""), "Budgets and the BUDGET, budget!");
  assert.deepEqual(segs.filter((s) => s.match).map((s) => s.text), ["BUDGET", "budget"]);
  assert.deepEqual(highlight("<b>x</b>", ["b"]).map((s) => s.text).join(""), "<b>x</b>");
});

test("excerpt cuts a long text around the first match", () => {
  const text = `${"a ".repeat(200)}needle ${"z ".repeat(200)}`;
  const cut = excerpt(text, ["needle"], 60);
  assert.ok(cut.includes("needle"));
  assert.ok(cut.startsWith("…") && cut.endsWith("…"));
  assert.equal(excerpt("short", ["x"]), "short");
});

test("downloadName takes only a safe server file name", () => {
  assert.equal(downloadName('attachment; filename="parley-chat-team-20261207-0500.md"', "md"), "parley-chat-team-20261207-0500.md");
  assert.equal(downloadName('attachment; filename="../../etc/passwd"', "json"), "parley-chat.json");
  assert.equal(downloadName(null, "html"), "parley-chat.html");
});
