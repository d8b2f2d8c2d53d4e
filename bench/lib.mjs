// What the media benchmarks (media.mjs, group.mjs) share: Janus' CPU and
// memory from /proc, the publishers' packet counts, batched set-up, and a
// room opened the product's way, through the API of the media stack's
// nginx (an organisation's admin, a session started with POST /sessions,
// join credentials from the API).

import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { env, sleep, withTimeout } from '../tests/media/lib/index.mjs';

const execFileP = promisify(execFile);

export const VIDEOROOM = 'janus.plugin.videoroom';
export const SETUP_TIMEOUT_MS = 30_000;

export const log = (...a) => console.error('bench:', ...a);

export function janusPid() {
  const pid = Number(readFileSync(`${process.env.TH_RUN}/janus/janus.pid`, 'utf8').trim());
  if (!pid) {
    throw new Error('no Janus pid (run through bench/media.sh or bench/group.sh)');
  }
  return pid;
}

const CLK_TCK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of a process so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
}

/** A process' resident memory in KiB: { rss, pss } (smaps_rollup). */
export function memoryKiB(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: field('Rss'), pss: field('Pss') };
}

/**
 * UDP datagrams the kernel dropped on the sockets of each process of
 * `pids` (the "drops" column of /proc/net/udp and udp6, this network
 * namespace's): a socket's queue overflowed because its process did not
 * read in time.  Returns { <pid>: drops }.
 */
export function udpDrops(pids) {
  const owner = new Map(); // socket inode -> pid
  for (const pid of pids) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) {
          owner.set(m[1], pid);
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  const drops = Object.fromEntries(pids.map((pid) => [pid, 0]));
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let lines = [];
    try {
      lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      const pid = owner.get(f[9]); // inode
      if (pid !== undefined) {
        drops[pid] += Number(f[12]); // drops
      }
    }
  }
  return drops;
}

/** Janus' CPU with nothing to do, for scale (CPU seconds per second). */
export async function idleCpu(ms = 3000) {
  const pid = janusPid();
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(ms);
  return Number(((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)).toFixed(3));
}

/**
 * Counts the RTP packets a publisher writes, by kind (video frames are
 * several packets).  Returns () => { audio, video }.
 */
export function countSent(peer) {
  const sent = { video: 0 };
  const write = peer.video.track.writeRtp.bind(peer.video.track);
  peer.video.track.writeRtp = (rtp) => {
    sent.video++;
    write(rtp);
  };
  return () => ({ audio: peer.audio.sent, video: sent.video });
}

/** Runs `make` for `count` items, `batch` at a time; all must succeed. */
export async function inBatches(count, batch, make, what = 'item') {
  const made = [];
  while (made.length < count) {
    const n = Math.min(batch, count - made.length);
    const base = made.length;
    made.push(...(await Promise.all(Array.from({ length: n }, (_, i) =>
      withTimeout(make(base + i), SETUP_TIMEOUT_MS, `${what} ${base + i}`)))));
  }
  return made;
}

/**
 * Restarts the stack's Janus (both plugins loaded, as media-tests.sh
 * starts it), so that a measurement starts from a fresh process: its
 * memory figure is not made smaller by a heap the previous one grew.
 */
export async function restartJanus() {
  await execFileP(process.env.TH_STACK, ['start-janus'], {
    env: { ...process.env, TH_WITH_VIDEOROOM: '1', TH_WITH_ECHOTEST: '1' },
    timeout: 60_000,
  });
}

// ---- Rooms through the API ------------------------------------------------

const ADMIN_EMAIL = 'bench-media@bench.test';
const ADMIN_PASSWORD = 'bench-media-password-not-secret';

async function api(method, route, { token, body } = {}) {
  const res = await fetch(`${env.base}/api/v1${route}`, {
    method,
    headers: {
      ...(body ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

let adminToken = null;

/**
 * The benchmark's admin: the first admin of an organisation of its own,
 * made as operators make one (scripts/telehealth-admin), logged in with
 * POST /auth/login.  Once per process.
 */
async function admin() {
  if (adminToken) {
    return adminToken;
  }
  const tool = path.join(process.env.TH_ROOT, 'scripts/telehealth-admin');
  const run = (...a) => new Promise((resolve, reject) => {
    const child = execFile(tool, ['-d', env.pg, '--password-stdin', ...a], { timeout: 30_000 },
      (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve(stdout)));
    child.stdin.end(`${ADMIN_PASSWORD}\n`);
  });
  try {
    await run('create-org', 'Media benchmark', ADMIN_EMAIL, 'Media Bench');
  } catch (err) {
    if (!/already in use/.test(err.stderr ?? '')) {
      throw new Error(`telehealth-admin: ${err.stderr || err.message}`);
    }
    await run('set-password', ADMIN_EMAIL);
  }
  const { access_token: token } = await api('POST', '/auth/login',
    { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
  adminToken = token;
  return token;
}

/**
 * A fresh join credential of a new guest: the invite link `token` redeemed
 * once more (POST /invites/redeem; the answer of POST /sessions/{id}/join).
 */
export function guestJoin(token, name) {
  return api('POST', '/invites/redeem', { body: { token, display_name: name } });
}

/**
 * A `group` session started by the admin (POST /sessions, no waiting room,
 * room for `capacity` people) and a multi-use invite link for its guests.
 * Returns { session, room, invite (the link's token), guest(name) ->
 * Promise<join answer> for the next guest, chair() -> Promise<join answer>
 * for the admin, close() }.
 */
export async function apiGroupRoom({ capacity }) {
  const token = await admin();
  const session = await api('POST', '/sessions', {
    token,
    body: {
      kind: 'group',
      name: 'media benchmark',
      policies: { max_participants: capacity, waiting_room: [] },
    },
  });
  const invite = await api('POST', `/sessions/${session.id}/invites`,
    { token, body: { single_use: false, invitee: { display_name: 'bench guests' } } });
  return {
    session,
    room: session.room,
    invite: invite.token,
    /** A fresh join credential of the session's creator (chair). */
    chair: () => api('POST', `/sessions/${session.id}/join`, { token }),
    /** A fresh join credential of a new guest (the link redeemed once more). */
    guest: (name) => guestJoin(invite.token, name),
    close: () => api('POST', `/sessions/${session.id}/close`, { token }).catch(() => {}),
  };
}
