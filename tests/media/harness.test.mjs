// Self-tests of the media harness against Janus' stock plugins: they show
// that the namespace, the Janus client, the werift peers and the RTP
// counters work, so that a failing test of our plugin points at the plugin.
//
// Run with scripts/media-tests.sh (inside the namespace, with the stack up).

import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';

import {
  JanusSession,
  MediaPeer,
  env,
  janusInfo,
  waitForGrowth,
  waitUntilFlat,
  assertFlat,
} from './lib/index.mjs';

const TEST_TIMEOUT_MS = 45_000;
// At 50 audio packets/s and 30 video frames/s, 2 s of media at least.
const MIN_AUDIO_PACKETS = 100;
const MIN_VIDEO_PACKETS = 60;

/** Opens a session, closed after the test (`t.after`). */
async function openSession(t) {
  const session = await JanusSession.create(env.janusHttp);
  t.after(() => session.destroy());
  return session;
}

/** A peer, closed after the test. */
function openPeer(t, options) {
  const peer = new MediaPeer(options);
  t.after(() => peer.close());
  return peer;
}

async function assertReceivesAudioAndVideo(peer) {
  const what = (kind) => `${peer.name}: ${kind} packets (${JSON.stringify(peer.report())})`;
  await waitForGrowth(() => peer.packets('audio'), { min: MIN_AUDIO_PACKETS, timeoutMs: 10_000, what: what('audio') });
  await waitForGrowth(() => peer.packets('video'), { min: MIN_VIDEO_PACKETS, timeoutMs: 10_000, what: what('video') });
  const video = peer.countersOf('video')[0];
  assert.ok(video.keyframes >= 1, `${peer.name} received no VP8 keyframe: ${JSON.stringify(video)}`);
  for (const counter of peer.counters.values()) {
    assert.equal(counter.ssrcs.size, 1, `${peer.name}: one SSRC per mid: ${JSON.stringify(counter)}`);
  }
}

test('harness runs in the media namespace against a Janus with the stock plugins', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.ok(env.netns, 'TH_NETNS is set: run through scripts/media-tests.sh');
  const info = await janusInfo(env.janusHttp);
  assert.ok(info.plugins['janus.plugin.echotest'], 'EchoTest is loaded');
  assert.ok(info.plugins['janus.plugin.videoroom'], 'VideoRoom is loaded');
  if (env.stack === 'full') {
    assert.ok(info.plugins['janus.plugin.telehealth'], 'our plugin is loaded beside them');
  }
});

test('harness: echotest returns our own audio and video RTP', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await openSession(t);
  const handle = await session.attach('janus.plugin.echotest');
  const peer = openPeer(t, { name: 'echo', audio: true, video: true });

  const offer = await peer.createOffer();
  const { data, jsep } = await handle.request({ audio: true, video: true }, offer);
  assert.equal(data.result, 'ok');
  assert.equal(jsep.type, 'answer');
  await peer.acceptAnswer(jsep);
  peer.startMedia();
  await peer.waitConnected();
  await handle.waitForWebrtcUp();

  await assertReceivesAudioAndVideo(peer);
  assert.deepEqual(
    peer.countersOf('audio').map((c) => c.payloadType),
    [111],
    'echoed audio is Opus',
  );
  assert.deepEqual(
    peer.countersOf('video').map((c) => c.payloadType),
    [96],
    'echoed video is VP8',
  );

  // Stop sending: the echo must stop too.
  peer.stopMedia();
  await waitUntilFlat(() => peer.packets(), { quietMs: 1000, timeoutMs: 5000, what: 'echoed packets' });
  await assertFlat(() => peer.packets(), { durationMs: 1000, what: 'echoed packets after stop' });
});

test('harness: counters stay at zero while nothing is sent', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await openSession(t);
  const handle = await session.attach('janus.plugin.echotest');
  const peer = openPeer(t, { name: 'silent', audio: true, video: true });

  const { jsep } = await handle.request({ audio: true, video: true }, await peer.createOffer());
  await peer.acceptAnswer(jsep);
  await peer.waitConnected();
  await handle.waitForWebrtcUp();

  await assertFlat(() => peer.packets(), { durationMs: 1500, what: 'packets with no media sent' });
  assert.equal(peer.packets(), 0, JSON.stringify(peer.report()));
  await assert.rejects(
    waitForGrowth(() => peer.packets(), { min: 1, timeoutMs: 500, what: 'packets' }),
    /timed out after 500 ms waiting for packets to grow by 1 \(from 0, now 0\)/,
  );
});

/** The stock VideoRoom's protocol, just enough for the self-test. */
async function createRoom(t, session) {
  const admin = await session.attach('janus.plugin.videoroom');
  const room = randomInt(1, 2 ** 31);
  const { data } = await admin.request({
    request: 'create',
    room,
    publishers: 4,
    audiocodec: 'opus',
    videocodec: 'vp8',
    permanent: false,
  });
  assert.equal(data.videoroom, 'created');
  t.after(() => admin.request({ request: 'destroy', room }).catch(() => {}));
  return room;
}

async function publish(session, peer, room) {
  const handle = await session.attach('janus.plugin.videoroom');
  const joined = await handle.request({ request: 'join', ptype: 'publisher', room, display: peer.name });
  assert.equal(joined.data.videoroom, 'joined');
  const offer = await peer.createOffer();
  const { data, jsep } = await handle.request({ request: 'publish', audio: true, video: true }, offer);
  assert.equal(data.configured, 'ok');
  await peer.acceptAnswer(jsep);
  peer.startMedia();
  await peer.waitConnected();
  await handle.waitForWebrtcUp();
  return { handle, id: joined.data.id };
}

async function subscribe(session, peer, room, feed) {
  const handle = await session.attach('janus.plugin.videoroom');
  const { data, jsep } = await handle.request({
    request: 'join',
    ptype: 'subscriber',
    room,
    streams: [{ feed }],
  });
  assert.equal(data.videoroom, 'attached');
  assert.equal(jsep.type, 'offer');
  const answer = await peer.answer(jsep);
  const started = await handle.request({ request: 'start' }, answer);
  assert.equal(started.data.started, 'ok');
  await peer.waitConnected();
  await handle.waitForWebrtcUp();
  return handle;
}

test('harness: videoroom forwards one publisher\'s audio and video to two subscribers', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await openSession(t);
  const room = await createRoom(t, session);
  const publisher = openPeer(t, { name: 'publisher', audio: true, video: true, direction: 'sendonly' });
  const { id } = await publish(session, publisher, room);

  const subscribers = [
    openPeer(t, { name: 'subscriber-1' }),
    openPeer(t, { name: 'subscriber-2' }),
  ];
  for (const subscriber of subscribers) {
    await subscribe(session, subscriber, room, id);
  }

  await Promise.all(subscribers.map(assertReceivesAudioAndVideo));
  for (const subscriber of subscribers) {
    assert.deepEqual([...subscriber.counters.values()].map((c) => c.kind).sort(), ['audio', 'video']);
  }

  // The publisher stops: every subscriber's counters stop growing.
  publisher.stopMedia();
  await Promise.all(
    subscribers.map((s) =>
      waitUntilFlat(() => s.packets(), { quietMs: 1000, timeoutMs: 5000, what: `${s.name} packets` }),
    ),
  );
  await Promise.all(
    subscribers.map((s) => assertFlat(() => s.packets(), { durationMs: 1000, what: `${s.name} packets after the publisher stopped` })),
  );

  // And start growing again when it resumes.
  publisher.startMedia();
  await Promise.all(subscribers.map(assertReceivesAudioAndVideo));
});
