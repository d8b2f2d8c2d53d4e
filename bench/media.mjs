// Media benchmark: janus.plugin.telehealth against the stock VideoRoom, in
// one Janus process with both plugins loaded (the media stack of
// scripts/media-tests.sh).  Run by bench/media.sh.
//
// 1. Fan-out: 1 synthetic publisher (werift, Opus 50 packets/s + VP8
//    30 frames/s of 5 packets, ~1.5 Mbit/s, tests/media/lib) and N
//    subscribers (default 50), through our plugin and through VideoRoom,
//    measured as bench/topology.mjs measures a topology (Janus restarted
//    before each; subscribers in processes of their own, --per-process
//    each; exact counts over a window between two pauses of the
//    publisher): Janus' CPU seconds (utime + stime of /proc/<pid>/stat)
//    and the RTP packets the subscribers received.  Figure: Janus CPU
//    microseconds per forwarded packet; ratio ours / VideoRoom.
// 2. Join latency: J joins (default 500) one after another on fresh
//    handles, each timed from sending the request to the event that answers
//    it.  Ours: "join" with a guest's join credential fetched beforehand
//    from the API (POST /invites/redeem, not timed) into an open group
//    room -> "joined".  VideoRoom: "join" as
//    a publisher without media (ptype publisher, no publish) -> "joined",
//    the closest equivalent: admission to a room with a participants list,
//    no PeerConnection.  Each joiner leaves and detaches before the next,
//    so rooms stay small and every join costs the same.
//
// Our rooms are opened the product's way (bench/lib.mjs): a `group`
// session started by an organisation's admin through the API (POST
// /sessions), the publisher its creator (a chair's credential from POST
// /sessions/{id}/join), subscribers and joiners guests of its invite link.
//
// The fan-outs run in R rounds (default 2), the two plugins in turns
// (ours first in odd rounds, VideoRoom first in even ones), so that a
// neighbour's load on a shared machine is less likely to favour one; the
// figures add up the rounds (CPU seconds over packets).
//
//   node bench/media.mjs [--subscribers 50] [--warmup-ms 3000]
//       [--window-ms 10000] [--rounds 2] [--joins 500] [--per-process 25]
//       [--json FILE]

import { writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';

import { JanusSession, env, withTimeout } from '../tests/media/lib/index.mjs';
import { PLUGIN } from '../tests/media/lib/telehealth.mjs';
import { VIDEOROOM, apiGroupRoom, idleCpu, log } from './lib.mjs';
import { generatorLine, generatorRounds, measureTopology } from './topology.mjs';

const { values: args } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '50' },
    'warmup-ms': { type: 'string', default: '3000' },
    'window-ms': { type: 'string', default: '10000' },
    joins: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '2' },
    batch: { type: 'string', default: '10' },
    'per-process': { type: 'string', default: '25' },
    'video-packets': { type: 'string', default: '5' },
    json: { type: 'string', default: '' },
  },
});
const N = Number(args.subscribers);
const WARMUP_MS = Number(args['warmup-ms']);
const WINDOW_MS = Number(args['window-ms']);
const JOINS = Number(args.joins);
const ROUNDS = Number(args.rounds);
const BATCH = Number(args.batch);
// A camera's rate: VP8 at 30 frames/s of `video-packets` packets of 1200
// bytes (5: ~150 packets/s, ~1.5 Mbit/s), Opus at 50 packets/s.
const VIDEO = { fps: 30, packetSize: 1200, deltaPackets: Number(args['video-packets']) };

const PER_PROCESS = Number(args['per-process']);

/**
 * One fan-out: bench/topology.mjs with one publisher (the room's
 * moderator) and N subscribers, in receiver processes of PER_PROCESS.
 */
async function measureFanout(plugin) {
  const f = await measureTopology(plugin, {
    publishers: 1, receivers: N, perProcess: PER_PROCESS, warmupMs: WARMUP_MS, windowMs: WINDOW_MS,
    batch: BATCH, video: VIDEO,
  });
  return { ...f, subscribers: N };
}

/** One figure of several rounds: their sums, per-packet over the sums. */
function addRounds(list) {
  const sum = (k) => list.reduce((a, f) => a + f[k], 0);
  const seconds = sum('seconds');
  const packets = sum('forwardedPackets');
  const cpu = sum('janusCpuSeconds');
  return {
    plugin: list[0].plugin,
    subscribers: N,
    rounds: list.length,
    seconds: Number(seconds.toFixed(2)),
    publishedPackets: sum('publishedPackets'),
    forwardedPackets: packets,
    delivery: Number((packets / (sum('publishedPackets') * N)).toFixed(4)),
    deliveryMin: Math.min(...list.map((f) => f.deliveryMin)),
    janusCpuSeconds: Number(cpu.toFixed(2)),
    janusCpuPerSecond: Number((cpu / seconds).toFixed(3)),
    cpuMicrosPerPacket: Number(((cpu / packets) * 1e6).toFixed(2)),
    cpuMicrosPerPacketByRound: list.map((f) => f.cpuMicrosPerPacket),
    ...generatorRounds(list),
  };
}

function summarize(name, ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const r = (x) => Number(x.toFixed(2));
  const result = {
    plugin: name,
    joins: ms.length,
    meanMs: r(ms.reduce((a, b) => a + b, 0) / ms.length),
    p50Ms: r(q(0.5)),
    p90Ms: r(q(0.9)),
    p99Ms: r(q(0.99)),
    maxMs: r(sorted[sorted.length - 1]),
  };
  log(JSON.stringify(result));
  return result;
}

async function joinsTelehealth() {
  const session = await JanusSession.create(env.janusHttp);
  const api = await apiGroupRoom({ capacity: 20 });
  const ms = [];
  try {
    for (let i = 0; i < JOINS; i++) {
      // A guest's credential from the API (not timed), then the join.
      const { credential } = await api.guest(`joiner ${i}`);
      const h = await session.attach(PLUGIN);
      const t0 = performance.now();
      const { data } = await h.request({ request: 'join', credential });
      ms.push(performance.now() - t0);
      if (data.telehealth !== 'joined') {
        throw new Error(`join answered ${JSON.stringify(data)}`);
      }
      await h.request({ request: 'leave' });
      await h.detach();
    }
  } finally {
    await session.destroy().catch(() => {});
    await api.close();
  }
  return summarize('telehealth', ms);
}

async function joinsVideoRoom() {
  const session = await JanusSession.create(env.janusHttp);
  const admin = await session.attach(VIDEOROOM);
  const room = randomInt(1, 2 ** 31);
  await admin.request({ request: 'create', room, publishers: 10 });
  const ms = [];
  try {
    for (let i = 0; i < JOINS; i++) {
      const h = await session.attach(VIDEOROOM);
      const t0 = performance.now();
      const { data } = await h.request({ request: 'join', ptype: 'publisher', room, display: `joiner ${i}` });
      ms.push(performance.now() - t0);
      if (data.videoroom !== 'joined') {
        throw new Error(`join answered ${JSON.stringify(data)}`);
      }
      await h.request({ request: 'leave' });
      await h.detach();
    }
  } finally {
    await admin.request({ request: 'destroy', room }).catch(() => {});
    await session.destroy().catch(() => {});
  }
  return summarize('videoroom', ms);
}

async function main() {
  if (!env.netns) {
    throw new Error('media needs the namespace: run bench/media.sh');
  }
  const idle = await idleCpu();
  log(`Janus idle: ${idle} CPU s/s`);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['telehealth', 'videoroom'] : ['videoroom', 'telehealth'];
    for (const plugin of order) {
      rounds.push(await measureFanout(plugin));
    }
  }
  const fanout = ['telehealth', 'videoroom'].map((plugin) => addRounds(rounds.filter((f) => f.plugin === plugin)));
  const joins = [await joinsTelehealth(), await joinsVideoRoom()];

  const [ours, vr] = fanout;
  const [jo, jv] = joins;
  const ratio = (a, b) => (a / b).toFixed(2);
  const out = {
    date: new Date().toISOString(),
    janusIdleCpuPerSecond: idle,
    fanout,
    fanoutRounds: rounds,
    joins,
    ratios: {
      cpuPerPacket: Number(ratio(ours.cpuMicrosPerPacket, vr.cpuMicrosPerPacket)),
      joinP50: Number(ratio(jo.p50Ms, jv.p50Ms)),
      joinMean: Number(ratio(jo.meanMs, jv.meanMs)),
    },
  };
  const pad = (s, n) => String(s).padEnd(n);
  const lines = [
    `fan-out: 1 publisher -> ${N} subscribers, ${ROUNDS} x ${WINDOW_MS / 1000} s windows after ${WARMUP_MS / 1000} s warm-ups (Janus idle ${idle} CPU s/s)`,
    `  ${pad('plugin', 12)}${pad('forwarded', 11)}${pad('delivery', 10)}${pad('min', 8)}${pad('Janus CPU s', 13)}${pad('CPU/s', 8)}${pad('us/packet', 11)}by round`,
    ...fanout.map((f) => `  ${pad(f.plugin, 12)}${pad(f.forwardedPackets, 11)}${pad(f.delivery, 10)}${pad(f.deliveryMin, 8)}` +
      `${pad(f.janusCpuSeconds, 13)}${pad(f.janusCpuPerSecond, 8)}${pad(f.cpuMicrosPerPacket, 11)}` +
      `${f.cpuMicrosPerPacketByRound.join(', ')}`),
    `  ${generatorLine(fanout)}`,
    `  CPU per forwarded packet, telehealth / videoroom: ${out.ratios.cpuPerPacket}`,
    `join latency: ${JOINS} joins each, request -> joined event (ms)`,
    `  ${pad('plugin', 12)}${pad('mean', 8)}${pad('p50', 8)}${pad('p90', 8)}${pad('p99', 8)}max`,
    ...joins.map((j) => `  ${pad(j.plugin, 12)}${pad(j.meanMs, 8)}${pad(j.p50Ms, 8)}${pad(j.p90Ms, 8)}${pad(j.p99Ms, 8)}${j.maxMs}`),
    `  join latency, telehealth / videoroom: p50 ${out.ratios.joinP50}, mean ${out.ratios.joinMean}`,
  ];
  console.log(lines.join('\n'));
  if (args.json) {
    writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
  }
}

await withTimeout(main(), 10 * 60_000, 'the media benchmark');
process.exit(0);
