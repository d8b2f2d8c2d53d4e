// The media test harness: a Janus client, werift peers with synthetic
// media and RTP counters, and bounded waits.  See docs/media-tests.md.

export { env } from './env.mjs';
export { JanusError, JanusHandle, JanusSession, janusInfo } from './janus.mjs';
export { MediaPeer, RtpCounter, mediaCodecs } from './peer.mjs';
export { isVp8KeyframeStart, opusPayload, vp8FramePayloads } from './rtp.mjs';
export { assertFlat, sleep, waitFor, waitForGrowth, waitUntilFlat, withTimeout } from './wait.mjs';
