// Receivers of bench/group.mjs in a process of their own: several such
// processes share the receiving (werift decrypts every packet in
// JavaScript), and each reports its own CPU and event-loop delay, so that
// the benchmark can tell whether the load generator kept up.
//
// One JSON object a line on stdin, one answer a line on stdout:
//   {"cmd": "setup", "plugin": "telehealth", "room": "<room>",
//    "invite": "<the session's link>", "count": 10, "batch": 5,
//    "prefix": "receiver 0."}   (each receiver a guest of the link)
//   {"cmd": "setup", "plugin": "videoroom", "room": 123, "feeds": [1, 2],
//    "count": 10, "batch": 5}
//       -> {"ready": n}   every receiver subscribed to every feed, connected
//   {"cmd": "mark"}    -> {"marked": true}  counters restart (a window opens)
//   {"cmd": "report"}  -> {"receivers": [{"name", "streams": {"<publisher>/<kind>":
//                          {"unique", "duplicates"}}}], "cpuSeconds",
//                          "seconds", "eventLoopP99Ms", "eventLoopMaxMs"}
//   {"cmd": "close"}   -> {"closed": true}, then the process ends
// Ends also when stdin closes, and after 30 minutes at most.

import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { JanusSession, MediaPeer, env, withTimeout } from '../tests/media/lib/index.mjs';
import { Member } from '../tests/media/lib/telehealth.mjs';
import { VIDEOROOM, guestJoin, inBatches } from './lib.mjs';

const send = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

/**
 * Distinct RTP sequence numbers received on one stream since the last
 * reset (a retransmission of a packet already seen is a duplicate, not
 * a delivery); good for windows of fewer than 65,536 packets.
 */
class Distinct {
  constructor() {
    this.reset();
  }

  reset() {
    this.seen = new Uint8Array(8192);
    this.unique = 0;
    this.duplicates = 0;
  }

  count(seq) {
    const byte = seq >> 3;
    const bit = 1 << (seq & 7);
    if (this.seen[byte] & bit) {
      this.duplicates++;
    } else {
      this.seen[byte] |= bit;
      this.unique++;
    }
  }
}

/**
 * One receiver: its peer, a Distinct per mid, mid -> "<publisher>/<kind>".
 * Made once the peer has answered (its per-mid counters exist then; what
 * arrives before a window opens is not counted anyway).
 */
class Receiver {
  constructor(name, peer) {
    this.name = name;
    this.peer = peer;
    this.byMid = new Map();
    this.keys = new Map();
    for (const counter of peer.counters.values()) {
      const d = this.#distinct(counter.mid);
      const count = counter.count.bind(counter);
      counter.count = (rtp) => {
        count(rtp);
        d.count(rtp.header.sequenceNumber);
      };
    }
  }

  #distinct(mid) {
    let d = this.byMid.get(mid);
    if (!d) {
      d = new Distinct();
      this.byMid.set(mid, d);
    }
    return d;
  }

  report() {
    const streams = {};
    for (const [mid, key] of this.keys) {
      const d = this.byMid.get(mid);
      streams[key] = { unique: d?.unique ?? 0, duplicates: d?.duplicates ?? 0 };
    }
    return { name: this.name, streams, packetsSinceStart: this.peer.packets(), state: this.peer.pc.connectionState };
  }
}

const receivers = [];
const closers = [];

async function setupTelehealth({ room, invite, count, batch, prefix }) {
  const t = { after: (fn) => closers.push(fn) };
  return inBatches(count, batch, async (i) => {
    const { credential } = await guestJoin(invite, `${prefix}${i}`);
    const m = await Member.join(t, { id: room }, { credential });
    const data = await m.subscribe();
    const r = new Receiver(m.id, m.subPeer);
    for (const s of data.streams ?? []) {
      if (s.active) {
        r.keys.set(s.mid, `${s.participant}/${s.type}`);
      }
    }
    await m.subPeer.waitConnected(30_000);
    return r;
  }, 'receiver');
}

async function setupVideoRoom({ room, feeds, count, batch, prefix }) {
  return inBatches(count, batch, async (i) => {
    const s = await JanusSession.create(env.janusHttp, { requestTimeoutMs: 30_000 });
    const peer = new MediaPeer({ name: `vr-recv-${i}` });
    closers.push(async () => { await peer.close(); await s.destroy(); });
    const h = await s.attach(VIDEOROOM);
    const { data, jsep } = await h.request({ request: 'join', ptype: 'subscriber', room,
      streams: feeds.map((feed) => ({ feed })) });
    const answer = await peer.answer(jsep);
    const r = new Receiver(`${prefix}${i}`, peer);
    for (const st of data.streams ?? []) {
      if (st.active !== false && st.feed_id !== undefined) {
        r.keys.set(st.mid, `${st.feed_id}/${st.type}`);
      }
    }
    await h.request({ request: 'start' }, answer);
    await peer.waitConnected(30_000);
    return r;
  }, 'receiver');
}

const loop = monitorEventLoopDelay({ resolution: 10 });
let cpu0 = process.cpuUsage();
let t0 = performance.now();

async function handle(msg) {
  switch (msg.cmd) {
  case 'setup':
    receivers.push(...(msg.plugin === 'telehealth' ? await setupTelehealth(msg) : await setupVideoRoom(msg)));
    return { ready: receivers.length };
  case 'mark':
    for (const r of receivers) {
      for (const d of r.byMid.values()) {
        d.reset();
      }
    }
    loop.reset();
    loop.enable();
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    return { marked: true };
  case 'report': {
    const c = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    loop.disable();
    return {
      receivers: receivers.map((r) => r.report()),
      cpuSeconds: (c.user + c.system) / 1e6,
      seconds,
      eventLoopP99Ms: loop.percentile(99) / 1e6,
      eventLoopMaxMs: loop.max / 1e6,
    };
  }
  case 'close':
    await Promise.allSettled(closers.map((fn) => fn()));
    return { closed: true };
  default:
    throw new Error(`unknown command ${msg.cmd}`);
  }
}

let ended;
const done = new Promise((resolve) => (ended = resolve));
const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  const msg = JSON.parse(line);
  try {
    send(await handle(msg));
  } catch (err) {
    send({ error: err.message });
  }
  if (msg.cmd === 'close') {
    ended();
  }
});
lines.on('close', () => ended());
await withTimeout(done, 30 * 60_000, 'receivers lifetime').catch(() => {});
await Promise.allSettled(closers.map((fn) => fn()));
process.exit(0);
