// How many werift subscribers one Node process keeps fed: one synthetic
// publisher in the stock VideoRoom (publisher.mjs, a process of its own, so
// that its rate does not sag with this one's load), subscribers added in
// steps; at each step every subscriber's audio and video packet rates are
// measured over a window, with Node's event-loop delay and the CPU of Node
// and of Janus.
//
//   scripts/media-tests.sh run node tests/media/bench/subscribers.mjs \
//       [--steps 10,25,50,100,150,200] [--window-ms 5000] [--batch 10]
//
// A subscriber is "fed" when it receives at least 90 % of the packets the
// publisher sent in the window (audio and video each).  Subscribers share
// one Janus session (HTTP long poll); they are set up `batch` at a time.  The run stops after
// the first step where fewer than 95 % of subscribers are fed, or after the
// last step.  Prints one JSON line per step and a table at the end.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';

import { JanusSession, MediaPeer, env, sleep, withTimeout } from '../lib/index.mjs';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '10,25,50,100,150,200' },
    'window-ms': { type: 'string', default: '5000' },
    batch: { type: 'string', default: '10' },
    'janus-pid': { type: 'string', default: '' },
  },
});
const steps = args.steps.split(',').map(Number);
const windowMs = Number(args['window-ms']);
const batch = Number(args.batch);
const FED_RATIO = 0.9;
const STEP_OK_RATIO = 0.95;
const SUBSCRIBE_TIMEOUT_MS = 20_000;

function janusPid() {
  if (args['janus-pid']) {
    return Number(args['janus-pid']);
  }
  try {
    return Number(readFileSync(`${process.env.TH_RUN}/janus/janus.pid`, 'utf8').trim());
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) of a process, from /proc. */
function procCpuSeconds(pid) {
  if (!pid) {
    return NaN;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime at 100 Hz
}

/**
 * Starts publisher.mjs for `room`; resolves when it publishes, with its feed
 * id, the latest counts it reported, and a stop function (ends it by pid).
 */
async function startPublisher(room) {
  const child = spawn(process.execPath, [new URL('./publisher.mjs', import.meta.url).pathname, String(room)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const publisher = {
    sent: { audio: 0, video: 0 },
    stop: () => {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      return new Promise((resolve) => child.on('exit', () => resolve(clearTimeout(killer))));
    },
  };
  const ready = new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`publisher exited (${code})`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      if (msg.id) {
        publisher.id = msg.id;
        resolve();
      } else {
        publisher.sent = msg;
      }
    });
  });
  try {
    await withTimeout(ready, 20_000, 'the publisher');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return publisher;
}

async function subscribe(session, room, feed, name) {
  const peer = new MediaPeer({ name });
  const handle = await session.attach('janus.plugin.videoroom');
  const { jsep } = await handle.request({ request: 'join', ptype: 'subscriber', room, streams: [{ feed }] });
  await handle.request({ request: 'start' }, await peer.answer(jsep));
  await peer.waitConnected(SUBSCRIBE_TIMEOUT_MS);
  return peer;
}

async function measure(publisher, subscribers) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const pid = janusPid();
  const before = subscribers.map((s) => ({ audio: s.packets('audio'), video: s.packets('video') }));
  const sent0 = { ...publisher.sent };
  const cpu0 = process.cpuUsage();
  const janus0 = procCpuSeconds(pid);
  const t0 = performance.now();
  loop.enable();
  await sleep(windowMs);
  loop.disable();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const janusCpu = procCpuSeconds(pid) - janus0;
  const sent1 = { ...publisher.sent };
  const sent = { audio: sent1.audio - sent0.audio, video: sent1.video - sent0.video };

  let fed = 0;
  let minRatio = Infinity;
  subscribers.forEach((s, i) => {
    const audio = (s.packets('audio') - before[i].audio) / sent.audio;
    const video = (s.packets('video') - before[i].video) / sent.video;
    minRatio = Math.min(minRatio, audio, video);
    if (audio >= FED_RATIO && video >= FED_RATIO) {
      fed++;
    }
  });
  return {
    subscribers: subscribers.length,
    fed,
    minRatio: Number(minRatio.toFixed(3)),
    sentPps: Math.round((sent.audio + sent.video) / seconds),
    receivedPps: Math.round(
      subscribers.reduce((sum, s, i) => sum + s.packets() - before[i].audio - before[i].video, 0) / seconds,
    ),
    nodeCpu: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
    janusCpu: Number((janusCpu / seconds).toFixed(2)),
    loopDelayP99Ms: Number((loop.percentile(99) / 1e6).toFixed(1)),
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}

async function main() {
  const session = await JanusSession.create(env.janusHttp, { requestTimeoutMs: 30_000 });
  const admin = await session.attach('janus.plugin.videoroom');
  const room = randomInt(1, 2 ** 31);
  await admin.request({ request: 'create', room, publishers: 1, audiocodec: 'opus', videocodec: 'vp8' });
  const publisher = await startPublisher(room);
  const id = publisher.id;

  const subscribers = [];
  const results = [];
  let setupFailures = 0;
  for (const target of steps) {
    const t0 = performance.now();
    while (subscribers.length < target) {
      const n = Math.min(batch, target - subscribers.length);
      const made = await Promise.allSettled(
        Array.from({ length: n }, (_, i) =>
          withTimeout(
            subscribe(session, room, id, `sub-${subscribers.length + i}`),
            SUBSCRIBE_TIMEOUT_MS,
            'subscribe',
          ),
        ),
      );
      for (const r of made) {
        if (r.status === 'fulfilled') {
          subscribers.push(r.value);
        } else {
          setupFailures++;
          console.error(`subscribe failed: ${r.reason.message}`);
        }
      }
      if (setupFailures > 10) {
        throw new Error('too many subscribe failures');
      }
    }
    const setupMs = Math.round(performance.now() - t0);
    await sleep(1000); // let the newest ones get their keyframe and settle
    const result = { ...(await measure(publisher, subscribers)), setupMs };
    results.push(result);
    console.log(JSON.stringify(result));
    if (result.fed < STEP_OK_RATIO * result.subscribers) {
      break;
    }
  }

  console.table(results);
  await Promise.all(subscribers.map((s) => s.close()));
  await publisher.stop();
  await admin.request({ request: 'destroy', room }).catch(() => {});
  await session.destroy();
}

await withTimeout(main(), 15 * 60_000, 'the subscriber benchmark');
process.exit(0);
