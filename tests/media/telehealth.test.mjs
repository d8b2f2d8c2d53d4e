// Media forwarding of janus.plugin.telehealth with real WebRTC peers
// (werift) in the media namespace: publish, subscribe, renegotiation,
// viewers, leaving.  Run with scripts/media-tests.sh (full stack).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JanusError, assertFlat, env, waitFor, waitForGrowth, waitUntilFlat } from './lib/index.mjs';
import { Member, openRoom, redis } from './lib/telehealth.mjs';

const TEST_TIMEOUT_MS = 90_000;
// 2 s of media at least: 50 audio packets/s, 30 video frames/s.
const MIN_AUDIO = 100;
const MIN_VIDEO = 60;

const skip = env.stack !== 'full' ? 'needs the full stack (our plugin built)' : false;

async function assertReceivesFrom(receiver, publisher) {
  await waitFor(() => receiver.midsOf(publisher.id, 'audio').length === 1
      && receiver.midsOf(publisher.id, 'video').length === 1, {
    timeoutMs: 10_000,
    what: `${receiver.id} to be offered ${publisher.id}'s audio and video (${JSON.stringify([...receiver.streams.values()])})`,
  });
  const what = (kind) => `${receiver.id} receiving ${kind} of ${publisher.id}: ${JSON.stringify(receiver.subPeer.report())}`;
  await waitForGrowth(() => receiver.packetsFrom(publisher.id, 'audio'), { min: MIN_AUDIO, timeoutMs: 15_000, what: what('audio') });
  await waitForGrowth(() => receiver.packetsFrom(publisher.id, 'video'), { min: MIN_VIDEO, timeoutMs: 15_000, what: what('video') });
}

test('video_call: staff and patient each receive the other\'s audio and video RTP', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'video_call' });
  const staff = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster', publish: true });
  await staff.subscribe();
  await patient.subscribe();

  await Promise.all([assertReceivesFrom(staff, patient), assertReceivesFrom(patient, staff)]);

  // Nobody is offered their own streams; the descriptions say what each is.
  for (const [me, other] of [[staff, patient], [patient, staff]]) {
    const active = [...me.streams.values()].filter((s) => s.active);
    assert.deepEqual(active.map((s) => s.participant), [other.id, other.id]);
    assert.deepEqual(active.map((s) => s.description).sort(), ['camera', 'microphone']);
    const video = me.subPeer.countersOf('video')[0];
    assert.ok(video.keyframes >= 1, `${me.id} got a keyframe: ${JSON.stringify(video)}`);
    assert.equal(video.payloadType, 96, 'VP8 as offered by the plugin');
    assert.equal(me.subPeer.countersOf('audio')[0].payloadType, 111, 'Opus as offered by the plugin');
  }
  t.diagnostic(`staff received ${staff.packets('audio')} audio and ${staff.packets('video')} video packets; ` +
    `patient ${patient.packets('audio')} audio and ${patient.packets('video')} video`);
});

test('group room: 1 chair, 3 broadcasters, 2 viewers: everyone receives every publisher, nothing from a viewer', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const broadcasters = [];
  for (let i = 0; i < 3; i++) {
    broadcasters.push(await Member.join(t, room, { role: 'broadcaster', publish: true }));
  }
  const viewers = [
    await Member.join(t, room, { role: 'viewer' }),
    await Member.join(t, room, { role: 'viewer' }),
  ];

  // A viewer's publish is refused with 492 and gets no answer.
  for (const viewer of viewers) {
    await assert.rejects(viewer.publish(), (err) => err instanceof JanusError && err.code === 492,
      'a viewer may not publish');
    await viewer.publisher.close();
    viewer.publisher = null;
  }

  const publishers = [chair, ...broadcasters];
  const everyone = [...publishers, ...viewers];
  for (const m of everyone) {
    await m.subscribe();
  }

  await Promise.all(everyone.flatMap((receiver) =>
    publishers.filter((p) => p !== receiver).map((p) => assertReceivesFrom(receiver, p))));

  // Exactly the publishers' streams, nobody's own, no viewer's.
  const viewerIds = new Set(viewers.map((v) => v.id));
  for (const receiver of everyone) {
    const active = [...receiver.streams.values()].filter((s) => s.active);
    const expected = publishers.filter((p) => p !== receiver).length * 2;
    assert.equal(active.length, expected, `${receiver.id}: ${JSON.stringify(active)}`);
    assert.ok(active.every((s) => !viewerIds.has(s.participant) && s.participant !== receiver.id));
    // Every packet received is on a publisher's mid.
    const fromPublishers = publishers.reduce((sum, p) => sum + receiver.packetsFrom(p.id), 0);
    assert.equal(receiver.packets(), fromPublishers, `${receiver.id}: no packets outside the publishers' mids`);
  }
  const total = everyone.reduce((sum, m) => sum + m.packets(), 0);
  t.diagnostic(`6 receivers got ${total} packets from 4 publishers`);
});

test('a publisher leaving: the others\' counters for it stop and they get a renegotiation', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const leaver = await Member.join(t, room, { role: 'broadcaster', publish: true });
  const stayer = await Member.join(t, room, { role: 'broadcaster', publish: true });
  for (const m of [chair, leaver, stayer]) {
    await m.subscribe();
  }
  await Promise.all([assertReceivesFrom(chair, leaver), assertReceivesFrom(stayer, leaver),
    assertReceivesFrom(chair, stayer)]);

  const midsAtChair = chair.midsOf(leaver.id);
  const midsAtStayer = stayer.midsOf(leaver.id);
  const updatesBefore = [chair.updates.length, stayer.updates.length];

  const { data } = await leaver.handle.request({ request: 'leave' });
  assert.equal(data.telehealth, 'left');

  for (const [m, before] of [[chair, updatesBefore[0]], [stayer, updatesBefore[1]]]) {
    await waitFor(() => m.updates.length > before && m.midsOf(leaver.id).length === 0, {
      timeoutMs: 10_000, what: `${m.id}: a renegotiation without ${leaver.id}'s streams`,
    });
    const last = m.updates.at(-1);
    assert.ok(last.streams.filter((s) => !s.active).length >= 2, `inactive m-lines: ${JSON.stringify(last.streams)}`);
  }

  await waitUntilFlat(() => chair.packetsFrom(leaver.id, null, midsAtChair), { quietMs: 1000, timeoutMs: 10_000, what: 'chair packets from the leaver' });
  await waitUntilFlat(() => stayer.packetsFrom(leaver.id, null, midsAtStayer), { quietMs: 1000, timeoutMs: 10_000, what: 'stayer packets from the leaver' });
  await assertFlat(() => chair.packetsFrom(leaver.id, null, midsAtChair), { durationMs: 1500, what: 'chair packets from the leaver' });
  // The others still flow.
  await waitForGrowth(() => chair.packetsFrom(stayer.id, 'video'), { min: 30, timeoutMs: 10_000, what: 'chair video from the stayer' });
  await waitForGrowth(() => stayer.packetsFrom(chair.id, 'video'), { min: 30, timeoutMs: 10_000, what: 'stayer video from the chair' });
});

test('video_call: the staff member leaving closes everything; the patient stops receiving', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'video_call' });
  const staff = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster', publish: true });
  await staff.subscribe();
  await patient.subscribe();
  await assertReceivesFrom(patient, staff);

  const { data } = await staff.handle.request({ request: 'leave' });
  assert.equal(data.telehealth, 'left');

  const closed = await patient.waitEvent('closed');
  assert.equal(closed.plugindata.data.reason, 'chair_left');
  await waitFor(() => patient.closedSub, { timeoutMs: 10_000, what: 'the patient\'s subscriber to be unsubscribed' });
  assert.equal(patient.closedSub.reason, 'room_closed');
  // Janus hangs up the patient's PeerConnections.
  await patient.subHandle.waitForEvent((e) => e.janus === 'hangup', 10_000, 'hangup of the subscriber PC');
  await patient.handle.waitForEvent((e) => e.janus === 'hangup', 10_000, 'hangup of the publisher PC');

  await waitUntilFlat(() => patient.packets(), { quietMs: 1000, timeoutMs: 10_000, what: 'patient packets' });
  await assertFlat(() => patient.packets(), { durationMs: 1500, what: 'patient packets after the close' });
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'closed');
});
