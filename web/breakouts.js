/*
 * Breakout rooms of a `group` session (docs/plugin.md, "Breakout rooms"):
 * what everyone reads about the room they are in, and for a chair the
 * breakout rooms the page knows of, to group the participants list by
 * room (room.js) and to move people between rooms.
 *
 * The chair's commands are the plugin's own requests on the join handle
 * (`breakout_create`, `breakout_move`, `breakout_close`, sent through
 * TelehealthCall.moderate()), not the REST endpoints
 * (POST /sessions/{id}/breakouts ...): the chair is in the room already,
 * the plugin answers on that handle at once (the new room's name, or a
 * refusal such as 474 "No such breakout room", shown like the other
 * moderation errors), and the page needs neither the session id nor an
 * access token for it; the REST commands answer 202 and report their
 * result only on the event stream, which this page does not read.  Both
 * are audited the same way (the room's chair.action).
 *
 * The plugin tells nobody which breakout rooms exist, except the chair
 * who creates one (the answer's `breakouts`); everyone's participants list
 * carries each person's `breakout`.  So a chair's page knows the rooms it
 * created and those someone is in; an empty room created by another chair
 * shows once someone is moved into it.
 */
"use strict";

/* "breakout-2" (the plugin's names) -> "breakout room 2". */
function breakoutName(breakout) {
    if (!breakout) return "the main room";
    const n = /^breakout-(\d+)$/.exec(breakout);
    return n ? "breakout room " + n[1] : "breakout room " + breakout
        .replace(/^breakout-/, "");
}

/* A room's title in a list: "Main room", "Breakout room 2". */
function roomTitle(breakout) {
    return breakout ? capitalised(breakoutName(breakout)) : "Main room";
}

function capitalised(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
}

/* What a moved person reads (the plugin's `moved` event). */
function movedText(breakout) {
    return breakout ? "You are in " + breakoutName(breakout) + "."
        : "You are back in the main room.";
}

/* The call's heading: "Video call", "Video call: Breakout room 2". */
function callHeading(breakout) {
    return "Video call" + (breakout ? ": " + roomTitle(breakout) : "");
}

class Breakouts {
    constructor() {
        this.known = [];        /* breakout names, in order of creation */
    }

    clear() {
        this.known = [];
    }

    /* A chair's create answer lists every open one. */
    setOpen(list) {
        this.known = [...list];
    }

    /* Rooms someone is in, which this page did not create. */
    learn(participants) {
        for (const p of participants || []) {
            if (p.breakout && !this.known.includes(p.breakout)) {
                this.known.push(p.breakout);
            }
        }
    }

    forget(breakout) {
        this.known = this.known.filter((b) => b !== breakout);
    }

    /* [null (the main room), "breakout-1", ...] */
    rooms() {
        return [null, ...this.known];
    }

    inUse() {
        return this.known.length > 0;
    }
}

window.Breakouts = Breakouts;
