// Pre-join screen: camera preview, microphone meter, device pickers, toggles, name, "Join meeting".
import { MEDIA_CLAIMS, pageMediaMode } from "../core/media-mode.js";
import { needsPassword, roleLabel } from "../core/moderation.js";
import { checkName, joinErrorText } from "../core/text.js";
import { acquire, canPickSpeaker, describeError, getCameraTrack, getMicTrack, listDevices } from "../media/devices.js";
import { AudioLevels, unlockAudio } from "../media/levels.js";
import { $, setIcon, setPressed } from "./dom.js";

const NAME_KEY = "parley.name";
const PREFS_KEY = "parley.devices";

/** @typedef {{ mic?: string, camera?: string, speaker?: string }} DevicePrefs chosen device ids */
/** @typedef {import("./meeting.js").JoinChoice} JoinChoice */

/** @returns {DevicePrefs} */

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

/** @param {DevicePrefs} prefs */
function savePrefs(prefs) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    /* private mode */
  }
}

export function rememberedName() {
  try {
    return localStorage.getItem(NAME_KEY) || "";
  } catch {
    return "";
  }
}

/** @param {string} name */
function rememberName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    /* private mode */
  }
}

export class PreJoin {
  /**
   * @param {{ room: string, onJoin: (choice: JoinChoice) => Promise<void>,
   *           invite?: { name: string | null, role: string } | null }} opts  invite: the (unverified) join-token claims
   */
  constructor({ room, onJoin, invite = null }) {
    this.room = room;
    this.onJoin = onJoin;
    this.invite = invite;
    // Observers publish nothing: don't even ask for the camera or microphone.
    this.observer = invite?.role === "observer";
    this.root = $("#prejoin");
    this.video = /** @type {HTMLVideoElement} */ ($("#preview-video"));
    this.off = $("#preview-off");
    this.offText = $("#preview-off-text");
    this.micBtn = /** @type {HTMLButtonElement} */ ($("#pj-mic"));
    this.camBtn = /** @type {HTMLButtonElement} */ ($("#pj-cam"));
    this.meter = $("#pj-meter");
    this.status = $("#media-status");
    this.selCamera = /** @type {HTMLSelectElement} */ ($("#sel-camera"));
    this.selMic = /** @type {HTMLSelectElement} */ ($("#sel-mic"));
    this.selSpeaker = /** @type {HTMLSelectElement} */ ($("#sel-speaker"));
    this.form = $("#join-form");
    this.nameInput = /** @type {HTMLInputElement} */ ($("#name-input"));
    this.error = $("#join-error");
    this.joinBtn = /** @type {HTMLButtonElement} */ ($("#join-btn"));
    this.passwordField = $("#password-field");
    this.passwordInput = /** @type {HTMLInputElement} */ ($("#password-input"));

    this.prefs = loadPrefs();
    /** @type {MediaStreamTrack | null} */
    this.audio = null;
    /** @type {MediaStreamTrack | null} */
    this.video_ = null;
    this.micOn = true;
    this.camOn = true;
    /** @type {{ audio: string | null, video: string | null }} what went wrong with each device */
    this.problems = { audio: null, video: null };
    this.levels = new AudioLevels();
    this.ready = Promise.resolve();
    this.raf = 0;
    this.active = false;

    $("#pj-room").textContent = room;
    // Where audio and video go in this room: the server runs all its rooms one way and its
    // page says which; nothing is claimed if it does not.
    const mode = pageMediaMode(document.documentElement.dataset.media);
    if (mode) {
      $("#pj-media").textContent = MEDIA_CLAIMS[mode].hint;
      $("#pj-media").hidden = false;
    }
    this.nameInput.value = invite?.name || rememberedName();
    if (invite) {
      const line = $("#pj-invite");
      const role = roleLabel(invite.role);
      line.textContent = `You have an invitation${invite.name ? ` for ${invite.name}` : ""}${role ? ` (${role.toLowerCase()})` : ""}.`;
      line.hidden = false;
    }
    if (!canPickSpeaker()) $("#speaker-field").hidden = true;

    this.micBtn.addEventListener("click", () => this.toggleMic());
    this.camBtn.addEventListener("click", () => this.toggleCam());
    this.selCamera.addEventListener("change", () => this.switchCamera(this.selCamera.value));
    this.selMic.addEventListener("change", () => this.switchMic(this.selMic.value));
    this.selSpeaker.addEventListener("change", () => {
      this.prefs.speaker = this.selSpeaker.value;
      savePrefs(this.prefs);
    });
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    this.nameInput.addEventListener("input", () => {
      if (!this.error.hidden && this.nameInput.value.trim()) this.hideError();
    });
    this.passwordInput.addEventListener("input", () => this.passwordInput.removeAttribute("aria-invalid"));
    for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => unlockAudio(), { once: true });
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", () => this.active && this.fillDevices());
    }
  }

  /**
   * Show the screen and start the camera/microphone preview.
   * @param {{ micOn?: boolean, camOn?: boolean }} [opts] the toggles as they were (a rejoin)
   */
  open(opts = {}) {
    this.ready = this._open(opts);
    return this.ready;
  }

  /** @param {{ micOn?: boolean, camOn?: boolean }} [opts] */
  async _open({ micOn = true, camOn = true } = {}) {
    this.active = true;
    this.root.hidden = false;
    // The password box is only in the page while this screen is (see close()).
    if (!this.passwordField.isConnected) this.error.before(this.passwordField);
    this.joinBtn.disabled = false;
    this.hideError();
    this.renderButtons();
    if (this.observer) {
      this.micOn = false;
      this.camOn = false;
      this.micBtn.disabled = true;
      this.camBtn.disabled = true;
      this.off.hidden = false;
      this.offText.textContent = "Observers don't use a camera";
      this.status.textContent = "You'll join as an observer: you can watch, listen and chat.";
      this.renderButtons();
      if (!this.nameInput.value) this.nameInput.focus();
      return;
    }
    this.status.textContent = "Starting camera and microphone…";
    const got = await acquire({
      audio: true,
      video: camOn,
      audioDeviceId: this.prefs.mic,
      videoDeviceId: this.prefs.camera,
    }).catch(() => /** @type {Awaited<ReturnType<typeof acquire>>} */ ({ audio: null, video: null, problems: {} }));
    if (!this.active) {
      got.audio?.stop();
      got.video?.stop();
      return;
    }
    this.audio = got.audio;
    this.video_ = got.video;
    this.problems = { audio: got.problems?.audio ?? null, video: got.problems?.video ?? null };
    this.micOn = Boolean(this.audio) && micOn;
    if (this.audio) this.audio.enabled = this.micOn;
    this.camOn = Boolean(this.video_);
    this.attachPreview();
    this.renderButtons();
    this.renderStatus();
    await this.fillDevices();
    this.startMeter();
    if (!this.nameInput.value) this.nameInput.focus();
  }

  attachPreview() {
    const tracks = this.video_ ? [this.video_] : [];
    this.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) this.video.play().catch(() => {});
    this.off.hidden = Boolean(this.video_);
    this.offText.textContent = this.problems.video && !this.video_ ? this.problems.video : "Camera is off";
    this.levels.watch("local", this.audio ? new MediaStream([this.audio]) : null);
  }

  renderButtons() {
    setPressed(this.micBtn, this.micOn);
    setPressed(this.camBtn, this.camOn);
    setIcon(this.micBtn, this.micOn ? "mic" : "micOff");
    setIcon(this.camBtn, this.camOn ? "cam" : "camOff");
    this.micBtn.classList.toggle("off", !this.micOn);
    this.camBtn.classList.toggle("off", !this.camOn);
  }

  renderStatus() {
    const { audio, video } = this.problems;
    const parts = [];
    if (video) parts.push(video);
    if (audio) parts.push(audio);
    if (!this.audio && !this.video_ && (audio || video)) parts.push("You can still join, listen, watch and chat.");
    else if (!this.video_ && video) parts.push("You can join with audio only.");
    else if (!this.audio && audio) parts.push("You can join without a microphone.");
    this.status.textContent = parts.join(" ");
    this.status.classList.toggle("warn", parts.length > 0);
  }

  async fillDevices() {
    let devices;
    try {
      devices = await listDevices();
    } catch {
      return;
    }
    /**
     * @param {HTMLSelectElement} select
     * @param {{ id: string, label: string }[]} items
     * @param {string | undefined} current
     * @param {string} none
     */
    const fill = (select, items, current, none) => {
      const keep = current || select.value;
      select.replaceChildren();
      if (!items.length) select.add(new Option(none, ""));
      for (const d of items) select.add(new Option(d.label, d.id));
      if (items.some((d) => d.id === keep)) select.value = keep;
      select.disabled = !items.length;
    };
    fill(this.selCamera, devices.cameras, this.video_?.getSettings().deviceId, "No camera found");
    fill(this.selMic, devices.mics, this.audio?.getSettings().deviceId, "No microphone found");
    fill(this.selSpeaker, devices.speakers, this.prefs.speaker, "Default speaker");
  }

  async toggleMic() {
    if (this.observer) return;
    if (!this.audio) {
      try {
        this.audio = await getMicTrack(this.selMic.value || undefined);
        this.problems.audio = null;
        this.micOn = true;
        this.levels.watch("local", new MediaStream([this.audio]));
        await this.fillDevices();
      } catch (err) {
        this.problems.audio = describeError(err, "microphone");
        this.micOn = false;
      }
    } else {
      this.micOn = !this.micOn;
      this.audio.enabled = this.micOn;
    }
    this.renderButtons();
    this.renderStatus();
  }

  async toggleCam() {
    if (this.observer) return;
    if (this.camOn && this.video_) {
      this.video_.stop();
      this.video_ = null;
      this.camOn = false;
      this.problems.video = null;
    } else {
      try {
        this.video_ = await getCameraTrack(this.selCamera.value || undefined);
        this.camOn = true;
        this.problems.video = null;
        await this.fillDevices();
      } catch (err) {
        this.problems.video = describeError(err, "camera");
        this.camOn = false;
      }
    }
    this.attachPreview();
    this.renderButtons();
    this.renderStatus();
  }

  /** @param {string} deviceId */
  async switchCamera(deviceId) {
    this.prefs.camera = deviceId;
    savePrefs(this.prefs);
    if (!this.camOn) return;
    try {
      const track = await getCameraTrack(deviceId);
      this.video_?.stop();
      this.video_ = track;
      this.attachPreview();
    } catch (err) {
      this.problems.video = describeError(err, "camera");
      this.renderStatus();
    }
  }

  /** @param {string} deviceId */
  async switchMic(deviceId) {
    this.prefs.mic = deviceId;
    savePrefs(this.prefs);
    try {
      const track = await getMicTrack(deviceId);
      this.audio?.stop();
      this.audio = track;
      this.audio.enabled = this.micOn;
      this.attachPreview();
    } catch (err) {
      this.problems.audio = describeError(err, "microphone");
      this.renderStatus();
    }
  }

  startMeter() {
    cancelAnimationFrame(this.raf);
    const tick = () => {
      if (!this.active) return;
      const level = this.micOn ? this.levels.level("local") : 0;
      this.meter.style.transform = `scaleX(${Math.min(1, level * 1.6).toFixed(3)})`;
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  /** @param {string} text */
  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  hideError() {
    this.error.hidden = true;
    this.error.textContent = "";
  }

  /** Ask for the room password (the server said it needs one, or it was wrong). */
  /** @param {string} code */
  askPassword(code) {
    this.passwordField.hidden = false;
    if (code === "bad_password") {
      this.passwordInput.setAttribute("aria-invalid", "true");
      this.passwordInput.select();
    }
    this.passwordInput.focus();
  }

  async submit() {
    unlockAudio();
    const check = checkName(this.nameInput.value);
    if (!check.ok) {
      this.showError(check.message);
      this.nameInput.setAttribute("aria-invalid", "true");
      this.nameInput.focus();
      return;
    }
    this.nameInput.removeAttribute("aria-invalid");
    this.hideError();
    rememberName(check.name);
    this.joinBtn.disabled = true;
    this.joinBtn.textContent = "Joining…";
    try {
      await this.ready;
      await this.onJoin({
        name: check.name,
        audio: this.audio,
        video: this.video_,
        micOn: this.micOn,
        camOn: this.camOn,
        speakerId: this.selSpeaker.value || "",
        prefs: { ...this.prefs },
        password: this.passwordField.hidden ? null : this.passwordInput.value || null,
      });
    } catch (caught) {
      const err = /** @type {{ code?: string, message?: string } | null | undefined} */ (caught);
      if (err?.code !== "cancelled") {
        this.showError(joinErrorText(err?.code, err?.message || "Could not join the meeting."));
        if (err?.code && needsPassword(err.code)) this.askPassword(err.code);
      }
    } finally {
      this.joinBtn.disabled = false;
      this.joinBtn.textContent = "Join meeting";
    }
  }

  /** Leave the pre-join screen; the tracks now belong to the meeting. */
  close() {
    this.active = false;
    cancelAnimationFrame(this.raf);
    this.levels.close();
    this.video.srcObject = null;
    this.audio = null;
    this.video_ = null;
    this.root.hidden = true;
    // In the meeting, a host's "Room password" (room settings) is the only one.
    this.passwordField.remove();
  }
}
