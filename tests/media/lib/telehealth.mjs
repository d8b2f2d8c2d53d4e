// Helpers for media tests of janus.plugin.telehealth: rooms opened in Redis
// the way nginx opens them, join credentials minted with the stack's key,
// and a Member: one person in a room with a join handle (and an optional
// publishing PeerConnection) and a subscriber handle whose PeerConnection
// receives every other participant's streams, answering the plugin's
// renegotiations by itself.
//
//   const room = await openRoom({ kind: 'group' });
//   const chair = await Member.join(t, room, { role: 'chair', publish: true });
//   await chair.subscribe();      // a token from the join handle, spent
//   await waitForGrowth(() => chair.packetsFrom(other.id, 'video'), { min: 60 });
//
// Every wait is bounded; every Member closes with t.after.

import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { env } from './env.mjs';
import { JanusSession } from './janus.mjs';
import { MediaPeer } from './peer.mjs';

const execFileP = promisify(execFile);

export const PLUGIN = 'janus.plugin.telehealth';
const PREFIX = 'th:';

/** redis-cli against the stack's Redis (5 s bound). */
export async function redis(...args) {
  const { stdout } = await execFileP(
    'redis-cli',
    ['-h', '127.0.0.1', '-p', String(env.redisPort), '--raw', ...args],
    { timeout: 5000 },
  );
  return stdout.replace(/\n$/, '');
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * A join credential's JWT signed as the nginx module signs (docs/api.md):
 * ES256 with a join key (j1.pem), the signature as JOSE's r || s.
 */
export function mintToken(claims, kid = 'j1') {
  const header = { alg: 'ES256', typ: 'JWT', kid };
  const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = fs.readFileSync(path.join(env.keys, `${kid}.pem`));
  const sig = crypto.sign('sha256', Buffer.from(signing), { key, dsaEncoding: 'ieee-p1363' });
  return `${signing}.${b64url(sig)}`;
}

/** A join credential for one person in a room (claims as docs/api.md). */
export function joinCredential(room, person) {
  const now = Math.floor(Date.now() / 1000);
  return mintToken({
    iss: 'telehealth',
    aud: PLUGIN,
    sub: person.id,
    room: room.id,
    session: room.session,
    org: room.org,
    kind: room.kind,
    role: person.role,
    name: person.name,
    jti: b64url(crypto.randomBytes(16)),
    iat: now,
    exp: now + 60,
  });
}

/** The leave_policy nginx writes for a kind (its preset in session_kinds). */
const LEAVE_POLICY = {
  video_call: 'close_on_staff_leave',
  virtual_visit: 'caregiver_hangup_ends',
};

/**
 * Opens a room as nginx does (docs/redis.md): the room hash with state
 * open and the kind's leave_policy.  `fields` adds or overrides hash
 * fields (e.g. { bitrate: 256000 }).
 */
export async function openRoom({ kind = 'group', patient = null, fields = {} } = {}) {
  const room = {
    id: `mt-${crypto.randomBytes(6).toString('hex')}`,
    session: crypto.randomUUID(),
    org: crypto.randomUUID(),
    kind,
    patient,
  };
  const hash = {
    session: room.session,
    org: room.org,
    kind,
    state: 'open',
    created_by: crypto.randomUUID(),
    created_at: String(Date.now()),
    leave_policy: LEAVE_POLICY[kind] ?? 'stay',
    ...(patient ? { patient } : {}),
    ...fields,
  };
  await redis('HSET', `${PREFIX}room:${room.id}`, ...Object.entries(hash).flat());
  await redis('EXPIRE', `${PREFIX}room:${room.id}`, '300');
  return room;
}

/** A person: "staff:<uuid>" or "patient:<uuid>" with a role. */
export function person(type, role, name) {
  return { id: `${type}:${crypto.randomUUID()}`, role, name: name ?? `${type} ${role}` };
}

/** The person a join credential names (its claims, not verified here). */
export function credentialPerson(credential) {
  const claims = JSON.parse(Buffer.from(credential.split('.')[1], 'base64url').toString());
  return { id: claims.sub, role: claims.role, name: claims.name };
}

const isEvent = (name) => (e) => e.janus === 'event' && e.plugindata?.data?.telehealth === name;

/** One participant: join handle, optional publisher peer, subscriber handle and peer. */
export class Member {
  constructor(room, who, session, handle) {
    this.room = room;
    this.id = who.id;
    this.role = who.role;
    this.name = who.name;
    this.who = who;
    this.session = session;
    this.handle = handle;
    this.publisher = null;
    this.subHandle = null;
    this.subPeer = null;
    /** mid -> { participant, type, description, active } of the subscriber PC */
    this.streams = new Map();
    this.offers = 0; // offers answered on the subscriber handle
    this.updates = []; // "updated" events, in order
    this.closedSub = null; // "unsubscribed" event, once
    this.stopped = false;
  }

  /**
   * Joins the room; with publish: true also publishes audio and video.
   * janus: another node's HTTP URL (lib/node.mjs); who: the same person
   * again (a rejoin) instead of a new one; credential: a join credential
   * from the API (the person is its subject) instead of one minted here.
   */
  static async join(t, room, { type, role, name, publish = false, janus = env.janusHttp, who: again, credential } = {}) {
    const who = credential
      ? credentialPerson(credential)
      : again ?? person(type ?? (role === 'chair' ? 'staff' : 'patient'), role, name);
    const session = await JanusSession.create(janus);
    const handle = await session.attach(PLUGIN);
    const member = new Member(room, who, session, handle);
    t.after(() => member.close());
    member.credential = credential ?? joinCredential(room, who);
    const { data } = await handle.request({ request: 'join', credential: member.credential });
    if (data.telehealth !== 'joined') {
      throw new Error(`${who.id}: join answered ${JSON.stringify(data)}`);
    }
    if (publish) {
      await member.publish();
    }
    return member;
  }

  /** Publishes synthetic Opus + VP8 (Opus alone with video: false). */
  async publish({ video = true } = {}) {
    const peer = new MediaPeer({ name: `${this.role}-pub`, audio: true, video, direction: 'sendonly' });
    this.publisher = peer;
    const offer = await peer.createOffer();
    const { data, jsep } = await this.handle.request({ request: 'publish' }, offer);
    await peer.acceptAnswer(jsep);
    peer.startMedia();
    await peer.waitConnected();
    return data;
  }

  /** A one-time subscription token from the join handle (docs/plugin.md). */
  async subscribeToken() {
    const { data } = await this.handle.request({ request: 'subscribe_token' });
    if (data.telehealth !== 'subscribe_token' || typeof data.token !== 'string') {
      throw new Error(`subscribe_token answered ${JSON.stringify(data)}`);
    }
    return data.token;
  }

  /**
   * Attaches the subscriber handle and keeps answering offers until closed;
   * it spends a token the join handle asked for.
   */
  async subscribe() {
    const token = await this.subscribeToken();
    this.subHandle = await this.session.attach(PLUGIN);
    this.subPeer = new MediaPeer({ name: `${this.id}-sub` });
    const { data, jsep } = await this.subHandle.request({ request: 'subscribe', token });
    this.#applyStreams(data.streams);
    if (jsep) {
      await this.#answer(jsep);
    }
    this.loop = this.#renegotiations();
    return data;
  }

  #applyStreams(streams) {
    for (const s of streams ?? []) {
      this.streams.set(s.mid, s);
    }
  }

  async #answer(jsep) {
    const answer = await this.subPeer.answer(jsep);
    const { data } = await this.subHandle.request({ request: 'start' }, answer);
    if (data.telehealth !== 'started') {
      throw new Error(`start answered ${JSON.stringify(data)}`);
    }
    this.offers++;
  }

  async #renegotiations() {
    while (!this.stopped) {
      let ev;
      try {
        ev = await this.subHandle.waitForEvent(
          (e) => e.janus === 'event' && ['updated', 'unsubscribed'].includes(e.plugindata?.data?.telehealth),
          1000,
          'a renegotiation',
        );
      } catch (err) {
        if (this.stopped || !/timed out/.test(err.message)) {
          return;
        }
        continue;
      }
      const data = ev.plugindata.data;
      if (data.telehealth === 'unsubscribed') {
        this.closedSub = data;
        return;
      }
      this.updates.push(data);
      this.#applyStreams(data.streams);
      if (ev.jsep) {
        try {
          await this.#answer(ev.jsep);
        } catch (err) {
          // The subscription may end meanwhile (room closed): keep
          // listening for "unsubscribed"; tests look at this error.
          this.renegotiationError = err;
        }
      }
    }
  }

  /** Mids of the subscriber PC that carry a participant's streams of a kind. */
  midsOf(participantId, type) {
    return [...this.streams.values()]
      .filter((s) => s.active && s.participant === participantId && (!type || s.type === type))
      .map((s) => s.mid);
  }

  /** Packets received from one participant (of one kind) on the subscriber PC. */
  packetsFrom(participantId, type, mids = this.midsOf(participantId, type)) {
    let sum = 0;
    for (const mid of mids) {
      sum += this.subPeer?.counters.get(mid)?.packets ?? 0;
    }
    return sum;
  }

  /** Total packets received on the subscriber PC. */
  packets(kind) {
    return this.subPeer ? this.subPeer.packets(kind) : 0;
  }

  waitEvent(name, timeoutMs = 10_000) {
    return this.handle.waitForEvent(isEvent(name), timeoutMs, `telehealth ${name}`);
  }

  async close() {
    if (this.stopped) {
      return;
    }
    this.stopped = true;
    await this.publisher?.close().catch(() => {});
    await this.subPeer?.close().catch(() => {});
    await this.session.destroy().catch(() => {});
    await this.loop?.catch(() => {});
  }
}
