/*
 * What the console (index.html) and the guest page (join.html) share
 * around a TelehealthCall (call.js): the address of Janus' WebSocket and
 * the participants list.  For a chair the list carries the moderation of
 * docs/plugin.md, "Room semantics": the waiting room (admit, admit all,
 * turn away) and, for everyone else in the room, mute, role and remove;
 * in a `group`, its breakout rooms (breakouts.js): the list grouped by
 * room, a room select per person, "New breakout room" and "Close".
 */
"use strict";

/* The grant names Janus' WebSocket: a path on this server, or a URL. */
function janusServer(path) {
    /* a node's public URL (the join answer's janus_url), else a path here */
    if (path && /^(wss?|https?):\/\//.test(path)) return path;
    return (location.protocol === "https:" ? "wss://" : "ws://")
        + location.host + (path || "/janus");
}

const ROLES = ["chair", "broadcaster", "viewer"];

class ParticipantList {
    /*
     * list: the <ul> of the people in the room; waiting: an element with a
     * <ul> for the waiting room and an "Admit all" button (a page whose
     * people are never chairs passes null); breakoutBar: an element with
     * a "New breakout room" button, shown to a group's chairs (or null).
     */
    constructor(list, waiting, breakoutBar) {
        this.list = list;
        this.waiting = waiting;
        this.breakoutBar = breakoutBar || null;
        this.breakouts = new Breakouts();
        this.closing = null;        /* the breakout room asked to close */
        this.call = null;
        this.participants = [];
        if (waiting) {
            const all = waiting.querySelector("button.admit-all");
            all.dataset.key = "admit_all";
            all.onclick = () => this.call && this.call.moderate("admit_all");
        }
        if (this.breakoutBar) {
            const create = this.breakoutBar.querySelector("button");
            create.dataset.key = "breakout_create";
            create.onclick = () => this.call
                && this.call.moderate("breakout_create");
        }
    }

    /* A chair's request went through (TelehealthCall "answered"). */
    answered(msg) {
        if (msg.request === "breakout_create" && msg.breakout) {
            this.breakouts.setOpen(msg.breakouts || [msg.breakout]);
            this.render(this.call, this.participants);
            if (this.call) {
                this.call.emit("status", capitalised(
                    breakoutName(msg.breakout)) + " is open.");
            }
        } else if (msg.request === "breakout_close" && this.closing) {
            /* the answer names no room: the one this page asked to close,
             * in case a list that still had people in it came in between */
            this.breakouts.forget(this.closing);
            this.closing = null;
            this.render(this.call, this.participants);
        }
    }

    /* Whether this page runs a group's breakout rooms (its chairs). */
    runsBreakouts(call) {
        return !!call && call.role === "chair" && call.kind === "group"
            && !!this.breakoutBar;
    }

    nameOf(id) {
        const p = this.participants.find((x) => x.id === id);
        return p ? p.display : "Someone";
    }

    get(id) {
        return this.participants.find((x) => x.id === id);
    }

    render(call, participants) {
        this.call = call;
        this.participants = participants || [];
        const chair = !!call && call.role === "chair";
        const breakouts = this.runsBreakouts(call);
        if (!call) this.breakouts.clear();
        if (breakouts) this.breakouts.learn(this.participants);
        if (this.breakoutBar) this.breakoutBar.hidden = !breakouts;
        const grouped = breakouts && this.breakouts.inUse();
        const mine = call ? call.breakout || null : null;
        /* a re-render keeps the focus on the same control */
        const focused = document.activeElement
            && document.activeElement.dataset.key;
        const rows = [];
        const waiting = [];
        for (const p of this.participants) {
            const li = document.createElement("li");
            li.dataset.participant = p.id;
            const role = document.createElement("span");
            role.className = "tag";
            role.textContent = p.role;
            const self = call && p.id === call.selfId;
            const room = p.breakout || null;
            /* outside the grouped list: say who is in another room */
            const where = !grouped && room !== mine && p.state !== "waiting"
                ? " in " + breakoutName(room) : "";
            li.append(p.display + (self ? " (you)" : "") + " ", role,
                flagsText(p) + where);
            if (p.state === "waiting" && this.waiting) {
                if (chair) li.append(this.waitingControls(p));
                waiting.push(li);
            } else {
                if (chair && !self) li.append(this.memberControls(p));
                if (breakouts) li.append(this.roomSelect(p, self));
                li.dataset.breakout = room || "";
                rows.push(li);
            }
        }
        this.list.replaceChildren(...(grouped ? this.byRoom(rows) : rows));
        if (this.waiting) {
            this.waiting.querySelector("ul").replaceChildren(...waiting);
            this.waiting.hidden = waiting.length === 0;
        }
        const again = focused && document.querySelector(
            "[data-key=\"" + CSS.escape(focused) + "\"]");
        if (again) again.focus();
    }

    /* The rows under a heading per room: the main room, then each
     * breakout room with its "Close" button. */
    byRoom(rows) {
        const out = [];
        for (const room of this.breakouts.rooms()) {
            const members = rows.filter((li) =>
                (li.dataset.breakout || null) === room);
            const head = document.createElement("li");
            head.className = "room-heading";
            head.dataset.room = room || "";
            const title = document.createElement("strong");
            title.textContent = roomTitle(room);
            head.append(title, " (" + members.length + ")");
            if (room) {
                head.append(" ", this.button("Close",
                    "Close " + breakoutName(room), "breakout_close|" + room,
                    () => {
                        this.closing = room;
                        this.breakouts.forget(room);
                        this.call.moderate("breakout_close",
                            { breakout: room });
                    }));
            }
            out.push(head, ...members);
        }
        return out;
    }

    /* Which room a person is in, for a chair to move them (self too). */
    roomSelect(p, self) {
        const select = document.createElement("select");
        select.className = "room-select";
        select.setAttribute("aria-label", "Room of "
            + (self ? "yourself" : p.display));
        select.dataset.key = "breakout|" + p.id;
        for (const room of this.breakouts.rooms()) {
            select.append(new Option(roomTitle(room),
                room || "", false, room === (p.breakout || null)));
        }
        select.onchange = () => this.call.moderate("breakout_move",
            { participant: p.id, breakout: select.value || null });
        const span = document.createElement("span");
        span.className = "actions";
        span.append(select);
        return span;
    }

    button(text, label, key, onclick) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = text;
        b.setAttribute("aria-label", label);
        b.dataset.key = key;
        b.onclick = onclick;
        return b;
    }

    waitingControls(p) {
        const span = document.createElement("span");
        span.className = "actions";
        span.append(
            this.button("Admit", "Admit " + p.display, "admit|" + p.id,
                () => this.call.moderate("admit", { participant: p.id })),
            this.button("Turn away", "Turn away " + p.display,
                "turn_away|" + p.id,
                () => this.call.moderate("turn_away", { participant: p.id })));
        return span;
    }

    memberControls(p) {
        const span = document.createElement("span");
        span.className = "actions";
        const audio = !!p.audio_muted_by_chair;
        const video = !!p.video_muted_by_chair;
        const select = document.createElement("select");
        select.setAttribute("aria-label", "Role of " + p.display);
        select.dataset.key = "role|" + p.id;
        for (const r of ROLES) select.append(new Option(r, r, false, r === p.role));
        select.onchange = () => this.call.moderate("set_role",
            { participant: p.id, role: select.value });
        span.append(
            this.button(audio ? "Unmute" : "Mute",
                (audio ? "Unmute " : "Mute ") + p.display, "audio|" + p.id,
                () => this.call.moderate("mute",
                    { participant: p.id, audio: !audio })),
            this.button(video ? "Allow video" : "Stop video",
                (video ? "Allow video of " : "Stop video of ") + p.display,
                "video|" + p.id,
                () => this.call.moderate("mute",
                    { participant: p.id, video: !video })),
            select,
            this.button("Remove", "Remove " + p.display, "remove|" + p.id,
                () => this.call.moderate("remove", { participant: p.id })));
        return span;
    }
}

/* "waiting", "muted", "video paused": what the others read about someone. */
function flagsText(p) {
    const flags = [];
    if (p.state === "waiting") flags.push("waiting");
    if (p.audio_muted || p.audio_muted_by_chair) flags.push("muted");
    if (p.video_paused || p.video_muted_by_chair) flags.push("video paused");
    return flags.length ? " " + flags.join(", ") : "";
}
