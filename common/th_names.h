/*
 * Names shared by the nginx module and the Janus plugin: Redis keys, event
 * types, credential audiences.  Defined once here, documented once in
 * docs/redis.md.  Both sides must agree on every string in this file.
 */

#ifndef TH_NAMES_H
#define TH_NAMES_H

#define TH_PLUGIN_PACKAGE "janus.plugin.telehealth"

/* Credential audiences ("aud" claim). */
#define TH_AUD_API  "telehealth-api"
#define TH_AUD_JOIN TH_PLUGIN_PACKAGE
#define TH_ISSUER   "telehealth"

/* Default Redis key prefix; configurable on both sides. */
#define TH_REDIS_PREFIX_DEFAULT "th:"

/*
 * Redis keys, as printf formats taking the prefix first.
 *   room hash:      session, org, kind, state, node, patient, chair ...
 *   members hash:   participant id -> JSON {role, state, display, ...}
 *   patient lock:   string holding the room id, set NX, no expiry
 *   banned:         set of participant ids a chair removed (per session)
 *   roles:          hash participant id -> role a chair set (per session)
 *   revoked:        string, TTL = remaining lifetime of the credential
 *   node:           hash with a TTL, heartbeat of one Janus instance
 * The room hash and its members never expire while the room is open
 * (docs/lifecycle.md).
 *   commands:       pub/sub channel of one Janus instance
 *   events:         stream, plugin -> nginx
 */
#define TH_KEY_ROOM           "%sroom:%s"
#define TH_KEY_ROOM_MEMBERS   "%sroom:%s:members"
#define TH_KEY_PATIENT_LOCK   "%spatient:%s:room"
#define TH_KEY_SESSION_BANNED "%ssession:%s:banned"
#define TH_KEY_SESSION_ROLES  "%ssession:%s:roles"
#define TH_KEY_REVOKED        "%srevoked:%s"
#define TH_KEY_REVOCATIONS    "%srevocations%s" /* sorted set and channel */
#define TH_KEY_NODE           "%snode:%s"
#define TH_KEY_NODE_COMMANDS  "%scmd:%s"
#define TH_KEY_EVENTS         "%sevents"
/*
 * Placement (docs/redis.md, "Nodes and placement"): the set of node ids
 * that ever sent a heartbeat (nginx drops those whose heartbeat is gone)
 * and the drain mark of one node (a string, no expiry: the node takes no
 * new rooms while it exists and keeps the calls it hosts).
 */
#define TH_KEY_NODES      "%snodes"
#define TH_KEY_NODE_DRAIN "%sdrain:%s"
/* single-use console ticket by its SHA-256 (nginx only), TTL 30 s */
#define TH_KEY_CONSOLE_TICKET "%sconsole:ticket:%s"
/*
 * Failed attempts of one subject (nginx only): a hash {n: failures,
 * until: ms before which the subject is refused}, forgotten one
 * telehealth_throttle_lock after the last failure.  The id is
 * "<scope>:<SHA-256 hex>" of the account's e-mail, the link or the client
 * address, never the plain value.
 */
#define TH_KEY_THROTTLE "%sthrottle:%s"
/*
 * Requests of one kind counted in a window (nginx only): a string counter
 * with a TTL of the window, "<what>:<scope>:<id>", e.g.
 * "invites:staff:<uuid>", "invites:org:<uuid>" (ids, never contact data).
 */
#define TH_KEY_QUOTA "%squota:%s"
/*
 * Every access token of one person (staff or patient id) issued at or
 * before this time (s) is refused (nginx only): set when the person is
 * deactivated or their password changes, TTL telehealth_access_token_ttl.
 */
#define TH_KEY_PERSON_NBF         "%sperson:%s:nbf"
#define TH_THROTTLE_LOGIN_ACCOUNT "login-account"
#define TH_THROTTLE_LOGIN_ADDR    "login-addr"
#define TH_THROTTLE_REDEEM_LINK   "redeem-link"
#define TH_THROTTLE_REDEEM_ADDR   "redeem-addr"
#define TH_THROTTLE_DECIDE_LINK   "decide-link"
#define TH_THROTTLE_DECIDE_ADDR   "decide-addr"

/* Consumer group of the nginx module on the events stream. */
#define TH_EVENTS_GROUP "nginx"

/* Event types in the events stream (field "type"). */
#define TH_EV_ROOM_OPENED        "room.opened"
#define TH_EV_PARTICIPANT_JOINED "participant.joined"
#define TH_EV_PARTICIPANT_LEFT   "participant.left"
#define TH_EV_ROOM_CLOSED        "room.closed"
/* Someone arrived in the waiting room (nginx rings the requester). */
#define TH_EV_PARTICIPANT_WAITING "participant.waiting"
/* A chair (or a command) changed someone's role; field "role" is new. */
#define TH_EV_PARTICIPANT_ROLE "participant.role"
/* A chair acted in the room: fields action (TH_ACT_*), actor (the chair's
 * participant id, or "command"), participant (the target), role, breakout.
 * nginx writes one audit row for each. */
#define TH_EV_CHAIR_ACTION "chair.action"
/* The answer to a command: fields command, id, room, result. */
#define TH_EV_COMMAND_RESULT "command.result"

/* Commands on <prefix>cmd:<node> (field "command"), docs/plugin.md. */
#define TH_CMD_CLOSE           "close"
#define TH_CMD_REMOVE          "remove"
#define TH_CMD_MUTE            "mute"
#define TH_CMD_SET_ROLE        "set_role"
#define TH_CMD_ACCESS_CHANGED  "access_changed"
#define TH_CMD_BREAKOUT_CREATE "breakout_create"
#define TH_CMD_BREAKOUT_MOVE   "breakout_move"
#define TH_CMD_BREAKOUT_CLOSE  "breakout_close"

/* Field "action" of chair.action. */
#define TH_ACT_ADMIT           "admit"
#define TH_ACT_TURN_AWAY       "turn_away"
#define TH_ACT_MUTE            "mute"
#define TH_ACT_ROLE            "role"
#define TH_ACT_REMOVE          "remove"
#define TH_ACT_CLOSE           "close"
#define TH_ACT_BREAKOUT_CREATE "breakout_create"
#define TH_ACT_BREAKOUT_MOVE   "breakout_move"
#define TH_ACT_BREAKOUT_CLOSE  "breakout_close"

/* Why a room closed (field "reason" of room.closed). */
#define TH_CLOSE_CHAIR_LEFT        "chair_left"
#define TH_CLOSE_CLOSED_BY_CHAIR   "closed_by_chair"
#define TH_CLOSE_COMMAND           "command"
#define TH_CLOSE_KEPT_OPEN         "kept_open" /* the session stays, idle */
#define TH_CLOSE_EXPIRED           "expired"
#define TH_CLOSE_CAREGIVER_HUNG_UP "caregiver_hung_up"
#define TH_CLOSE_DURATION_LIMIT    "duration_limit"
#define TH_CLOSE_NODE_LOST         "node_lost"

/* What a virtual visit's people are told when one side hangs up
 * (docs/plugin.md, "hung_up" and "left"). */
#define TH_MSG_CLIENT_HUNG_UP                                             \
    "The client has hung up. If the session is not supposed to be over, " \
    "please reach out to the client."
#define TH_MSG_CAREGIVER_HUNG_UP \
    "Your session with the client is over. You can now close the page."

/* Why a participant left (field "reason" of participant.left). */
#define TH_LEFT_LEAVE       "leave"
#define TH_LEFT_HANGUP      "hangup"
#define TH_LEFT_REMOVED     "removed"
#define TH_LEFT_ROOM_CLOSED "room_closed"
#define TH_LEFT_TURNED_AWAY "turned_away"
#define TH_LEFT_NODE_LOST   "node_lost"

/* Room states (field "state" of the room hash). */
#define TH_ROOM_OPEN   "open"
#define TH_ROOM_CLOSED "closed"

/* Roles inside a session. */
#define TH_ROLE_CHAIR       "chair"
#define TH_ROLE_BROADCASTER "broadcaster"
#define TH_ROLE_VIEWER      "viewer"

/* Session kinds. */
#define TH_KIND_VIDEO_CALL    "video_call"
#define TH_KIND_VIRTUAL_VISIT "virtual_visit"
#define TH_KIND_GROUP         "group"

/* Room policy fields of the room hash (docs/redis.md). */
#define TH_POLICY_CLOSE_ON_STAFF_LEAVE  "close_on_staff_leave"
#define TH_POLICY_CAREGIVER_HANGUP_ENDS "caregiver_hangup_ends"
#define TH_POLICY_STAY                  "stay"

/* Room hash fields of the lifecycle (docs/lifecycle.md). */
#define TH_ROOM_EMPTY_TIMEOUT "empty_timeout" /* s, 0: never */
#define TH_ROOM_NODE_GRACE    "node_grace"    /* s after lease_at */
#define TH_ROOM_LEASE_AT      "lease_at"      /* ms, host's last refresh */
#define TH_ROOM_EMPTY_SINCE   "empty_since"   /* ms, absent while anyone in */

#endif /* TH_NAMES_H */
