/*
 * The console's waiting room: who waits to be let in, across every open
 * session the staff member is on.  Kept current from the console's events
 * (docs/api.md, "Console events": waiting, joined, left, closed) and
 * refreshed from the API (GET /sessions?state=open, then
 * GET /sessions/{id}/participants for each, whose "waiting" list is the
 * room's waiting room).  No framework: console.js owns the page and calls
 * in here.
 */
"use strict";

class WaitingRoom {
    /*
     * opts.api(method, path)   the console's API client (a Promise)
     * opts.me()                the signed-in staff member (GET /me)
     * opts.onChange()          after every change of the list
     */
    constructor(opts) {
        this.api = opts.api;
        this.me = opts.me;
        this.onChange = opts.onChange || (() => {});
        this.sessions = new Map();  /* session id -> session object */
        this.entries = new Map();   /* "session|participant" -> entry */
        this.names = new Map();     /* participant id -> display name */
        this.busy = null;           /* the refresh under way */
        this.again = false;         /* another refresh asked meanwhile */
        this.timer = null;
    }

    clear() {
        clearTimeout(this.timer);
        this.timer = null;
        this.sessions.clear();
        this.entries.clear();
        this.onChange();
    }

    /* Who waits, longest first. */
    list() {
        return [...this.entries.values()]
            .sort((a, b) => a.since - b.since
                || a.participant.localeCompare(b.participant));
    }

    /* Whoever has waited longest in a session this staff member chairs. */
    next() {
        return this.list().find((e) => this.isChair(e.sessionId)) || null;
    }

    isChair(sessionId) {
        const s = this.sessions.get(sessionId);
        const me = this.me();
        if (!s || !me) return false;
        return (s.participants || []).some((p) => p.type === "staff"
            && p.id === me.id && p.role === "chair");
    }

    session(sessionId) {
        return this.sessions.get(sessionId) || null;
    }

    /* A display name seen for a participant id, else null. */
    nameOf(participant) {
        return this.names.get(participant) || null;
    }

    /*
     * A console event.  "waiting" adds the person at once (the event's
     * time is their arrival); the refresh that follows brings the name a
     * patient's or guest's event does not carry.  Returns true when
     * someone new arrived.
     */
    onEvent(type, data) {
        if (!data || !data.session_id) return false;
        const who = data.who && data.who.participant;
        let arrived = false;
        if (type === "waiting" && who) {
            const key = data.session_id + "|" + who;
            if (!this.entries.has(key)) {
                if (data.who.name) this.names.set(who, data.who.name);
                this.entries.set(key, {
                    key, sessionId: data.session_id, participant: who,
                    role: data.who.role || "",
                    display: this.names.get(who) || fallbackName(who),
                    since: Date.parse(data.at) || Date.now(),
                    sessionName: data.session_name || "",
                    heard: Date.now(),
                });
                arrived = true;
            }
        } else if ((type === "joined" || type === "left") && who) {
            this.entries.delete(data.session_id + "|" + who);
        } else if (type === "closed") {
            this.sessions.delete(data.session_id);
            for (const [key, e] of this.entries) {
                if (e.sessionId === data.session_id) this.entries.delete(key);
            }
        } else {
            return false;
        }
        this.onChange();
        this.soon();
        return arrived;
    }

    /* A refresh shortly, once for a burst of events. */
    soon() {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => {
            this.timer = null;
            this.refresh().catch(() => {});
        }, 300);
    }

    /*
     * The open sessions this staff member is on, and who waits in each.
     * Someone already listed keeps their arrival time; someone first seen
     * here arrived "now" as far as this page knows.
     */
    async refresh() {
        if (this.busy) {
            this.again = true;
            return this.busy;
        }
        this.busy = this.load().finally(() => {
            this.busy = null;
            if (this.again) {
                this.again = false;
                this.refresh().catch(() => {});
            }
        });
        return this.busy;
    }

    async load() {
        const started = Date.now();
        const open = await this.api("GET", "/sessions?state=open&limit=200");
        const rooms = await Promise.all(open.items.map((s) =>
            this.api("GET", "/sessions/" + s.id + "/participants")
                .then((r) => [s, r], () => [s, null])));
        const entries = new Map();
        const sessions = new Map();
        const now = Date.now();
        for (const [s, room] of rooms) {
            sessions.set(s.id, s);
            if (!room) {
                /* not answered this time: keep what is known */
                for (const e of this.entries.values()) {
                    if (e.sessionId === s.id) entries.set(e.key, e);
                }
                continue;
            }
            for (const p of room.participants || []) {
                if (p.display) this.names.set(p.participant, p.display);
            }
            for (const w of room.waiting || []) {
                if (w.display) this.names.set(w.participant, w.display);
                const key = s.id + "|" + w.participant;
                const known = this.entries.get(key);
                entries.set(key, {
                    key, sessionId: s.id, participant: w.participant,
                    role: w.role || "",
                    display: w.display || fallbackName(w.participant),
                    since: known ? known.since : now,
                    sessionName: s.name || "",
                });
            }
        }
        /* heard while this answer was on its way: the next refresh says */
        for (const e of this.entries.values()) {
            if (e.heard >= started && !entries.has(e.key)) {
                entries.set(e.key, e);
            }
        }
        this.sessions = sessions;
        this.entries = entries;
        this.onChange();
    }
}

/* A name for someone whose display name is not known yet. */
function fallbackName(participant) {
    const type = String(participant).split(":")[0];
    if (type === "patient") return "The patient";
    if (type === "guest") return "A guest";
    return "A colleague";
}

/* "10:42 (5 min)": when someone arrived, and how long ago. */
function waitedText(since, now) {
    const at = new Date(since).toLocaleTimeString([], { timeStyle: "short" });
    const minutes = Math.max(0, Math.floor(((now || Date.now()) - since)
        / 60000));
    return at + " (" + (minutes < 1 ? "just now" : minutes + " min") + ")";
}
