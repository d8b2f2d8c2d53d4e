// Who receives a room's media (docs/plugin.md, "subscribe"): a
// subscription is opened only with a one-time token that the participant's
// own joined, admitted handle asked for; a join credential alone opens
// nothing, a revoked credential nothing either, a participant holds at most
// max_subscriptions (1 in the stack) and chairs see every receiver.
// Signalling only: with nobody publishing, a subscription needs no
// PeerConnection.  Run with scripts/media-tests.sh.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JanusError, JanusSession, env } from './lib/index.mjs';
import { Member, PLUGIN, openRoom, redis } from './lib/telehealth.mjs';

const TEST_TIMEOUT_MS = 60_000;

const skip = env.stack !== 'full' ? 'needs the full stack (our plugin built)' : false;

const rejectsWith = (code) => (err) => err instanceof JanusError && err.code === code;

/** A handle on a Janus session of its own: someone who never joined. */
async function strangerHandle(t) {
  const session = await JanusSession.create(env.janusHttp);
  t.after(() => session.destroy().catch(() => {}));
  return session.attach(PLUGIN);
}

function claims(credential) {
  return JSON.parse(Buffer.from(credential.split('.')[1], 'base64url').toString());
}

const isReceivers = (pred) => (e) =>
  e.janus === 'event' && e.plugindata?.data?.telehealth === 'receivers' && pred(e.plugindata.data.receivers);

async function subscribeWith(handle, token) {
  const { data } = await handle.request({ request: 'subscribe', token });
  return data;
}

test('test_subscribe_with_a_replayed_credential_from_a_handle_that_did_not_join_is_refused', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair' });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });

  const spy = await strangerHandle(t);
  await assert.rejects(spy.request({ request: 'subscribe', credential: patient.credential }), rejectsWith(479),
    'a valid credential of a participant in the room opens no subscription');
  await assert.rejects(spy.request({ request: 'subscribe' }), rejectsWith(479), 'no token at all');
  await assert.rejects(spy.request({ request: 'subscribe', token: `${room.id}.${'A'.repeat(43)}` }), rejectsWith(479),
    'a made-up token');
  await assert.rejects(spy.request({ request: 'subscribe_token' }), rejectsWith(488),
    'a handle that did not join gets no token');

  const { data } = await chair.handle.request({ request: 'list' });
  assert.deepEqual(data.receivers, [], 'nobody receives');
});

test('test_subscription_token_is_spent_once_and_replaced_by_a_newer_one', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });

  const stale = await patient.subscribeToken();
  const token = await patient.subscribeToken();
  assert.notEqual(stale, token);
  assert.ok(token.startsWith(`${room.id}.`));

  const spy = await strangerHandle(t);
  await assert.rejects(subscribeWith(spy, stale), rejectsWith(479), 'a token replaced by a newer one is dead');

  const own = await patient.session.attach(PLUGIN);
  const answer = await subscribeWith(own, token);
  assert.equal(answer.telehealth, 'subscribed');
  assert.deepEqual(answer.streams, []);

  await assert.rejects(subscribeWith(spy, token), rejectsWith(479), 'a spent token replayed from another handle');
});

test('test_subscribe_is_refused_once_the_participants_credential_is_revoked', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });
  const { jti } = claims(patient.credential);
  await redis('SET', `th:revoked:${jti}`, '1', 'EX', '120');

  const token = await patient.subscribeToken();
  const own = await patient.session.attach(PLUGIN);
  await assert.rejects(subscribeWith(own, token), rejectsWith(484));
});

test('test_subscriptions_per_participant_are_capped', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });

  const first = await patient.session.attach(PLUGIN);
  assert.equal((await subscribeWith(first, await patient.subscribeToken())).telehealth, 'subscribed');

  const second = await patient.session.attach(PLUGIN);
  await assert.rejects(subscribeWith(second, await patient.subscribeToken()),
    (err) => rejectsWith(478)(err) && /At most 1 subscription/.test(err.reason), 'max_subscriptions = 1');

  // Once the first subscription ends, the participant may subscribe again.
  await first.detach();
  assert.equal((await subscribeWith(second, await patient.subscribeToken())).telehealth, 'subscribed');
});

test('test_chair_sees_every_receiver', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const room = await openRoom({ kind: 'group' });
  const chair = await Member.join(t, room, { type: 'staff', role: 'chair' });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster' });

  const sub = await patient.session.attach(PLUGIN);
  await subscribeWith(sub, await patient.subscribeToken());

  const ev = await chair.handle.waitForEvent(isReceivers((r) => r.some((x) => x.participant === patient.id)),
    10_000, 'receivers naming the patient');
  assert.deepEqual(ev.plugindata.data.receivers, [{ participant: patient.id }]);
  assert.equal(ev.plugindata.data.room, room.id);

  const { data } = await chair.handle.request({ request: 'list' });
  assert.deepEqual(data.receivers, [{ participant: patient.id }], 'the chair\'s list shows the receiver');
  const own = await patient.handle.request({ request: 'list' });
  assert.equal(own.data.receivers, undefined, 'only chairs see receivers');

  await sub.detach();
  await chair.handle.waitForEvent(isReceivers((r) => r.length === 0), 10_000, 'receivers empty again');
});
