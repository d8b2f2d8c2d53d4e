// The synthetic payloads look like what a browser sends: the parts an SFU
// reads (VP8 descriptor, frame tag, Opus TOC) are valid.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isVp8KeyframeStart, opusPayload, vp8FramePayloads } from './lib/index.mjs';

test('synthetic VP8 keyframes are recognised as keyframes, delta frames are not', () => {
  const key = vp8FramePayloads({ keyframe: true, pictureId: 300, packets: 3, packetSize: 1000 });
  const delta = vp8FramePayloads({ keyframe: false, pictureId: 301, packets: 2, packetSize: 1000 });
  assert.equal(key.length, 3);
  assert.ok(isVp8KeyframeStart(key[0]));
  assert.ok(!isVp8KeyframeStart(key[1]), 'only the first packet starts the frame');
  assert.ok(!isVp8KeyframeStart(delta[0]));
  // The keyframe carries VP8's start code and 640x480.
  const frame = key[0].subarray(4);
  assert.deepEqual([...frame.subarray(3, 6)], [0x9d, 0x01, 0x2a]);
  assert.equal(frame.readUInt16LE(6) & 0x3fff, 640);
  assert.equal(frame.readUInt16LE(8) & 0x3fff, 480);
  assert.equal(key[0].length, 1000);
});

test('synthetic VP8 descriptors carry a 15-bit picture id and the start bit', () => {
  const [first, second] = vp8FramePayloads({ keyframe: false, pictureId: 0x1234, packets: 2, packetSize: 500 });
  assert.equal(first[0], 0x90);
  assert.equal(second[0], 0x80);
  assert.equal(((first[2] & 0x7f) << 8) | first[3], 0x1234);
});

test('synthetic Opus packets start with a 20 ms fullband TOC byte', () => {
  const payload = opusPayload(80, 7);
  assert.equal(payload.length, 80);
  assert.equal(payload[0] >> 3, 31);
});
