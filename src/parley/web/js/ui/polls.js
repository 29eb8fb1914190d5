// Polls on the meeting page: the hosts' "Poll" button and dialog, and one card per poll
// (a region named by its question) where everyone votes, hosts watch the counts and close
// it, and everyone sees the results once it is closed.  Cards are kept per poll id and
// updated in place, so a choice not yet sent survives a host's live counts.
import { checkPollForm, MAX_OPTION_CHARS, MAX_OPTIONS, MAX_QUESTION_CHARS, mergePoll, pollKind, recordVote, resultRows, votesText } from "../core/polls.js";
import { $, clear, h, setIcon } from "./dom.js";

/** @typedef {import("../core/protocol.js").PollInfo} PollInfo */
/** @typedef {import("../core/protocol.js").ClientMessage} ClientMessage */

/**
 * @typedef {object} PollsDeps
 * @property {(msg: ClientMessage) => boolean} send
 * @property {(text: string) => void} toast
 * @property {() => boolean} isHost
 */

export class MeetingPolls {
  /**
   * @param {{ button: HTMLButtonElement, container: HTMLElement }} el
   * @param {PollsDeps} deps
   */
  constructor(el, deps) {
    this.el = el;
    this.deps = deps;
    /** @type {Map<string, PollInfo>} */
    this.polls = new Map();
    /** @type {Map<string, PollCard>} */
    this.cards = new Map();
    /** @type {PollDialog | null} */
    this.dialog = null;
    this.refs = 0;
  }

  /** @param {AbortSignal} signal */
  mount(signal) {
    setIcon(this.el.button, "poll");
    this.dialog = new PollDialog((msg) => this.deps.send({ type: "poll-create", ...msg, ref: this.ref() }));
    this.el.button.addEventListener("click", () => this.dialog?.open(), { signal });
  }

  ref() {
    this.refs += 1;
    return `poll-${this.refs}`;
  }

  /** @param {boolean} host */
  render(host) {
    this.el.button.hidden = !host;
    for (const card of this.cards.values()) card.setHost(host);
  }

  /** A (re)welcome: the server sends the open polls again right after it. */
  welcome() {
    for (const [id, poll] of this.polls) {
      if (!poll.closed) this.drop(id);
    }
  }

  /** @param {PollInfo} poll a `poll` message */
  received(poll) {
    const isNew = !this.polls.has(poll.id);
    this.polls = mergePoll(this.polls, poll);
    if (isNew && !poll.closed && poll.by !== undefined && !this.deps.isHost()) this.deps.toast(`New poll: ${poll.question}`);
    this.show(poll.id);
  }

  /**
   * @param {string} id
   * @param {number[]} choices
   */
  voted(id, choices) {
    this.polls = recordVote(this.polls, id, choices);
    this.cards.get(id)?.voted();
    this.show(id);
  }

  /** @param {string} id */
  show(id) {
    const poll = this.polls.get(id);
    if (!poll) return;
    let card = this.cards.get(id);
    if (!card) {
      card = new PollCard(poll, {
        vote: (choices) => this.deps.send({ type: "poll-vote", poll: id, choices, ref: this.ref() }),
        close: () => this.deps.send({ type: "poll-close", poll: id, ref: this.ref() }),
        dismiss: () => this.drop(id),
      });
      this.cards.set(id, card);
      this.el.container.prepend(card.el);
    }
    card.update(poll, this.deps.isHost());
    this.el.container.hidden = this.cards.size === 0;
  }

  /** @param {string} id */
  drop(id) {
    this.cards.get(id)?.el.remove();
    this.cards.delete(id);
    const next = new Map(this.polls);
    next.delete(id);
    this.polls = next;
    this.el.container.hidden = this.cards.size === 0;
  }

  teardown() {
    this.dialog?.remove();
    this.dialog = null;
    clear(this.el.container);
    this.el.container.hidden = true;
    this.cards.clear();
    this.polls = new Map();
    this.el.button.hidden = true;
  }
}

let cardCount = 0;

/** One poll: question, choices and "Vote" while open; results for hosts and once closed. */
class PollCard {
  /**
   * @param {PollInfo} poll
   * @param {{ vote: (choices: number[]) => void, close: () => void, dismiss: () => void }} actions
   */
  constructor(poll, actions) {
    cardCount += 1;
    const qid = `poll-q-${cardCount}`;
    this.actions = actions;
    this.kind = h("p", { class: "poll-kind" }, `Poll · ${pollKind(poll)}`);
    this.question = h("h3", { id: qid, class: "poll-question" }, poll.question);
    /** @type {HTMLInputElement[]} */
    this.inputs = poll.options.map((_, i) =>
      /** @type {HTMLInputElement} */ (h("input", { type: poll.multiple ? "checkbox" : "radio", name: `${qid}-choice`, value: String(i) })),
    );
    this.choices = h(
      "fieldset",
      { class: "poll-options" },
      h("legend", { class: "visually-hidden" }, poll.multiple ? "Choose any" : "Choose one"),
      poll.options.map((option, i) => h("label", { class: "poll-option" }, this.inputs[i], h("span", {}, option))),
    );
    this.voteBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", class: "btn btn-small btn-primary poll-vote" }, "Vote"));
    this.note = h("p", { class: "poll-note", role: "status" });
    this.form = /** @type {HTMLFormElement} */ (
      h("form", { class: "poll-form", novalidate: true, onsubmit: (/** @type {Event} */ e) => this.submit(e) }, this.choices, h("div", { class: "poll-actions" }, this.voteBtn), this.note)
    );
    this.results = h("ol", { class: "poll-results", "aria-label": "Results" });
    this.summary = h("p", { class: "poll-summary" });
    this.closeBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-small btn-ghost poll-close", onclick: () => actions.close() }, "Close poll"));
    this.dismissBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => actions.dismiss(), hidden: true }, "Dismiss"));
    this.el = h(
      "section",
      { class: "poll-card", role: "region", "aria-labelledby": qid },
      this.kind,
      this.question,
      this.form,
      this.results,
      this.summary,
      h("div", { class: "poll-actions" }, this.closeBtn, this.dismissBtn),
    );
    /** @type {PollInfo} */
    this.poll = poll;
    this.host = false;
    this.shownMine = false;
  }

  /** @param {Event} e */
  submit(e) {
    e.preventDefault();
    const choices = this.inputs.flatMap((input, i) => (input.checked ? [i] : []));
    if (choices.length === 0) {
      this.note.textContent = this.poll.multiple ? "Choose at least one option." : "Choose an option.";
      return;
    }
    this.actions.vote(choices);
  }

  voted() {
    this.note.textContent = "Your vote is in. You can change it until the poll closes.";
  }

  /**
   * @param {PollInfo} poll
   * @param {boolean} host
   */
  update(poll, host) {
    this.poll = poll;
    if (poll.mine && !this.shownMine) {
      // Our earlier vote (after a reload or a resume): show it once, then leave the inputs alone.
      this.shownMine = true;
      for (const [i, input] of this.inputs.entries()) input.checked = poll.mine.includes(i);
      this.voted();
    }
    if (poll.closed) {
      this.form.hidden = true;
      this.kind.textContent = `Poll closed · ${pollKind(poll)}`;
      this.el.classList.add("poll-card--closed");
    }
    this.renderResults();
    this.setHost(host);
  }

  /** @param {boolean} host */
  setHost(host) {
    this.host = host;
    this.closeBtn.hidden = !host || Boolean(this.poll.closed);
    this.dismissBtn.hidden = !this.poll.closed;
    this.results.hidden = !this.poll.counts;
    this.summary.hidden = !this.poll.counts;
  }

  renderResults() {
    const rows = resultRows(this.poll);
    clear(this.results);
    for (const row of rows) {
      const bar = h("span", { class: "poll-bar-fill" });
      bar.style.width = `${row.percent}%`;
      this.results.append(
        h(
          "li",
          { class: "poll-result" },
          h("span", { class: "poll-result-option" }, row.option),
          h("span", { class: "poll-result-count" }, votesText(row.count)),
          h("span", { class: "poll-bar", "aria-hidden": "true" }, bar),
          row.names.length ? h("span", { class: "poll-result-names" }, row.names.join(", ")) : null,
        ),
      );
    }
    const voters = this.poll.voters ?? 0;
    this.summary.textContent = `${voters} ${voters === 1 ? "person" : "people"} voted${this.poll.closed ? "" : " so far"}`;
  }
}

/** The hosts' dialog: a question, 2-10 options (a new row appears as the last fills), kind. */
class PollDialog {
  /** @param {(msg: { question: string, options: string[], multiple: boolean, anonymous: boolean }) => boolean} start */
  constructor(start) {
    this.start = start;
    this.question = /** @type {HTMLInputElement} */ (
      h("input", { id: "poll-question", type: "text", maxlength: String(MAX_QUESTION_CHARS), autocomplete: "off" })
    );
    this.optionsBox = h("div", { class: "poll-option-fields" });
    /** @type {HTMLInputElement[]} */
    this.options = [];
    this.multiple = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "poll-multiple" }));
    this.anonymous = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "poll-anonymous", checked: true }));
    this.error = h("div", { class: "form-error", role: "alert", hidden: true });
    this.addBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "link-btn", onclick: () => this.addOption(true) }, "Add option"));
    this.dialog = /** @type {HTMLDialogElement} */ (
      h(
        "dialog",
        { id: "poll-dialog", class: "dialog", "aria-labelledby": "poll-title" },
        h(
          "form",
          { class: "dialog-body", novalidate: true, onsubmit: (/** @type {Event} */ e) => this.submit(e) },
          h("h2", { id: "poll-title" }, "Poll"),
          h("div", { class: "field" }, h("label", { for: "poll-question" }, "Question"), this.question),
          this.optionsBox,
          h("div", { class: "dialog-row" }, this.addBtn),
          h("div", { class: "check-row" }, this.multiple, h("label", { for: "poll-multiple" }, "Allow several choices")),
          h("div", { class: "check-row" }, this.anonymous, h("label", { for: "poll-anonymous" }, "Anonymous")),
          h("p", { class: "hint" }, "Hosts see the votes as they come in; everyone sees the results when you close the poll."),
          this.error,
          h(
            "div",
            { class: "dialog-row dialog-row--end" },
            h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.close() }, "Cancel"),
            h("button", { type: "submit", id: "poll-start", class: "btn btn-small btn-primary" }, "Start poll"),
          ),
        ),
      )
    );
    document.body.append(this.dialog);
    this.reset();
  }

  reset() {
    this.question.value = "";
    clear(this.optionsBox);
    this.options = [];
    this.addOption(false);
    this.addOption(false);
    this.multiple.checked = false;
    this.anonymous.checked = true;
    this.error.hidden = true;
  }

  /** @param {boolean} focus */
  addOption(focus) {
    if (this.options.length >= MAX_OPTIONS) return;
    const n = this.options.length + 1;
    const input = /** @type {HTMLInputElement} */ (
      h("input", { id: `poll-option-${n}`, type: "text", maxlength: String(MAX_OPTION_CHARS), autocomplete: "off" })
    );
    // Typing into the last row offers the next one.
    input.addEventListener("input", () => {
      if (input === this.options[this.options.length - 1] && input.value.trim()) this.addOption(false);
    });
    this.options.push(input);
    this.optionsBox.append(h("div", { class: "field" }, h("label", { for: input.id }, `Option ${n}`), input));
    this.addBtn.hidden = this.options.length >= MAX_OPTIONS;
    if (focus) input.focus();
  }

  open() {
    if (this.dialog.open) return;
    this.reset();
    if (typeof this.dialog.showModal === "function") this.dialog.showModal();
    else this.dialog.setAttribute("open", "");
    this.question.focus();
  }

  close() {
    if (typeof this.dialog.close === "function") this.dialog.close();
    else this.dialog.removeAttribute("open");
  }

  /** @param {Event} e */
  submit(e) {
    e.preventDefault();
    const checked = checkPollForm({
      question: this.question.value,
      options: this.options.map((o) => o.value),
      multiple: this.multiple.checked,
      anonymous: this.anonymous.checked,
    });
    if (!checked.ok) {
      this.error.textContent = checked.error;
      this.error.hidden = false;
      return;
    }
    if (!this.start(checked.msg)) {
      this.error.textContent = "Not connected right now.";
      this.error.hidden = false;
      return;
    }
    this.close();
  }

  remove() {
    this.close();
    this.dialog.remove();
    $("#poll-dialog")?.remove();
  }
}
