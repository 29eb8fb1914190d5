// Our own microphone, camera and screen share: the "Microphone" / "Camera" / "Share screen"
// toggles, a host turning a device off, and an observer giving up every track.
import { describeError, getCameraTrack, getMicTrack, getScreen } from "../media/devices.js";

/**
 * The media seam (web/README.md): all the UI calls on a MeshSession or an SfuSession.
 * @typedef {EventTarget & {
 *   start(localStream: MediaStream): void,
 *   setIceServers(iceServers: RTCIceServer[] | null | undefined): void,
 *   addPeer(id: string, polite: boolean): unknown,
 *   removePeer(id: string): void,
 *   hasPeer(id: string): boolean,
 *   connectionState(id: string): string | null,
 *   handleSignal(from: string, payload: any, polite?: boolean): void,
 *   replaceTrack(kind: "audio" | "video", track: MediaStreamTrack | null): Promise<void>,
 *   setScreen(stream: MediaStream | null): void,
 *   refresh(): void,
 *   close(): void,
 * }} MediaSession
 */
/** @typedef {import("../core/protocol.js").DeviceKind} DeviceKind */

/**
 * What LocalMedia needs from the meeting.
 * @typedef {object} LocalMediaPorts
 * @property {() => MediaSession | null} session the media session (null before the first welcome)
 * @property {() => boolean} isObserver observers publish nothing
 * @property {() => boolean} isEnded the meeting is over
 * @property {(text: string) => void} toast
 * @property {HTMLButtonElement} camButton disabled while a camera starts
 * @property {() => void} changed our state changed by our own doing: tell the server, re-render
 * @property {() => void} screenStopped our screen share ended: drop its tile
 */

/**
 * @typedef {object} DeviceChoice what the pre-join screen hands over
 * @property {MediaStreamTrack | null} [audio]
 * @property {MediaStreamTrack | null} [video]
 * @property {boolean} micOn
 * @property {boolean} camOn
 */

export class LocalMedia {
  /**
   * @param {DeviceChoice} choice
   * @param {{ mic?: string, camera?: string }} prefs device ids picked on the pre-join screen
   * @param {LocalMediaPorts} ports
   */
  constructor(choice, prefs, ports) {
    this.prefs = prefs;
    this.ports = ports;
    /** @type {MediaStreamTrack | null} */
    this.audio = choice.audio || null;
    /** @type {MediaStreamTrack | null} */
    this.video = choice.video || null;
    this.micOn = Boolean(choice.audio) && choice.micOn;
    this.camOn = Boolean(choice.video) && choice.camOn;
    /** @type {MediaStream | null} */
    this.screen = null;
    /** The camera/mic carrier stream the media session sends (tracks may be absent). */
    this.stream = new MediaStream(/** @type {MediaStreamTrack[]} */ ([choice.audio, choice.video].filter(Boolean)));
    if (this.audio) this.audio.enabled = this.micOn;
  }

  /** What the server's `media` message says of us. */
  state() {
    return { mic: this.micOn, cam: this.camOn, screen: Boolean(this.screen) };
  }

  async toggleMic() {
    if (this.ports.isObserver()) return;
    if (!this.audio) {
      try {
        this.audio = await getMicTrack(this.prefs.mic);
        await this.ports.session()?.replaceTrack("audio", this.audio);
        this.micOn = true;
      } catch (err) {
        this.ports.toast(describeError(err, "microphone"));
        return;
      }
    } else {
      this.micOn = !this.micOn;
      this.audio.enabled = this.micOn;
    }
    this.ports.changed();
  }

  async cameraOff() {
    this.camOn = false;
    if (!this.video) return;
    const old = this.video;
    this.video = null;
    await this.ports.session()?.replaceTrack("video", null);
    old.stop();
  }

  async toggleCam() {
    if (this.ports.isObserver()) return;
    if (this.camOn && this.video) {
      await this.cameraOff();
    } else {
      const button = this.ports.camButton;
      button.disabled = true;
      try {
        const track = await getCameraTrack(this.prefs.camera);
        this.video = track;
        this.camOn = true;
        await this.ports.session()?.replaceTrack("video", track);
      } catch (err) {
        this.ports.toast(describeError(err, "camera"));
        return;
      } finally {
        button.disabled = false;
      }
    }
    this.ports.changed();
  }

  async toggleScreen() {
    if (this.ports.isObserver() && !this.screen) return;
    if (this.screen) {
      this.stopScreen();
      return;
    }
    let stream;
    try {
      stream = await getScreen();
    } catch (err) {
      const name = /** @type {{ name?: string } | null} */ (err)?.name;
      if (err && name !== "NotAllowedError" && name !== "AbortError") this.ports.toast("Screen sharing could not start.");
      return;
    }
    if (this.ports.isEnded() || this.ports.isObserver()) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    const track = stream.getVideoTracks()[0];
    track?.addEventListener("ended", () => {
      if (this.screen === stream) this.stopScreen();
    });
    this.screen = stream;
    this.ports.session()?.setScreen(stream);
    this.ports.changed();
  }

  stopScreen() {
    if (!this.dropScreen()) return;
    this.ports.changed();
  }

  /** Stop sharing without telling anyone; false if nothing was shared. */
  dropScreen() {
    const stream = this.screen;
    if (!stream) return false;
    this.screen = null;
    this.ports.session()?.setScreen(null);
    stream.getTracks().forEach((t) => t.stop());
    this.ports.screenStopped();
    return true;
  }

  /**
   * A host turned one of our devices off: obey (the server knows already, except for the
   * screen, whose stop is announced like our own); only we can turn it back on.
   * @param {DeviceKind} kind
   */
  async obeyMute(kind) {
    if (kind === "mic") {
      this.micOn = false;
      if (this.audio) this.audio.enabled = false;
    } else if (kind === "cam") {
      await this.cameraOff();
    } else if (kind === "screen") {
      this.stopScreen();
    }
  }

  /** Observers publish nothing: stop and drop every local track. */
  release() {
    for (const kind of /** @type {const} */ (["audio", "video"])) {
      const track = this[kind];
      this[kind] = null;
      if (!track) continue;
      track.stop();
      const session = this.ports.session();
      if (session) session.replaceTrack(kind, null);
      else this.stream.removeTrack(track);
    }
    this.micOn = false;
    this.camOn = false;
    this.dropScreen();
  }

  /** The meeting is over: stop every device. */
  stopAll() {
    for (const t of [this.audio, this.video]) t?.stop();
    this.screen?.getTracks().forEach((t) => t.stop());
  }
}
