// Voice in the browser: join through /api/v1 (a LiveKit token for the channel's room),
// then livekit-client (from npm, served by the homeserver, loaded only when needed)
// carries the audio and screen share. Mute, deafen and streaming are reported back so
// everyone sees them; a failed connection leaves the channel again.

import { enc } from "./api.js";

export class VoiceClient extends EventTarget {
  constructor(ctx) {
    super();
    this.ctx = ctx;
    this.channelId = null;
    this.room = null;
    this.selfMute = false;
    this.selfDeaf = false;
    this.streaming = false;
    this.speaking = new Set();
    this.error = null;
  }

  get connected() {
    return !!this.channelId;
  }

  _changed() {
    this.dispatchEvent(new Event("change"));
    this.ctx.store.emit("voice-local");
  }

  async join(channelId) {
    if (this.channelId === channelId) return;
    await this.leave();
    this.error = null;
    const answer = await this.ctx.api.post(`/channels/${enc(channelId)}/voice/join`, { self_mute: this.selfMute, self_deaf: this.selfDeaf });
    this.channelId = channelId;
    this.ctx.store.applyVoiceState(answer.voice_state);
    this._changed();
    try {
      const lk = await import("/vendor/livekit-client.esm.mjs");
      const room = new lk.Room({ adaptiveStream: true, dynacast: true });
      room.on(lk.RoomEvent.ActiveSpeakersChanged, (speakers) => {
        this.speaking = new Set(speakers.map((p) => p.identity));
        this._changed();
      });
      room.on(lk.RoomEvent.Disconnected, () => {
        if (this.room === room) this._dropped();
      });
      room.on(lk.RoomEvent.TrackSubscribed, (track) => {
        if (track.kind === "audio") {
          const el = track.attach();
          el.muted = this.selfDeaf;
          el.dataset.voiceAudio = "";
          document.body.append(el);
        }
      });
      this.room = room;
      await room.connect(answer.url, answer.token);
      await room.localParticipant.setMicrophoneEnabled(!this.selfMute).catch(() => {});
    } catch (err) {
      this.error = err?.message || String(err);
      await this.leave();
      this.error = this.error || "Could not connect to voice";
      this._changed();
      throw new Error(`Could not connect to voice: ${this.error}`);
    }
  }

  _dropped() {
    this.room = null;
    this.leave().catch(() => {});
  }

  async leave() {
    const channelId = this.channelId;
    const room = this.room;
    this.room = null;
    this.channelId = null;
    this.speaking = new Set();
    this.streaming = false;
    for (const el of document.querySelectorAll("[data-voice-audio]")) el.remove();
    if (room) await room.disconnect().catch(() => {});
    if (channelId) {
      await this.ctx.api.post(`/channels/${enc(channelId)}/voice/leave`).catch(() => {});
      this.ctx.store.applyVoiceState({ user_id: this.ctx.store.me.id, channel_id: null, connected: false });
    }
    this._changed();
  }

  async _report(changes) {
    if (!this.channelId) return;
    const state = await this.ctx.api.patch(`/channels/${enc(this.channelId)}/voice/state`, changes);
    this.ctx.store.applyVoiceState(state);
  }

  async toggleMute() {
    this.selfMute = !this.selfMute;
    await this.room?.localParticipant.setMicrophoneEnabled(!this.selfMute).catch(() => {});
    this._changed();
    await this._report({ self_mute: this.selfMute });
  }

  async toggleDeafen() {
    this.selfDeaf = !this.selfDeaf;
    for (const el of document.querySelectorAll("[data-voice-audio]")) el.muted = this.selfDeaf;
    this._changed();
    await this._report({ self_deaf: this.selfDeaf });
  }

  async toggleScreenShare() {
    const want = !this.streaming;
    await this.room?.localParticipant.setScreenShareEnabled(want);
    this.streaming = want;
    this._changed();
    await this._report({ streaming: want });
  }
}
