// Synthetic Opus and VP8 RTP payloads.
//
// An SFU forwards RTP; it does not decode.  What it does look at is the
// codec's payload header: Janus reads the VP8 payload descriptor and the
// frame tag to find keyframes (and rewrites picture ids when it switches
// streams), and the Opus TOC byte at most.  So the payloads here are valid
// headers followed by filler bytes, at realistic sizes and rates.

import { RtpHeader, RtpPacket } from 'werift';

export const OPUS_CLOCK_RATE = 48_000;
export const VP8_CLOCK_RATE = 90_000;

// Opus TOC: config 31 (CELT fullband, 20 ms), mono, one frame (code 0).
const OPUS_TOC_20MS_FB = 31 << 3;

/** Filler bytes: varying, deterministic, cheap. */
function filler(length, seed) {
  const buf = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** An Opus payload: a TOC byte for one 20 ms fullband CELT frame, then filler. */
export function opusPayload(size = 80, seed = 1) {
  const payload = filler(size, seed);
  payload[0] = OPUS_TOC_20MS_FB;
  return payload;
}

/**
 * The VP8 payload descriptor (RFC 7741 section 4.2) with a 15-bit picture
 * id, as browsers send it.  `start` marks the first packet of a frame.
 */
export function vp8Descriptor(pictureId, start) {
  return Buffer.from([
    0x80 | (start ? 0x10 : 0), // X=1, S, PID=0
    0x80, // I=1: a picture id follows
    0x80 | ((pictureId >> 8) & 0x7f), // M=1: 15-bit picture id
    pictureId & 0xff,
  ]);
}

/**
 * The start of a VP8 frame (RFC 6386 section 9.1): the 3-byte frame tag
 * and, for a keyframe, the start code and the dimensions.
 */
export function vp8FrameHeader(keyframe, firstPartitionSize, width = 640, height = 480) {
  // Frame tag bits: frame type (0 = key), version (3), show_frame, size (19).
  const tag = (keyframe ? 0 : 1) | (0 << 1) | (1 << 4) | (firstPartitionSize << 5);
  const head = [tag & 0xff, (tag >> 8) & 0xff, (tag >> 16) & 0xff];
  if (keyframe) {
    head.push(0x9d, 0x01, 0x2a, width & 0xff, (width >> 8) & 0x3f, height & 0xff, (height >> 8) & 0x3f);
  }
  return Buffer.from(head);
}

/**
 * The payloads of one VP8 frame split into `packets` RTP payloads of about
 * `packetSize` bytes each (descriptor included).
 */
export function vp8FramePayloads({ keyframe, pictureId, packets, packetSize }) {
  const out = [];
  for (let i = 0; i < packets; i++) {
    const descriptor = vp8Descriptor(pictureId, i === 0);
    const body = filler(Math.max(packetSize - descriptor.length, 16), pictureId * 64 + i);
    if (i === 0) {
      vp8FrameHeader(keyframe, Math.min(packetSize * packets, 0x7ffff) >> 1).copy(body, 0);
    }
    out.push(Buffer.concat([descriptor, body]));
  }
  return out;
}

/**
 * Whether an RTP payload is the first packet of a VP8 keyframe: the
 * descriptor's S bit with partition 0, then a frame tag with type 0.
 */
export function isVp8KeyframeStart(payload) {
  if (payload.length < 1) {
    return false;
  }
  let i = 0;
  const b0 = payload[i++];
  const start = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
  if (b0 & 0x80) {
    if (i >= payload.length) {
      return false;
    }
    const x = payload[i++];
    if (x & 0x80) {
      // I: picture id, 1 or 2 bytes
      i += payload[i] & 0x80 ? 2 : 1;
    }
    if (x & 0x40) {
      i++; // L: TL0PICIDX
    }
    if (x & 0x30) {
      i++; // T or K: TID/KEYIDX byte
    }
  }
  return start && i < payload.length && (payload[i] & 0x01) === 0;
}

/** An RtpPacket for a werift track's writeRtp (the sender sets SSRC and PT). */
export function rtpPacket({ sequenceNumber, timestamp, marker, payload }) {
  const header = new RtpHeader({
    version: 2,
    padding: false,
    extension: false,
    marker,
    payloadType: 0,
    sequenceNumber: sequenceNumber & 0xffff,
    timestamp: timestamp >>> 0,
    ssrc: 0,
  });
  return new RtpPacket(header, payload);
}
