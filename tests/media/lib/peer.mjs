// A werift PeerConnection for media tests: synthetic Opus and VP8 senders
// and per-mid receive counters.
//
//   const peer = new MediaPeer({ name: 'alice', audio: true, video: true });
//   const offer = await peer.createOffer();          // candidates included
//   const { jsep } = await handle.request({ audio: true, video: true }, offer);
//   await peer.acceptAnswer(jsep);
//   await peer.waitConnected();
//   await waitForGrowth(() => peer.packets('video'), { min: 30 });
//   await peer.close();
//
// Signalling is not trickled: the offer or answer handed out already holds
// every local candidate (werift gathers host candidates in milliseconds),
// and Janus puts its own candidates in its SDP.
//
// Senders write RTP from timers at realistic rates (audio 50 packets/s,
// video 30 frames/s); werift's RTCRtpSender sets SSRC and payload type, so
// the source only keeps sequence numbers and timestamps.  A video source
// answers PLI and FIR from the far end with a keyframe, as a browser does.

import {
  MediaStreamTrack,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtcpPayloadSpecificFeedback,
  useSdesMid,
} from 'werift';

import {
  OPUS_CLOCK_RATE,
  VP8_CLOCK_RATE,
  isVp8KeyframeStart,
  opusPayload,
  rtpPacket,
  vp8FramePayloads,
} from './rtp.mjs';
import { waitFor } from './wait.mjs';

/** Codecs offered and accepted: Opus and VP8 only, with the usual feedback. */
export function mediaCodecs() {
  return {
    audio: [
      new RTCRtpCodecParameters({
        mimeType: 'audio/opus',
        clockRate: OPUS_CLOCK_RATE,
        channels: 2,
        payloadType: 111,
      }),
    ],
    video: [
      new RTCRtpCodecParameters({
        mimeType: 'video/VP8',
        clockRate: VP8_CLOCK_RATE,
        payloadType: 96,
        rtcpFeedback: [
          { type: 'nack' },
          { type: 'nack', parameter: 'pli' },
          { type: 'ccm', parameter: 'fir' },
        ],
      }),
    ],
  };
}

function randomUint(bits) {
  return Math.floor(Math.random() * 2 ** bits);
}

/** Opus at 50 packets/s, 20 ms each. */
class AudioSource {
  constructor(track, { payloadSize = 80 } = {}) {
    this.track = track;
    this.payloadSize = payloadSize;
    this.seq = randomUint(16);
    this.ts = randomUint(32);
    this.sent = 0;
    this.timer = null;
  }

  start() {
    const started = performance.now();
    // After a stop, the clock goes on from the last packet (a pause).
    const ts0 = this.resumeTs ?? this.ts;
    this.timer = setInterval(() => {
      // Timestamps follow the wall clock, so a late timer is not a slow clock.
      const ts = ts0 + Math.round(((performance.now() - started) * OPUS_CLOCK_RATE) / 1000);
      this.resumeTs = ts + OPUS_CLOCK_RATE / 50;
      this.track.writeRtp(
        rtpPacket({
          sequenceNumber: this.seq++,
          timestamp: ts,
          marker: this.sent === 0,
          payload: opusPayload(this.payloadSize, this.sent),
        }),
      );
      this.sent++;
    }, 20);
  }

  stop() {
    clearInterval(this.timer);
  }
}

/** VP8 at `fps`: delta frames of `deltaPackets`, keyframes periodically and on request. */
class VideoSource {
  constructor(track, options = {}) {
    this.track = track;
    this.fps = options.fps ?? 30;
    this.packetSize = options.packetSize ?? 1000;
    this.deltaPackets = options.deltaPackets ?? 1;
    this.keyframePackets = options.keyframePackets ?? 6;
    this.keyframeIntervalMs = options.keyframeIntervalMs ?? 2000;
    this.seq = randomUint(16);
    this.ts = randomUint(32);
    this.pictureId = randomUint(15);
    this.frames = 0;
    this.keyframes = 0;
    this.keyframeRequested = true;
    this.lastKeyframeAt = 0;
    this.timer = null;
  }

  requestKeyframe() {
    this.keyframeRequested = true;
  }

  start() {
    const started = performance.now();
    const ts0 = this.resumeTs ?? this.ts;
    this.timer = setInterval(() => {
      const now = performance.now();
      const keyframe =
        this.keyframeRequested || now - this.lastKeyframeAt >= this.keyframeIntervalMs;
      const payloads = vp8FramePayloads({
        keyframe,
        pictureId: this.pictureId,
        packets: keyframe ? this.keyframePackets : this.deltaPackets,
        packetSize: this.packetSize,
      });
      const ts = ts0 + Math.round(((now - started) * VP8_CLOCK_RATE) / 1000);
      this.resumeTs = ts + Math.round(VP8_CLOCK_RATE / this.fps);
      payloads.forEach((payload, i) => {
        this.track.writeRtp(
          rtpPacket({
            sequenceNumber: this.seq++,
            timestamp: ts,
            marker: i === payloads.length - 1,
            payload,
          }),
        );
      });
      if (keyframe) {
        this.keyframeRequested = false;
        this.lastKeyframeAt = now;
        this.keyframes++;
      }
      this.pictureId = (this.pictureId + 1) & 0x7fff;
      this.frames++;
    }, 1000 / this.fps);
  }

  stop() {
    clearInterval(this.timer);
  }
}

/** What arrived on one receiving transceiver (one mid). */
export class RtpCounter {
  constructor(mid, kind) {
    this.mid = mid;
    this.kind = kind;
    this.packets = 0;
    this.bytes = 0;
    this.keyframes = 0; // VP8 keyframe starts
    this.ssrc = null; // last SSRC seen
    this.ssrcs = new Set();
    this.sequenceNumber = null; // last
    this.timestamp = null; // last
    this.payloadType = null; // last
    this.firstAt = null; // performance.now() of the first packet
    this.lastAt = null;
  }

  count(rtp) {
    const { header, payload } = rtp;
    const now = performance.now();
    this.packets++;
    this.bytes += payload.length;
    this.ssrc = header.ssrc;
    this.ssrcs.add(header.ssrc);
    this.sequenceNumber = header.sequenceNumber;
    this.timestamp = header.timestamp;
    this.payloadType = header.payloadType;
    if (this.kind === 'video' && isVp8KeyframeStart(payload)) {
      this.keyframes++;
    }
    this.firstAt ??= now;
    this.lastAt = now;
  }

  /** A plain snapshot for assertion messages and logs. */
  toJSON() {
    return {
      mid: this.mid,
      kind: this.kind,
      packets: this.packets,
      bytes: this.bytes,
      keyframes: this.keyframes,
      ssrc: this.ssrc,
      ssrcs: [...this.ssrcs],
      sequenceNumber: this.sequenceNumber,
      timestamp: this.timestamp,
      payloadType: this.payloadType,
    };
  }
}

/**
 * A werift PeerConnection with optional synthetic senders and a counter for
 * every transceiver that receives.
 */
export class MediaPeer {
  /**
   * @param {object} options
   * @param {string} [options.name]   for messages
   * @param {boolean} [options.audio] send synthetic Opus
   * @param {boolean} [options.video] send synthetic VP8
   * @param {'sendrecv'|'sendonly'} [options.direction] of the sending transceivers
   * @param {object} [options.audioOptions] { payloadSize }
   * @param {object} [options.videoOptions] { fps, packetSize, deltaPackets, keyframePackets, keyframeIntervalMs }
   * @param {object} [options.config] overrides of werift's RTCPeerConnection configuration
   */
  constructor(options = {}) {
    this.name = options.name ?? 'peer';
    this.pc = new RTCPeerConnection({
      iceServers: [],
      bundlePolicy: 'max-bundle',
      codecs: mediaCodecs(),
      headerExtensions: { audio: [useSdesMid()], video: [useSdesMid()] },
      // Only IPv4: the namespace has no IPv6 route for Janus' candidates.
      iceUseIpv6: false,
      ...options.config,
    });
    /** @type {Map<string, RtpCounter>} counters by mid */
    this.counters = new Map();
    this.sources = [];
    this.closed = false;

    const direction = options.direction ?? 'sendrecv';
    if (options.audio) {
      const track = new MediaStreamTrack({ kind: 'audio' });
      this.pc.addTransceiver(track, { direction });
      this.audio = new AudioSource(track, options.audioOptions);
      this.sources.push(this.audio);
    }
    if (options.video) {
      const track = new MediaStreamTrack({ kind: 'video' });
      const transceiver = this.pc.addTransceiver(track, { direction });
      this.video = new VideoSource(track, options.videoOptions);
      this.sources.push(this.video);
      transceiver.sender.onRtcp.subscribe((packet) => {
        if (packet.type === RtcpPayloadSpecificFeedback.type) {
          // PLI or FIR: both mean "send a keyframe".
          this.video.requestKeyframe();
        }
      });
    }

    // Count what every remote track delivers, by the mid of its transceiver.
    // The track of an event is the one RTP is routed to; a receiver's
    // `track` getter may still return a placeholder at that point.
    this.countedTracks = new WeakSet();
    this.pc.addEventListener('track', ({ track, transceiver }) => {
      if (this.countedTracks.has(track)) {
        return;
      }
      this.countedTracks.add(track);
      const counter = this.#counterFor(transceiver);
      track.onReceiveRtp.subscribe((rtp) => counter.count(rtp));
    });
  }

  #counterFor(transceiver) {
    let counter = this.counters.get(transceiver.mid);
    if (!counter) {
      counter = new RtpCounter(transceiver.mid, transceiver.kind);
      this.counters.set(transceiver.mid, counter);
    }
    return counter;
  }

  async #waitGathered(timeoutMs) {
    await waitFor(() => this.pc.iceGatheringState === 'complete', {
      timeoutMs,
      what: `${this.name}: ICE gathering`,
    });
  }

  /** Creates the offer, sets it and returns it with its candidates. */
  async createOffer({ timeoutMs = 5000 } = {}) {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.#waitGathered(timeoutMs);
    return { type: 'offer', sdp: this.pc.localDescription.sdp };
  }

  /** Applies the far end's answer. */
  async acceptAnswer(jsep) {
    await this.pc.setRemoteDescription(jsep);
  }

  /** Answers the far end's offer; returns the answer with its candidates. */
  async answer(jsep, { timeoutMs = 5000 } = {}) {
    await this.pc.setRemoteDescription(jsep);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this.#waitGathered(timeoutMs);
    return { type: 'answer', sdp: this.pc.localDescription.sdp };
  }

  /** Starts the synthetic senders (packets are dropped until DTLS is up). */
  startMedia() {
    for (const source of this.sources) {
      if (!source.timer) {
        source.start();
      }
    }
  }

  /** Stops the synthetic senders; the PeerConnection stays up. */
  stopMedia() {
    for (const source of this.sources) {
      source.stop();
      source.timer = null;
    }
  }

  /** Waits until ICE and DTLS are connected. */
  async waitConnected(timeoutMs = 10_000) {
    await waitFor(
      () => {
        const state = this.pc.connectionState;
        if (state === 'failed' || state === 'closed') {
          throw new Error(`${this.name}: connection ${state}`);
        }
        return state === 'connected';
      },
      { timeoutMs, what: `${this.name}: connection` },
    );
  }

  /** The counters of one kind ('audio' | 'video'), in mid order. */
  countersOf(kind) {
    return [...this.counters.values()].filter((c) => c.kind === kind);
  }

  /** Packets received, of one kind or of every kind. */
  packets(kind) {
    const counters = kind ? this.countersOf(kind) : [...this.counters.values()];
    return counters.reduce((sum, c) => sum + c.packets, 0);
  }

  /** Bytes of payload received, of one kind or of every kind. */
  bytes(kind) {
    const counters = kind ? this.countersOf(kind) : [...this.counters.values()];
    return counters.reduce((sum, c) => sum + c.bytes, 0);
  }

  /** A snapshot of every counter, for assertion messages. */
  report() {
    return { name: this.name, state: this.pc.connectionState, counters: [...this.counters.values()].map((c) => c.toJSON()) };
  }

  /** The SSRCs this peer sends, by kind (what receivers should see, before an SFU rewrites them). */
  sendSsrcs() {
    const out = {};
    for (const t of this.pc.getTransceivers()) {
      if (t.sender.track) {
        out[t.kind] = t.sender.ssrc;
      }
    }
    return out;
  }

  async close() {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.stopMedia();
    await this.pc.close();
  }
}
