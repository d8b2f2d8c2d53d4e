// Room semantics of janus.plugin.telehealth with real WebRTC peers (werift)
// in the media namespace: chair moderation (mute, role change, removal,
// close), the waiting room, breakout rooms, limits, leaving by kind and
// commands from nginx through Redis.  Run with scripts/media-tests.sh.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JanusError, JanusSession, assertFlat, env, sleep, waitFor, waitForGrowth, waitUntilFlat, withTimeout } from './lib/index.mjs';
import { Member, PLUGIN, joinCredential, openRoom, person, redis } from './lib/telehealth.mjs';

const TEST_TIMEOUT_MS = 90_000;
const MIN_AUDIO = 50;
const MIN_VIDEO = 30;

const skip = env.stack !== 'full' ? 'needs the full stack (our plugin built)' : false;

const rejectsWith = (code) => (err) => err instanceof JanusError && err.code === code;

async function assertReceives(receiver, publisher, kinds = ['audio', 'video']) {
  await waitFor(() => kinds.every((k) => receiver.midsOf(publisher.id, k).length >= 1), {
    timeoutMs: 10_000,
    what: `${receiver.id} to be offered ${publisher.id}'s ${kinds} (${JSON.stringify([...receiver.streams.values()])})`,
  });
  for (const kind of kinds) {
    await waitForGrowth(() => receiver.packetsFrom(publisher.id, kind), {
      min: kind === 'audio' ? MIN_AUDIO : MIN_VIDEO,
      timeoutMs: 15_000,
      what: `${receiver.id} receiving ${kind} of ${publisher.id}`,
    });
  }
}

async function assertStopped(receiver, publisher, kind, mids = receiver.midsOf(publisher.id, kind)) {
  const read = () => receiver.packetsFrom(publisher.id, kind, mids);
  await waitUntilFlat(read, { quietMs: 1000, timeoutMs: 10_000, what: `${receiver.id}: ${kind} of ${publisher.id}` });
  await assertFlat(read, { durationMs: 1500, what: `${receiver.id}: ${kind} of ${publisher.id} after it stopped` });
}

/**
 * A new subscription for a member (new handle and PeerConnection).  A
 * werift subscriber does not receive streams that a renegotiation adds to
 * its established PeerConnection (see the report of this change), so
 * tests that need a stream to come back look at a fresh subscription.
 */
async function resubscribe(m) {
  const { subHandle, subPeer, loop } = m;
  m.stopped = true;
  await subPeer.close().catch(() => {});
  await subHandle.detach().catch(() => {});
  await withTimeout(loop.catch(() => {}), 5000, 'the old renegotiation loop to end');
  m.stopped = false;
  m.streams = new Map();
  await m.subscribe();
}

/** The last participants list a member was sent (answers and events). */
async function participantsOf(member) {
  const { data } = await member.handle.request({ request: 'list' });
  return data.participants;
}

/** Joins with a given credential on a fresh handle; returns the answer or throws. */
async function joinWith(t, credential) {
  const session = await JanusSession.create(env.janusHttp);
  t.after(() => session.destroy().catch(() => {}));
  const handle = await session.attach(PLUGIN);
  return handle.request({ request: 'join', credential });
}

/** command.result entries of the events stream for one command id. */
async function commandResult(id) {
  const out = await redis('XRANGE', 'th:events', '-', '+');
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === 'id' && lines[i + 1] === id) {
      // the entry's fields, from its "type" back to the next entry
      let j = i;
      while (j > 0 && lines[j] !== 'type') j--;
      const fields = {};
      for (let k = j; k < lines.length - 1 && !(k > j && lines[k] === 'type'); k += 2) {
        fields[lines[k]] = lines[k + 1];
      }
      if (fields.type === 'command.result') {
        return fields;
      }
    }
  }
  return null;
}

test('test_chair_mute_stops_forwarding_and_unmute_restarts_it', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const target = await Member.join(t, room, { role: 'broadcaster', publish: true });
  const other = await Member.join(t, room, { role: 'broadcaster' });
  for (const m of [chair, target, other]) {
    await m.subscribe();
  }
  await Promise.all([assertReceives(chair, target), assertReceives(other, target)]);

  // Self state: everyone sees who publishes.
  const before = (await participantsOf(other)).find((p) => p.id === target.id);
  assert.equal(before.publishing, true);
  assert.equal(before.audio_muted_by_chair, false);

  // Only a chair may mute.
  await assert.rejects(other.handle.request({ request: 'mute', participant: target.id, audio: true }),
    rejectsWith(495), 'a broadcaster cannot mute');

  const { data } = await chair.handle.request({ request: 'mute', participant: target.id, audio: true });
  assert.equal(data.telehealth, 'ok');
  const muted = await target.waitEvent('muted');
  assert.equal(muted.plugindata.data.audio_muted_by_chair, true);

  await assertStopped(chair, target, 'audio');
  await assertStopped(other, target, 'audio');
  // Video keeps flowing.
  await waitForGrowth(() => other.packetsFrom(target.id, 'video'), { min: MIN_VIDEO, timeoutMs: 10_000, what: 'video of the muted participant' });
  const listed = (await participantsOf(other)).find((p) => p.id === target.id);
  assert.equal(listed.audio_muted_by_chair, true, 'everyone sees the mute');

  // Video too, then both back.
  await chair.handle.request({ request: 'mute', participant: target.id, video: true });
  await assertStopped(other, target, 'video');

  await chair.handle.request({ request: 'mute', participant: target.id, audio: false, video: false });
  await waitForGrowth(() => other.packetsFrom(target.id, 'audio'), { min: MIN_AUDIO, timeoutMs: 10_000, what: 'audio after unmute' });
  await waitForGrowth(() => other.packetsFrom(target.id, 'video'), { min: MIN_VIDEO, timeoutMs: 10_000, what: 'video after unmute' });
  const after = (await participantsOf(chair)).find((p) => p.id === target.id);
  assert.equal(after.audio_muted_by_chair, false);
  assert.equal(after.video_muted_by_chair, false);
});

test('test_role_downgrade_to_viewer_stops_forwarding_at_once', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const target = await Member.join(t, room, { role: 'broadcaster', publish: true });
  await chair.subscribe();
  await target.subscribe();
  await assertReceives(chair, target);
  const mids = chair.midsOf(target.id);

  await chair.handle.request({ request: 'set_role', participant: target.id, role: 'viewer' });
  const role = await target.waitEvent('role');
  assert.equal(role.plugindata.data.role, 'viewer');
  const unpublished = await target.waitEvent('unpublished');
  assert.equal(unpublished.plugindata.data.reason, 'role_changed');

  await assertStopped(chair, target, null, mids);
  await target.publisher.close();
  target.publisher = null;
  await assert.rejects(target.publish(), rejectsWith(492), 'a viewer may not publish again');
  await target.publisher.close();
  target.publisher = null;
  // The viewer still receives the chair.
  await waitForGrowth(() => target.packetsFrom(chair.id, 'video'), { min: MIN_VIDEO, timeoutMs: 10_000, what: 'viewer receiving the chair' });

  // Viewer back to broadcaster may publish.
  await chair.handle.request({ request: 'set_role', participant: target.id, role: 'broadcaster' });
  await target.publish();
  await resubscribe(chair);
  await assertReceives(chair, target);
});

test('test_removed_participant_is_out_and_cannot_rejoin_with_the_same_credential', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  await chair.subscribe();

  const who = person('patient', 'broadcaster');
  const credential = joinCredential(room, who);
  const session = await JanusSession.create(env.janusHttp);
  t.after(() => session.destroy().catch(() => {}));
  const handle = await session.attach(PLUGIN);
  const { data: joined } = await handle.request({ request: 'join', credential });
  assert.equal(joined.telehealth, 'joined');

  await chair.handle.request({ request: 'remove', participant: who.id });
  const left = await handle.waitForEvent((e) => e.plugindata?.data?.telehealth === 'left', 10_000, 'left');
  assert.equal(left.plugindata.data.reason, 'removed');
  await waitFor(async () => !(await participantsOf(chair)).some((p) => p.id === who.id), { timeoutMs: 5000, what: 'the removed one gone from the list' });

  await assert.rejects(handle.request({ request: 'join', credential }), rejectsWith(484), 'same credential refused');
  await assert.rejects(joinWith(t, credential), rejectsWith(484), 'same credential refused on a new handle');
});

test('test_waiting_participant_sends_and_receives_nothing_until_admitted', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'appointment', fields: { waiting_room: 'broadcaster,viewer' } });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  await chair.subscribe();

  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  const arrived = await chair.waitEvent('waiting');
  assert.equal(arrived.plugindata.data.participant.id, patient.id);
  assert.equal(arrived.plugindata.data.participant.state, 'waiting');
  const chairList = await participantsOf(chair);
  assert.equal(chairList.find((p) => p.id === patient.id)?.state, 'waiting', 'chairs see who waits');
  assert.deepEqual(await participantsOf(patient), [], 'who waits sees nobody');

  // No media in or out.
  await assert.rejects(patient.publish(), rejectsWith(496), 'publish refused while waiting');
  await patient.publisher.close();
  patient.publisher = null;
  // The core took the refused offer in: a hangup lets the handle offer again.
  await patient.handle.hangup().catch(() => {});
  await assert.rejects(patient.subscribe(), rejectsWith(496), 'subscribe refused while waiting');
  assert.equal(patient.packets(), 0);
  assert.equal(chair.packetsFrom(patient.id), 0);

  // A second one is turned away.
  const other = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  await chair.handle.request({ request: 'turn_away', participant: other.id });
  const away = await other.waitEvent('left');
  assert.equal(away.plugindata.data.reason, 'turned_away');

  const { data } = await chair.handle.request({ request: 'admit', participant: patient.id });
  assert.equal(data.telehealth, 'ok');
  await patient.waitEvent('admitted');
  await patient.publish();
  await patient.subscribe();
  await Promise.all([assertReceives(chair, patient), assertReceives(patient, chair)]);
});

test('test_consultation_requester_cannot_open_before_invitee_connects', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'consultation', fields: { first_connect: 'broadcaster', waiting_room: 'broadcaster' } });
  const requester = person('staff', 'chair');
  await assert.rejects(joinWith(t, joinCredential(room, requester)), rejectsWith(498), 'requester first is refused');

  const invitee = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair' });
  assert.equal((await participantsOf(chair)).find((p) => p.id === invitee.id)?.state, 'waiting');
  const { data } = await chair.handle.request({ request: 'admit_all' });
  assert.deepEqual(data.admitted, [invitee.id]);
  await invitee.waitEvent('admitted');
});

test('test_breakout_move_changes_what_a_participant_receives', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const a = await Member.join(t, room, { role: 'broadcaster', publish: true });
  const b = await Member.join(t, room, { role: 'broadcaster', publish: true });
  for (const m of [chair, a, b]) {
    await m.subscribe();
  }
  await Promise.all([assertReceives(a, chair), assertReceives(a, b), assertReceives(chair, a)]);
  const aFromChair = a.midsOf(chair.id);
  const chairFromA = chair.midsOf(a.id);

  const { data } = await chair.handle.request({ request: 'breakout_create' });
  const breakout = data.breakout;
  assert.ok(breakout);
  await chair.handle.request({ request: 'breakout_move', participant: a.id, breakout });
  const moved = await a.waitEvent('moved');
  assert.equal(moved.plugindata.data.breakout, breakout);

  // a is alone in the breakout: receives nobody, nobody receives a.
  await assertStopped(a, chair, null, aFromChair);
  await assertStopped(chair, a, null, chairFromA);
  await waitFor(() => a.midsOf(chair.id).length === 0 && a.midsOf(b.id).length === 0, { timeoutMs: 10_000, what: 'a offered nobody' });

  // b joins a in the breakout: they receive each other, not the chair.
  await chair.handle.request({ request: 'breakout_move', participant: b.id, breakout });
  await waitFor(() => b.midsOf(chair.id).length === 0, { timeoutMs: 10_000, what: 'b no longer offered the chair' });
  await resubscribe(a);
  await resubscribe(b);
  await Promise.all([assertReceives(a, b), assertReceives(b, a)]);
  assert.equal(b.midsOf(chair.id).length, 0, 'b is offered nothing of the main room');
  assert.equal(a.midsOf(chair.id).length, 0, 'a is offered nothing of the main room');

  // Closing the breakout brings both back to the main room.
  await chair.handle.request({ request: 'breakout_close', breakout });
  assert.equal((await a.waitEvent('moved')).plugindata.data.breakout, null);
  await resubscribe(a);
  await resubscribe(chair);
  await Promise.all([assertReceives(a, chair), assertReceives(chair, b)]);
});

test('test_participant_limit_refuses_one_more_with_490', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'meeting_room', fields: { max_participants: '2' } });
  await Member.join(t, room, { type: 'staff', role: 'chair' });
  await Member.join(t, room, { role: 'broadcaster' });
  await assert.rejects(Member.join(t, room, { role: 'broadcaster' }), (err) => err instanceof JanusError
    && err.code === 490 && /at most 2 participants/.test(err.message), 'third one refused with a clear text');
});

test('test_virtual_visit_client_hangup_tells_staff_and_caregiver_hangup_ends_it', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'virtual_visit' });
  const caregiver = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const client = await Member.join(t, room, { type: 'patient', role: 'broadcaster', publish: true });

  // A dropped connection is not hanging up: nothing ends, nobody is told.
  await client.session.destroy();
  await sleep(500);
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'open');
  const client2 = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  const { data } = await client2.handle.request({ request: 'leave' });
  assert.equal(data.telehealth, 'left');
  const hungUp = await caregiver.waitEvent('hung_up');
  assert.equal(hungUp.plugindata.data.message, 'The client has hung up. If the session is not supposed to be over, please reach out to the client.');
  assert.equal(hungUp.plugindata.data.participant, client2.id);
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'open', 'the client hanging up does not end the visit');

  const client3 = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  await caregiver.handle.request({ request: 'leave' });
  const closed = await client3.waitEvent('closed');
  assert.equal(closed.plugindata.data.reason, 'caregiver_hung_up');
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'closed');
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'closed_reason'), 'caregiver_hung_up');
});

test('test_audio_only_participant_is_heard_and_listed_as_audio_only', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'telehealth' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const voice = await Member.join(t, room, { role: 'broadcaster' });
  await voice.publish({ video: false });
  await chair.subscribe();
  await assertReceives(chair, voice, ['audio']);
  assert.equal(chair.midsOf(voice.id, 'video').length, 0, 'no video offered from it');

  const listed = await participantsOf(chair);
  assert.equal(listed.find((p) => p.id === voice.id).audio_only, true);
  assert.equal(listed.find((p) => p.id === chair.id).audio_only, false);
  const member = JSON.parse(await redis('HGET', `th:room:${room.id}:members`, voice.id));
  assert.equal(member.audio_only, true, 'the members hash (the API\'s list) says so');
  // and it stays: the audio-only participant keeps sending
  await waitForGrowth(() => chair.packetsFrom(voice.id, 'audio'), { min: MIN_AUDIO, timeoutMs: 10_000, what: 'audio of the voice participant' });
});

test('test_duration_limit_warns_chairs_and_closes_the_room', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group', fields: { duration_limit: '5' } });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair' });
  const guest = await Member.join(t, room, { role: 'broadcaster' });
  const warning = await chair.waitEvent('warning', 5000);
  assert.ok(warning.plugindata.data.seconds_left <= 5 && warning.plugindata.data.seconds_left > 0);
  const closed = await guest.waitEvent('closed', 10_000);
  assert.equal(closed.plugindata.data.reason, 'duration_limit');
  await assert.rejects(guest.handle.waitForEvent((e) => e.plugindata?.data?.telehealth === 'warning', 500, 'warning'),
    /timed out/, 'only chairs are warned');
});

test('test_chair_closes_the_room_for_everyone', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'telehealth' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair' });
  const guest = await Member.join(t, room, { role: 'broadcaster' });
  await assert.rejects(guest.handle.request({ request: 'close' }), rejectsWith(495));
  await chair.handle.request({ request: 'close' });
  const closed = await guest.waitEvent('closed');
  assert.equal(closed.plugindata.data.reason, 'closed_by_chair');
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'closed');
});

test('test_redis_commands_are_executed_and_confirmed_in_the_stream', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true });
  const target = await Member.join(t, room, { role: 'broadcaster', publish: true });
  const leaver = await Member.join(t, room, { role: 'broadcaster' });
  await chair.subscribe();
  await assertReceives(chair, target);
  const node = await redis('HGET', `th:room:${room.id}`, 'node');
  const channel = `th:cmd:${node}`;
  const publish = (cmd) => redis('PUBLISH', channel, JSON.stringify(cmd));

  const muteId = `cmd-${Date.now()}-mute`;
  await publish({ command: 'mute', id: muteId, room: room.id, participant: target.id, audio: true });
  await waitFor(async () => (await commandResult(muteId))?.result === 'ok', { timeoutMs: 10_000, what: 'mute confirmed' });
  await assertStopped(chair, target, 'audio');

  const roleId = `cmd-${Date.now()}-role`;
  await publish({ command: 'set_role', id: roleId, room: room.id, participant: target.id, role: 'viewer' });
  await waitFor(async () => (await commandResult(roleId))?.result === 'ok', { timeoutMs: 10_000, what: 'set_role confirmed' });
  await assertStopped(chair, target, 'video');

  const accessId = `cmd-${Date.now()}-access`;
  await publish({ command: 'access_changed', id: accessId, room: room.id, participants: [leaver.id] });
  await waitFor(async () => (await commandResult(accessId))?.result === 'ok', { timeoutMs: 10_000, what: 'access_changed confirmed' });
  assert.equal((await leaver.waitEvent('left')).plugindata.data.reason, 'removed');

  const missingId = `cmd-${Date.now()}-missing`;
  await publish({ command: 'remove', id: missingId, room: room.id, participant: 'patient:nobody' });
  await waitFor(async () => (await commandResult(missingId))?.result === 'not_found', { timeoutMs: 10_000, what: 'remove of nobody answered not_found' });

  const closeId = `cmd-${Date.now()}-close`;
  await publish({ command: 'close', id: closeId, room: room.id, reason: 'closed_by_chair' });
  await waitFor(async () => (await commandResult(closeId))?.result === 'ok', { timeoutMs: 10_000, what: 'close confirmed' });
  assert.equal((await chair.waitEvent('closed')).plugindata.data.reason, 'closed_by_chair');
});
