// Group benchmark: a `group` room of P publishers (1 moderator and P - 1
// participants, each sending camera-rate VP8 and Opus; 9 by default) and R
// receivers of every publisher's streams (51), in janus.plugin.telehealth
// and the same topology in the stock VideoRoom, in turns in one Janus.
// How it is built and measured: bench/topology.mjs.  Prints the figures of
// both, the ratio ours / VideoRoom of Janus CPU per forwarded packet (and
// of Janus CPU seconds), delivery (the minimum over every receiver and
// stream, and the mean), Janus memory per participant, and whether the
// load generator kept up.  Run by bench/group.sh.
//
//   node bench/group.mjs [--publishers 9] [--receivers 51] [--per-process 10]
//       [--warmup-ms 5000] [--window-ms 10000] [--rounds 1] [--json FILE]

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { env, withTimeout } from '../tests/media/lib/index.mjs';
import { cameraRate, generatorLine, generatorRounds, measureTopology } from './topology.mjs';

const { values: args } = parseArgs({
  options: {
    publishers: { type: 'string', default: '9' },
    receivers: { type: 'string', default: '51' },
    'per-process': { type: 'string', default: '10' },
    'warmup-ms': { type: 'string', default: '5000' },
    'window-ms': { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '1' },
    batch: { type: 'string', default: '5' },
    'video-packets': { type: 'string', default: '5' },
    plugins: { type: 'string', default: 'telehealth,videoroom' },
    json: { type: 'string', default: '' },
  },
});
const P = Number(args.publishers);
const R = Number(args.receivers);
const PER_PROCESS = Number(args['per-process']);
const WARMUP_MS = Number(args['warmup-ms']);
const WINDOW_MS = Number(args['window-ms']);
const ROUNDS = Number(args.rounds);
const BATCH = Number(args.batch);
const VIDEO = { fps: 30, packetSize: 1200, deltaPackets: Number(args['video-packets']) };
const CAMERA_RATE = cameraRate(VIDEO);
const TOPOLOGY = {
  publishers: P, receivers: R, perProcess: PER_PROCESS, warmupMs: WARMUP_MS, windowMs: WINDOW_MS,
  batch: BATCH, video: VIDEO,
};

/** Several rounds of one plugin: sums of counts, min of minimums. */
function addRounds(list) {
  const sum = (k) => list.reduce((a, f) => a + f[k], 0);
  const cpu = sum('janusCpuSeconds');
  const seconds = sum('seconds');
  const r3 = (x) => Number(x.toFixed(3));
  return {
    plugin: list[0].plugin,
    rounds: list.length,
    seconds: Number(seconds.toFixed(2)),
    forwardedPackets: sum('forwardedPackets'),
    deliveryMin: Math.min(...list.map((f) => f.deliveryMin)),
    deliveryMean: Number((sum('deliveryMean') / list.length).toFixed(4)),
    streamsBelow999: sum('streamsBelow999'),
    streams: sum('streams'),
    janusCpuSeconds: Number(cpu.toFixed(2)),
    janusCpuPerSecond: r3(cpu / seconds),
    cpuMicrosPerPacket: Number(((cpu / sum('forwardedPackets')) * 1e6).toFixed(2)),
    janusSentPackets: sum('janusSentPackets'),
    cpuMicrosPerSentPacket: Number(((cpu / sum('janusSentPackets')) * 1e6).toFixed(2)),
    pssKiBPerParticipant: Math.round(sum('pssKiBPerParticipant') / list.length),
    rssKiBPerParticipant: Math.round(sum('rssKiBPerParticipant') / list.length),
    ...generatorRounds(list),
  };
}

async function main() {
  if (!env.netns) {
    throw new Error('media needs the namespace: run bench/group.sh');
  }
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['telehealth', 'videoroom'] : ['videoroom', 'telehealth'];
    for (const plugin of order.filter((p) => args.plugins.split(',').includes(p))) {
      rounds.push(await measureTopology(plugin, TOPOLOGY));
    }
  }
  const [ours, vr] = ['telehealth', 'videoroom'].map((p) => addRounds(rounds.filter((f) => f.plugin === p)));
  const ratio = (a, b) => Number((a / b).toFixed(2));
  const out = {
    date: new Date().toISOString(),
    topology: { publishers: P, receivers: R, perProcess: PER_PROCESS, cameraRatePacketsPerSecond: CAMERA_RATE },
    group: [ours, vr],
    rounds,
    ratios: {
      cpu: ratio(ours.janusCpuSeconds, vr.janusCpuSeconds),
      cpuPerPacket: ratio(ours.cpuMicrosPerPacket, vr.cpuMicrosPerPacket),
      cpuPerSentPacket: ratio(ours.cpuMicrosPerSentPacket, vr.cpuMicrosPerSentPacket),
    },
  };
  const pad = (s, n) => String(s).padEnd(n);
  const mib = (k) => (k / 1024).toFixed(2);
  const lines = [
    `group: ${P} publishing (1 moderator + ${P - 1}, each ~${CAMERA_RATE} packets/s: VP8 ${VIDEO.fps} frames/s of ${VIDEO.deltaPackets} x ${VIDEO.packetSize} bytes + Opus 50/s), ` +
      `${R} receiving every stream (${2 * P} each, receivers in ${Math.ceil(R / PER_PROCESS)} processes), ` +
      `${ROUNDS} x ${WINDOW_MS / 1000} s windows after ${WARMUP_MS / 1000} s warm-ups, Janus restarted before each`,
    `  ${pad('plugin', 12)}${pad('forwarded', 11)}${pad('deliv min', 11)}${pad('deliv mean', 12)}${pad('<0.999', 8)}` +
      `${pad('Janus CPU s', 13)}${pad('CPU/s', 8)}${pad('us/packet', 11)}${pad('PSS/part', 10)}RSS/part (MiB)`,
    ...[ours, vr].map((f) => `  ${pad(f.plugin, 12)}${pad(f.forwardedPackets, 11)}${pad(f.deliveryMin, 11)}` +
      `${pad(f.deliveryMean, 12)}${pad(`${f.streamsBelow999}/${f.streams}`, 8)}${pad(f.janusCpuSeconds, 13)}` +
      `${pad(f.janusCpuPerSecond, 8)}${pad(f.cpuMicrosPerPacket, 11)}${pad(mib(f.pssKiBPerParticipant), 10)}` +
      `${mib(f.rssKiBPerParticipant)}`),
    `  ${generatorLine([ours, vr])}`,
    `group delivery min: telehealth ${ours.deliveryMin}, videoroom ${vr.deliveryMin} (mean ${ours.deliveryMean}, ${vr.deliveryMean}; goal >= 0.999 every receiver and stream)`,
    `group CPU, telehealth / videoroom: ${out.ratios.cpuPerPacket} per forwarded packet (${out.ratios.cpu} in Janus CPU seconds; ` +
      `${out.ratios.cpuPerSentPacket} per packet Janus sent, received or dropped at the generator's sockets: ` +
      `${ours.cpuMicrosPerSentPacket} and ${vr.cpuMicrosPerSentPacket} us)`,
    `group memory per participant: telehealth ${mib(ours.pssKiBPerParticipant)} MiB, videoroom ${mib(vr.pssKiBPerParticipant)} MiB ` +
      `(growth of Janus' PSS from the idle restarted process to the end of the window, / ${P + R} participants; ` +
      `RSS ${mib(ours.rssKiBPerParticipant)}, ${mib(vr.rssKiBPerParticipant)} MiB)`,
  ];
  console.log(lines.join('\n'));
  if (args.json) {
    writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
  }
}

await withTimeout(main(), 40 * 60_000, 'the group benchmark');
process.exit(0);
