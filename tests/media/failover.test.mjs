// Failover (docs/lifecycle.md, "Hosting is a lease"): two Janus nodes with
// our plugin share the stack's Redis.  Two participants of a telehealth
// call exchange media on node A; node A's Janus is killed (SIGKILL, by its
// pid); its heartbeat lapses within 10 s; both rejoin on node B with fresh
// credentials, B takes the room over (the members A left are reported
// node_lost) and media flows between them again.  Run with
// scripts/media-tests.sh (full stack).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { env, waitFor, waitForGrowth } from './lib/index.mjs';
import { startJanusNode } from './lib/node.mjs';
import { Member, openRoom, redis } from './lib/telehealth.mjs';

const TEST_TIMEOUT_MS = 120_000;
// The heartbeat's TTL is 3 x refresh_interval (3 s in the stack).
const HEARTBEAT_LAPSE_MAX_MS = 10_000;
const MIN_AUDIO = 100;
const MIN_VIDEO = 60;

const skip = env.stack !== 'full' ? 'needs the full stack (our plugin built)' : false;

async function assertReceivesFrom(receiver, publisher) {
  await waitFor(() => receiver.midsOf(publisher.id, 'audio').length === 1
      && receiver.midsOf(publisher.id, 'video').length === 1, {
    timeoutMs: 10_000,
    what: `${receiver.id} to be offered ${publisher.id}'s audio and video`,
  });
  const what = (kind) => `${receiver.id} receiving ${kind} of ${publisher.id}`;
  await waitForGrowth(() => receiver.packetsFrom(publisher.id, 'audio'), { min: MIN_AUDIO, timeoutMs: 15_000, what: what('audio') });
  await waitForGrowth(() => receiver.packetsFrom(publisher.id, 'video'), { min: MIN_VIDEO, timeoutMs: 15_000, what: what('video') });
}

// The events stream's entries about one room, as objects.
async function streamOf(room) {
  const json = await redis('EVAL', `
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f.room == ARGV[1] then out[#out + 1] = f end
end
if #out == 0 then return '[]' end
return cjson.encode(out)`, '1', 'th:events', room);
  return JSON.parse(json);
}

test('telehealth call: node A killed, its heartbeat lapses within 10 s, both rejoin on node B and media flows again', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await startJanusNode(t, { nodeId: 'media-a', httpPort: 58288, wsPort: 58289 });
  const b = await startJanusNode(t, { nodeId: 'media-b', httpPort: 58388, wsPort: 58389 });
  await waitFor(async () => (await redis('EXISTS', `th:node:${a.nodeId}`)) === '1'
      && (await redis('EXISTS', `th:node:${b.nodeId}`)) === '1',
  { timeoutMs: 10_000, what: 'both nodes\' heartbeats' });

  const room = await openRoom({ kind: 'telehealth' });
  const staff = await Member.join(t, room, { type: 'staff', role: 'chair', publish: true, janus: a.url });
  const patient = await Member.join(t, room, { type: 'patient', role: 'broadcaster', publish: true, janus: a.url });
  await staff.subscribe();
  await patient.subscribe();
  await Promise.all([assertReceivesFrom(staff, patient), assertReceivesFrom(patient, staff)]);
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'node'), a.nodeId, 'node A hosts the room');

  // Node A dies without a word to Redis.
  const killedAt = performance.now();
  await a.kill('SIGKILL');
  await waitFor(async () => (await redis('EXISTS', `th:node:${a.nodeId}`)) === '0', {
    timeoutMs: 15_000, pollMs: 100, what: 'node A\'s heartbeat to lapse',
  });
  const detectionMs = performance.now() - killedAt;
  t.diagnostic(`node A's heartbeat lapsed ${(detectionMs / 1000).toFixed(1)} s after the kill`);
  assert.ok(detectionMs <= HEARTBEAT_LAPSE_MAX_MS,
    `a dead node's heartbeat lapses within 10 s (took ${Math.round(detectionMs)} ms)`);
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'state'), 'open', 'the room is still open');

  // Their pages rejoin on a live node with fresh credentials.
  await Promise.all([staff.close(), patient.close()]);
  const rejoinFrom = performance.now();
  const staff2 = await Member.join(t, room, { who: staff.who, publish: true, janus: b.url });
  const patient2 = await Member.join(t, room, { who: patient.who, publish: true, janus: b.url });
  const rejoinMs = performance.now() - rejoinFrom;
  assert.equal(await redis('HGET', `th:room:${room.id}`, 'node'), b.nodeId, 'node B took the room over');

  await staff2.subscribe();
  await patient2.subscribe();
  const mediaFrom = performance.now();
  await Promise.all([assertReceivesFrom(staff2, patient2), assertReceivesFrom(patient2, staff2)]);
  const mediaMs = performance.now() - mediaFrom;
  t.diagnostic(`both rejoined on node B in ${Math.round(rejoinMs)} ms (join and publish); `
    + `media flowed both ways ${Math.round(mediaMs)} ms after subscribing; `
    + `${((performance.now() - killedAt) / 1000).toFixed(1)} s from the kill to media again`);

  const lost = (await streamOf(room.id))
    .filter((e) => e.type === 'participant.left' && e.reason === 'node_lost')
    .map((e) => e.participant).sort();
  assert.deepEqual(lost, [staff.id, patient.id].sort(),
    'the members node A left are reported as left with reason node_lost');
});
