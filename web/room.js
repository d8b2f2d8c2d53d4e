/*
 * What the console (index.html) and the guest page (join.html) share
 * around a TelehealthCall (call.js): the address of Janus' WebSocket and
 * the participants list.  For a chair the list carries the moderation of
 * docs/plugin.md, "Room semantics": the waiting room (admit, admit all,
 * turn away) and, for everyone else in the room, mute, role and remove.
 */
"use strict";

/* The grant names Janus' WebSocket: a path on this server, or a URL. */
function janusServer(path) {
    if (path && /^wss?:\/\//.test(path)) return path;
    return (location.protocol === "https:" ? "wss://" : "ws://")
        + location.host + (path || "/janus");
}

const ROLES = ["chair", "broadcaster", "viewer"];

class ParticipantList {
    /*
     * list: the <ul> of the people in the room; waiting: an element with a
     * <ul> for the waiting room and an "Admit all" button (a page whose
     * people are never chairs passes null).
     */
    constructor(list, waiting) {
        this.list = list;
        this.waiting = waiting;
        this.call = null;
        this.participants = [];
        if (waiting) {
            const all = waiting.querySelector("button.admit-all");
            all.dataset.key = "admit_all";
            all.onclick = () => this.call && this.call.moderate("admit_all");
        }
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
            li.append(p.display + (self ? " (you)" : "") + " ", role,
                flagsText(p));
            if (p.state === "waiting" && this.waiting) {
                if (chair) li.append(this.waitingControls(p));
                waiting.push(li);
            } else {
                if (chair && !self) li.append(this.memberControls(p));
                rows.push(li);
            }
        }
        this.list.replaceChildren(...rows);
        if (this.waiting) {
            this.waiting.querySelector("ul").replaceChildren(...waiting);
            this.waiting.hidden = waiting.length === 0;
        }
        const again = focused && document.querySelector(
            "[data-key=\"" + CSS.escape(focused) + "\"]");
        if (again) again.focus();
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
