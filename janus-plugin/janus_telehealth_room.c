/*
 * Rooms and participants of janus.plugin.telehealth.
 *
 * A room is opened by the nginx module (the Redis hash <prefix>room:<id>);
 * the first join on this node makes us its host.  Only the handler thread
 * changes rooms; other threads read them under the locks below.  Lock
 * order: rooms_mutex, then room->mutex, then session->mutex.
 *
 * The housekeeping thread renews our lease on what we host (lease_at in
 * each room hash, the node heartbeat; nothing of an open room expires) and
 * notices rooms that stayed empty too long or are no longer ours; it hands
 * every change to the handler thread.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"


/* room id -> room (reference) */
static GHashTable *rooms;
static janus_mutex rooms_mutex = JANUS_MUTEX_INITIALIZER;
static guint64 join_seq;

static GThread *housekeeping_thread;
static GMutex housekeeping_mutex;
static GCond housekeeping_cond;
static gboolean housekeeping_stop;


/* Objects */

static void
janus_telehealth_room_free(const janus_refcount *room_ref)
{
    janus_telehealth_room  *room;

    room = janus_refcount_containerof(room_ref, janus_telehealth_room, ref);

    g_hash_table_destroy(room->participants);
    g_hash_table_destroy(room->admitted);
    g_list_free_full(room->breakouts, g_free);
    janus_mutex_destroy(&room->mutex);
    g_free(room->waiting_room);
    g_free(room->leave_policy);
    g_free(room->id);
    g_free(room->session_id);
    g_free(room->org_id);
    g_free(room->kind);
    g_free(room->patient_id);
    g_free(room);
}


void
janus_telehealth_room_unref(janus_telehealth_room *room)
{
    janus_refcount_decrease(&room->ref);
}


static void
janus_telehealth_participant_free(const janus_refcount *participant_ref)
{
    janus_telehealth_participant  *participant;

    participant = janus_refcount_containerof(participant_ref,
        janus_telehealth_participant, ref);

    if (participant->room != NULL) {
        janus_refcount_decrease(&participant->room->ref);
    }

    g_free(participant->id);
    g_free(participant->display);
    g_free(participant->breakout);
    g_free(participant->jti);
    g_free(participant);
}


static void
janus_telehealth_participant_unref(janus_telehealth_participant *participant)
{
    janus_refcount_decrease(&participant->ref);
}


static janus_telehealth_room *
janus_telehealth_room_new(const janus_telehealth_join *join,
    const janus_telehealth_room_info *info)
{
    janus_telehealth_room  *room;

    room = g_malloc0(sizeof(janus_telehealth_room));
    room->id = g_strdup(join->room_id);
    room->session_id = g_strdup(join->session_id);
    /* The room hash is the authority; the credential fills its gaps. */
    room->org_id = g_strdup(info->org_id != NULL ? info->org_id
                                                 : join->org_id);
    room->kind = g_strdup(info->kind != NULL ? info->kind : join->kind);
    room->patient_id = g_strdup(info->patient_id);
    room->bitrate = info->bitrate > 0 ? info->bitrate
                                      : (guint32) janus_telehealth_cfg.bitrate;
    room->empty_timeout = info->empty_timeout;
    room->participants = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
        (GDestroyNotify) janus_telehealth_participant_unref);
    room->admitted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           NULL);
    janus_mutex_init(&room->mutex);
    janus_refcount_init(&room->ref, janus_telehealth_room_free);

    return room;
}


static janus_telehealth_room *
janus_telehealth_rooms_lookup(const char *room_id)
{
    janus_telehealth_room  *room;

    janus_mutex_lock(&rooms_mutex);
    room = rooms != NULL ? g_hash_table_lookup(rooms, room_id) : NULL;
    if (room != NULL) {
        janus_refcount_increase(&room->ref);
    }
    janus_mutex_unlock(&rooms_mutex);

    return room;
}


janus_telehealth_room *
janus_telehealth_room_find(const char *room_id)
{
    return janus_telehealth_rooms_lookup(room_id);
}


/* The policy fields of the room hash, as the last join read them.  Called
 * with the room mutex held. */
static void
janus_telehealth_room_apply_policy(janus_telehealth_room *room,
    const janus_telehealth_room_info *info)
{
    g_free(room->waiting_room);
    room->waiting_room = g_strdup(info->waiting_room);

    g_free(room->leave_policy);
    if (info->leave_policy != NULL) {
        room->leave_policy = g_strdup(info->leave_policy);

    } else if (room->kind != NULL
               && strcmp(room->kind, TH_KIND_VIDEO_CALL) == 0)
    {
        room->leave_policy = g_strdup(TH_POLICY_CLOSE_ON_STAFF_LEAVE);

    } else if (room->kind != NULL
               && strcmp(room->kind, TH_KIND_VIRTUAL_VISIT) == 0)
    {
        room->leave_policy = g_strdup(TH_POLICY_CAREGIVER_HANGUP_ENDS);

    } else {
        room->leave_policy = g_strdup(TH_POLICY_STAY);
    }

    if (info->duration_limit != room->duration_limit) {
        room->warned = FALSE;
    }
    room->duration_limit = info->duration_limit;
    if (info->opened_at_ms > 0) {
        room->opened_at_ms = info->opened_at_ms;
    }
}


/* Must this role wait for a chair?  Called with the room mutex held. */
static gboolean
janus_telehealth_room_must_wait(janus_telehealth_room *room, const char *role)
{
    gboolean   wait;
    gchar    **roles, **r;

    if (room->waiting_room == NULL || strcmp(role, TH_ROLE_CHAIR) == 0) {
        return FALSE;
    }

    wait = FALSE;
    roles = g_strsplit(room->waiting_room, ",", -1);
    for (r = roles; *r != NULL && !wait; r++) {
        wait = strcmp(g_strstrip(*r), role) == 0;
    }
    g_strfreev(roles);

    return wait;
}


janus_telehealth_room *
janus_telehealth_session_room(janus_telehealth_session *session)
{
    janus_telehealth_room  *room;

    room = NULL;

    janus_mutex_lock(&session->mutex);
    if (session->participant != NULL) {
        room = session->participant->room;
        janus_refcount_increase(&room->ref);
    }
    janus_mutex_unlock(&session->mutex);

    return room;
}


/*
 * Cuts the links between a participant and its session, both ways.
 * Handler thread only; the room mutex must be held so that readers of
 * participant->session never see a session being released.
 */
static void
janus_telehealth_participant_detach(janus_telehealth_participant *participant)
{
    janus_telehealth_session  *session;

    session = participant->session;
    if (session == NULL) {
        return;
    }

    janus_mutex_lock(&session->mutex);
    if (session->participant == participant) {
        session->participant = NULL;
        janus_refcount_decrease(&participant->ref);
    }
    janus_mutex_unlock(&session->mutex);

    participant->session = NULL;
    janus_telehealth_session_unref(session);
}


static gboolean
janus_telehealth_is_staff_chair(const janus_telehealth_participant *p)
{
    return strcmp(p->role, TH_ROLE_CHAIR) == 0
           && g_str_has_prefix(p->id, "staff:");
}


/* JSON */

/* Called with the room mutex held. */
static json_t *
janus_telehealth_participant_json(const janus_telehealth_participant *p)
{
    gboolean  publishing, screen;

    publishing = FALSE;
    screen = FALSE;
    if (p->session != NULL) {
        janus_telehealth_media_feed_state(p->session, &publishing, &screen);
    }

    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b,"
                     " s:o}",
                     "id", p->id,
                     "display", p->display,
                     "role", p->role,
                     "state", p->waiting ? "waiting" : "in",
                     "audio_muted", p->audio_muted,
                     "video_paused", p->video_paused,
                     "audio_muted_by_chair", p->audio_blocked,
                     "video_muted_by_chair", p->video_blocked,
                     "publishing", publishing,
                     "screen_sharing", screen,
                     "breakout", p->breakout != NULL
                                 ? json_string(p->breakout) : json_null());
}


/* The value of a member in <prefix>room:<room>:members. */
char *
janus_telehealth_member_json(const janus_telehealth_participant *p)
{
    char    *text;
    json_t  *member;

    member = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b}",
                       "role", p->role,
                       "display", p->display,
                       "state", p->waiting ? "waiting" : "in",
                       "audio_muted", p->audio_muted,
                       "video_paused", p->video_paused,
                       "audio_muted_by_chair", p->audio_blocked,
                       "video_muted_by_chair", p->video_blocked);
    if (p->breakout != NULL) {
        json_object_set_new(member, "breakout", json_string(p->breakout));
    }
    text = json_dumps(member, JSON_COMPACT);
    json_decref(member);

    return text;
}


static gint
janus_telehealth_participant_order(gconstpointer a, gconstpointer b)
{
    const janus_telehealth_participant  *pa = a, *pb = b;

    return pa->seq < pb->seq ? -1 : (pa->seq > pb->seq ? 1 : 0);
}


/* Called with the room mutex held.  Waiting people only for chairs. */
static json_t *
janus_telehealth_room_participants_locked(janus_telehealth_room *room,
    gboolean with_waiting)
{
    GList                         *list, *l;
    json_t                        *participants;
    janus_telehealth_participant  *p;

    participants = json_array();

    list = g_hash_table_get_values(room->participants);
    list = g_list_sort(list, janus_telehealth_participant_order);
    for (l = list; l != NULL; l = l->next) {
        p = l->data;
        if (p->waiting && !with_waiting) {
            continue;
        }
        json_array_append_new(participants,
                              janus_telehealth_participant_json(p));
    }
    g_list_free(list);

    return participants;
}


json_t *
janus_telehealth_room_participants(janus_telehealth_room *room,
    gboolean with_waiting)
{
    json_t  *participants;

    janus_mutex_lock(&room->mutex);
    participants = janus_telehealth_room_participants_locked(room,
                                                             with_waiting);
    janus_mutex_unlock(&room->mutex);

    return participants;
}


/*
 * Chairs see everyone, waiting people included; the others see who is in;
 * people who wait see nobody.
 */
void
janus_telehealth_room_push_participants(janus_telehealth_room *room,
    janus_telehealth_session *except)
{
    GList                         *targets, *l;
    json_t                        *full, *in, *event;
    GHashTableIter                 iter;
    janus_telehealth_participant  *p;

    targets = NULL;
    full = json_pack("{s:s, s:s}", "telehealth", "participants",
                     "room", room->id);
    in = json_deep_copy(full);

    janus_mutex_lock(&room->mutex);
    json_object_set_new(full, "participants",
        janus_telehealth_room_participants_locked(room, TRUE));
    json_object_set_new(in, "participants",
        janus_telehealth_room_participants_locked(room, FALSE));

    g_hash_table_iter_init(&iter, room->participants);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *) &p)) {
        if (p->session == NULL || p->session == except || p->waiting) {
            continue;
        }
        janus_refcount_increase(&p->session->ref);
        targets = g_list_prepend(targets, p->session);
        targets = g_list_prepend(targets,
            strcmp(p->role, TH_ROLE_CHAIR) == 0 ? full : in);
    }
    janus_mutex_unlock(&room->mutex);

    /* event, then its session */
    for (l = targets; l != NULL; l = l->next->next) {
        event = l->data;
        janus_telehealth_push(l->next->data, NULL, event);
        janus_telehealth_session_unref(l->next->data);
    }

    g_list_free(targets);
    json_decref(full);
    json_decref(in);
}


void
janus_telehealth_room_push_chairs(janus_telehealth_room *room, json_t *event)
{
    GList                         *sessions, *l;
    GHashTableIter                 iter;
    janus_telehealth_participant  *p;

    sessions = NULL;

    janus_mutex_lock(&room->mutex);
    g_hash_table_iter_init(&iter, room->participants);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *) &p)) {
        if (p->session != NULL && strcmp(p->role, TH_ROLE_CHAIR) == 0) {
            janus_refcount_increase(&p->session->ref);
            sessions = g_list_prepend(sessions, p->session);
        }
    }
    janus_mutex_unlock(&room->mutex);

    for (l = sessions; l != NULL; l = l->next) {
        janus_telehealth_push(l->data, NULL, event);
        janus_telehealth_session_unref(l->data);
    }

    g_list_free(sessions);
}


static void
janus_telehealth_push_simple(janus_telehealth_session *session,
    const char *transaction, const char *what, const char *room_id,
    const char *reason)
{
    json_t  *event;

    event = json_object();
    json_object_set_new(event, "telehealth", json_string(what));
    json_object_set_new(event, "room", json_string(room_id));
    if (reason != NULL) {
        json_object_set_new(event, "reason", json_string(reason));
    }

    janus_telehealth_push(session, transaction, event);
    json_decref(event);
}


/* Join */

/* The role the join script answered as one of TH_ROLE_*, or fallback. */
static const char *
janus_telehealth_role_of(const char *role, const char *fallback)
{
    if (role != NULL && strcmp(role, TH_ROLE_CHAIR) == 0) {
        return TH_ROLE_CHAIR;
    }

    if (role != NULL && strcmp(role, TH_ROLE_BROADCASTER) == 0) {
        return TH_ROLE_BROADCASTER;
    }

    if (role != NULL && strcmp(role, TH_ROLE_VIEWER) == 0) {
        return TH_ROLE_VIEWER;
    }

    return fallback;
}


static void
janus_telehealth_report_stale_members(janus_telehealth_room *room,
    json_t *stale)
{
    size_t   i;
    json_t  *member;

    /* Left behind by a node that died: call history needs their end.
     * Whoever of them rejoins (here, now) gets a new participant row. */
    json_array_foreach(stale, i, member) {
        janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room,
            json_string_value(json_object_get(member, "id")),
            json_string_value(json_object_get(member, "role")),
            TH_LEFT_NODE_LOST);
    }

    if (json_array_size(stale) > 0) {
        JANUS_LOG(LOG_WARN, "[telehealth] room %s taken over from a dead "
                  "node, %zu members reported as lost\n", room->id,
                  json_array_size(stale));
    }
}


static int
janus_telehealth_join_error(janus_telehealth_join_status status, int max,
    char *error, size_t error_size)
{
    switch (status) {
    case JANUS_TELEHEALTH_JOIN_OK:
        return 0;
    case JANUS_TELEHEALTH_JOIN_UNAVAILABLE:
        g_snprintf(error, error_size, "Room service unavailable, try again");
        return JANUS_TELEHEALTH_ERROR_REDIS_UNAVAILABLE;
    case JANUS_TELEHEALTH_JOIN_REVOKED:
        g_snprintf(error, error_size, "Join credential revoked");
        return JANUS_TELEHEALTH_ERROR_CREDENTIAL_REVOKED;
    case JANUS_TELEHEALTH_JOIN_NO_ROOM:
        g_snprintf(error, error_size, "No such room");
        return JANUS_TELEHEALTH_ERROR_NO_SUCH_ROOM;
    case JANUS_TELEHEALTH_JOIN_WRONG_SESSION:
        g_snprintf(error, error_size, "The room does not belong to this "
                   "session");
        return JANUS_TELEHEALTH_ERROR_NO_SUCH_ROOM;
    case JANUS_TELEHEALTH_JOIN_CLOSED:
        g_snprintf(error, error_size, "The room is closed");
        return JANUS_TELEHEALTH_ERROR_ROOM_CLOSED;
    case JANUS_TELEHEALTH_JOIN_OTHER_NODE:
        g_snprintf(error, error_size, "The room is hosted by another media "
                   "server");
        return JANUS_TELEHEALTH_ERROR_WRONG_NODE;
    case JANUS_TELEHEALTH_JOIN_FULL:
        g_snprintf(error, error_size, "The room is full: at most %d "
                   "participants can be in this session", max);
        return JANUS_TELEHEALTH_ERROR_ROOM_FULL;
    case JANUS_TELEHEALTH_JOIN_ACCESS:
        g_snprintf(error, error_size, "This session is no longer open to "
                   "guests with a link");
        return JANUS_TELEHEALTH_ERROR_ACCESS_DENIED;
    case JANUS_TELEHEALTH_JOIN_BANNED:
        g_snprintf(error, error_size, "A chair removed you from this "
                   "session.");
        return JANUS_TELEHEALTH_ERROR_BANNED;
    case JANUS_TELEHEALTH_JOIN_IN_SESSION:
        g_snprintf(error, error_size, "The participant is already in a "
                   "video session.");
        return JANUS_TELEHEALTH_ERROR_IN_SESSION;
    case JANUS_TELEHEALTH_JOIN_NOT_YET:
        g_snprintf(error, error_size, "The session cannot be opened before "
                   "the invited person has connected");
        return JANUS_TELEHEALTH_ERROR_NOT_YET;
    }

    g_snprintf(error, error_size, "Unknown error");

    return JANUS_TELEHEALTH_ERROR_UNKNOWN_ERROR;
}


/*
 * Takes the participant's place from an older handle of the same person
 * (a rejoin after a dropped connection, or a second tab).  The old handle
 * is told and stays attached, out of the room.
 */
static void
janus_telehealth_room_replace(janus_telehealth_room *room,
    janus_telehealth_participant *participant)
{
    const char                    *participant_id = participant->id;
    gboolean                       replaced;
    janus_telehealth_session      *old_session;
    janus_telehealth_participant  *old;

    old_session = NULL;

    janus_mutex_lock(&room->mutex);
    old = g_hash_table_lookup(room->participants, participant_id);
    replaced = old != NULL;
    if (old != NULL) {
        /* A chair's mute and a breakout move survive a rejoin. */
        participant->audio_blocked = old->audio_blocked;
        participant->video_blocked = old->video_blocked;
        participant->breakout = g_strdup(old->breakout);
        if (old->session != NULL) {
            old_session = old->session;
            janus_refcount_increase(&old_session->ref);
        }
        janus_telehealth_participant_detach(old);
        g_hash_table_remove(room->participants, participant_id);
    }
    janus_mutex_unlock(&room->mutex);

    if (old_session != NULL) {
        JANUS_LOG(LOG_INFO, "[telehealth] participant %s rejoined room %s "
                  "from a new handle\n", participant_id, room->id);
        janus_telehealth_push_simple(old_session, NULL, "left", room->id,
                                     "replaced");
    }

    if (replaced) {
        janus_telehealth_media_participant_out(room, old_session,
                                               participant_id, "replaced");
    }

    if (old_session != NULL) {
        janus_telehealth_session_unref(old_session);
    }
}


int
janus_telehealth_room_join(janus_telehealth_session *session,
    const janus_telehealth_join *join, const char *transaction,
    char *error, size_t error_size)
{
    int                            rc;
    char                          *member;
    json_t                        *event;
    gboolean                       hosted;
    janus_telehealth_room         *room;
    janus_telehealth_room_info     info;
    janus_telehealth_join_status   status;
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&session->mutex);
    rc = session->participant != NULL;
    janus_mutex_unlock(&session->mutex);

    if (rc) {
        g_snprintf(error, error_size, "Already in a room");
        return JANUS_TELEHEALTH_ERROR_ALREADY_JOINED;
    }

    participant = g_malloc0(sizeof(janus_telehealth_participant));
    participant->id = g_strdup(join->participant_id);
    participant->display = g_strdup(join->display);
    participant->role = join->role;
    participant->jti = g_strdup(join->jti);
    participant->exp = join->exp;
    janus_refcount_init(&participant->ref, janus_telehealth_participant_free);

    /* Only this thread adds rooms: what it sees stays true until then. */
    room = janus_telehealth_rooms_lookup(join->room_id);
    hosted = room != NULL;
    if (room != NULL) {
        janus_telehealth_room_unref(room);
    }

    member = janus_telehealth_member_json(participant);
    status = janus_telehealth_redis_join(janus_telehealth_handler_redis, join,
                                         member, hosted, &info);
    free(member);

    if (status != JANUS_TELEHEALTH_JOIN_OK) {
        rc = janus_telehealth_join_error(status, info.max_participants,
                                         error, error_size);

        if (status == JANUS_TELEHEALTH_JOIN_ACCESS && join->unlisted) {
            g_snprintf(error, error_size, "This session is now open only "
                       "to its participants");
        }

        janus_telehealth_room_info_clear(&info);
        JANUS_LOG(LOG_WARN, "[telehealth] participant %s cannot join room "
                  "%s: %d %s\n", join->participant_id, join->room_id, rc,
                  error);
        janus_telehealth_participant_unref(participant);
        return rc;
    }

    /* A chair's change of role holds for the rest of the session. */
    participant->role = janus_telehealth_role_of(info.role,
                                                 participant->role);

    janus_mutex_lock(&rooms_mutex);
    room = g_hash_table_lookup(rooms, join->room_id);
    if (room == NULL) {
        room = janus_telehealth_room_new(join, &info);
        g_hash_table_insert(rooms, room->id, room);
        JANUS_LOG(LOG_INFO, "[telehealth] hosting room %s (session %s)\n",
                  room->id, room->session_id);
    }
    janus_refcount_increase(&room->ref);
    janus_mutex_unlock(&rooms_mutex);

    janus_telehealth_report_stale_members(room, info.stale_members);
    janus_telehealth_room_replace(room, participant);

    /* The participant's references: its room, its session, and back. */
    janus_refcount_increase(&room->ref);
    participant->room = room;
    janus_refcount_increase(&session->ref);
    participant->session = session;

    janus_mutex_lock(&room->mutex);
    janus_telehealth_room_apply_policy(room, &info);
    g_atomic_int_set(&room->empty_timeout, info.empty_timeout);
    /* Admitted once, admitted for this room's life: a dropped connection
     * does not send anyone back to the waiting room. */
    participant->waiting = janus_telehealth_room_must_wait(room,
                                                           participant->role)
        && !join->admitted
        && !g_hash_table_contains(room->admitted, participant->id);
    if (!participant->waiting) {
        g_hash_table_add(room->admitted, g_strdup(participant->id));
    }
    participant->seq = ++join_seq;
    janus_refcount_increase(&participant->ref);
    g_hash_table_insert(room->participants, participant->id, participant);
    room->empty_since = 0;

    janus_mutex_lock(&session->mutex);
    session->participant = participant;    /* takes our reference */
    janus_mutex_unlock(&session->mutex);
    member = participant->waiting || participant->audio_blocked
             || participant->video_blocked || participant->breakout != NULL
             ? janus_telehealth_member_json(participant) : NULL;
    janus_mutex_unlock(&room->mutex);

    if (member != NULL) {
        (void) janus_telehealth_redis_member_set(
            janus_telehealth_handler_redis, room->id, participant->id,
            member);
        free(member);
    }

    if (info.first_open) {
        janus_telehealth_event_emit(TH_EV_ROOM_OPENED, room, participant->id,
                                    participant->role, NULL);
    }
    janus_telehealth_event_emit(participant->waiting
                                ? TH_EV_PARTICIPANT_WAITING
                                : TH_EV_PARTICIPANT_JOINED, room,
                                participant->id, participant->role, NULL);

    JANUS_LOG(LOG_INFO, "[telehealth] participant %s joined room %s as %s%s\n",
              participant->id, room->id, participant->role,
              participant->waiting ? ", waiting" : "");

    event = json_object();
    json_object_set_new(event, "telehealth", json_string("joined"));
    json_object_set_new(event, "room", json_string(room->id));
    json_object_set_new(event, "id", json_string(participant->id));
    json_object_set_new(event, "role", json_string(participant->role));
    json_object_set_new(event, "state", json_string(participant->waiting
                                                    ? "waiting" : "in"));
    json_object_set_new(event, "participants",
        participant->waiting ? json_array()
        : janus_telehealth_room_participants(room,
              strcmp(participant->role, TH_ROLE_CHAIR) == 0));
    janus_telehealth_push(session, transaction, event);
    json_decref(event);

    if (participant->waiting) {
        /* The chairs' console rings. */
        janus_mutex_lock(&room->mutex);
        event = json_pack("{s:s, s:s, s:o}", "telehealth", "waiting",
                          "room", room->id, "participant",
                          janus_telehealth_participant_json(participant));
        janus_mutex_unlock(&room->mutex);
        janus_telehealth_room_push_chairs(room, event);
        json_decref(event);
    }

    janus_telehealth_room_push_participants(room, session);

    janus_telehealth_room_unref(room);
    janus_telehealth_room_info_clear(&info);

    return 0;
}


/* Close */

/*
 * Closes a room for everyone in it.  With update_redis the room is marked
 * closed in Redis, its members and patient lock go, and room.closed is
 * emitted; without, the room was already taken from us (expired, closed
 * elsewhere, hosted elsewhere) and only the people here are let go.
 */
static void
janus_telehealth_room_close(janus_telehealth_room *room, const char *reason,
    gboolean update_redis)
{
    int                            rc;
    GList                         *participants, *l;
    json_t                        *event;
    janus_telehealth_session      *session;
    janus_telehealth_participant  *p;

    if (!g_atomic_int_compare_and_exchange(&room->closed, 0, 1)) {
        return;
    }

    janus_mutex_lock(&rooms_mutex);
    if (g_hash_table_lookup(rooms, room->id) == room) {
        /* Our reference keeps the room alive past the table's. */
        g_hash_table_remove(rooms, room->id);
    }
    janus_mutex_unlock(&rooms_mutex);

    event = json_object();
    json_object_set_new(event, "telehealth", json_string("closed"));
    json_object_set_new(event, "room", json_string(room->id));
    json_object_set_new(event, "reason", json_string(reason));

    janus_mutex_lock(&room->mutex);
    participants = g_hash_table_get_values(room->participants);
    for (l = participants; l != NULL; l = l->next) {
        janus_refcount_increase(&((janus_telehealth_participant *)
                                  l->data)->ref);
    }
    g_hash_table_remove_all(room->participants);
    janus_mutex_unlock(&room->mutex);

    for (l = participants; l != NULL; l = l->next) {
        p = l->data;

        janus_mutex_lock(&room->mutex);
        session = p->session;
        if (session != NULL) {
            janus_refcount_increase(&session->ref);
        }
        janus_telehealth_participant_detach(p);
        janus_mutex_unlock(&room->mutex);

        if (session != NULL) {
            janus_telehealth_push(session, NULL, event);
            janus_telehealth_session_unref(session);
        }

        janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room, p->id,
                                    p->role, TH_LEFT_ROOM_CLOSED);
        janus_telehealth_participant_unref(p);
    }

    g_list_free(participants);
    json_decref(event);

    /* Every PeerConnection of the room closes. */
    janus_telehealth_media_room_clear(room);

    if (update_redis) {
        rc = janus_telehealth_redis_close(janus_telehealth_handler_redis,
                                          room->id, room->patient_id, reason);
        if (rc < 0) {
            /*
             * The lease lapses with no refresh: nginx's reconciler finds
             * the room nobody hosts, and our room.closed (queued until
             * Redis is back) ends the session.
             */
            JANUS_LOG(LOG_ERR, "[telehealth] room %s closed here but not in "
                      "Redis (unavailable)\n", room->id);
        }

        /* Every end exactly once: someone else closed it first. */
        if (rc != 0) {
            janus_telehealth_event_emit(TH_EV_ROOM_CLOSED, room, NULL, NULL,
                                        reason);
        }
    }

    JANUS_LOG(LOG_INFO, "[telehealth] room %s closed: %s\n", room->id, reason);
}


/* Leave */

/*
 * What a deliberate leave does by the room's leave_policy: returns the
 * close reason, or NULL; *hung_up when staff must hear that the client
 * hung up.  A lost connection (hangup) never ends a room.
 */
static const char *
janus_telehealth_leave_effect(janus_telehealth_room *room,
    janus_telehealth_participant *participant, const char *reason,
    gboolean *hung_up)
{
    gboolean     staff;
    const char  *policy;

    *hung_up = FALSE;

    if (strcmp(reason, TH_LEFT_LEAVE) != 0 || participant->waiting) {
        return NULL;
    }

    policy = room->leave_policy != NULL ? room->leave_policy
                                        : TH_POLICY_STAY;
    staff = janus_telehealth_is_staff_chair(participant);

    if (strcmp(policy, TH_POLICY_CLOSE_ON_STAFF_LEAVE) == 0 && staff) {
        return TH_CLOSE_CHAIR_LEFT;
    }

    if (strcmp(policy, TH_POLICY_CAREGIVER_HANGUP_ENDS) == 0) {
        if (staff) {
            return TH_CLOSE_CAREGIVER_HUNG_UP;
        }
        *hung_up = !g_str_has_prefix(participant->id, "staff:");
    }

    return NULL;
}


/* Tells the staff in the room that the client hung up. */
static void
janus_telehealth_room_push_hung_up(janus_telehealth_room *room,
    const janus_telehealth_participant *participant)
{
    GList                         *sessions, *l;
    json_t                        *event;
    GHashTableIter                 iter;
    janus_telehealth_participant  *p;

    event = json_pack("{s:s, s:s, s:s, s:s}", "telehealth", "hung_up",
                      "room", room->id, "participant", participant->id,
                      "message", "The client has hung up.");
    sessions = NULL;

    janus_mutex_lock(&room->mutex);
    g_hash_table_iter_init(&iter, room->participants);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *) &p)) {
        if (p->session != NULL && g_str_has_prefix(p->id, "staff:")) {
            janus_refcount_increase(&p->session->ref);
            sessions = g_list_prepend(sessions, p->session);
        }
    }
    janus_mutex_unlock(&room->mutex);

    for (l = sessions; l != NULL; l = l->next) {
        janus_telehealth_push(l->data, NULL, event);
        janus_telehealth_session_unref(l->data);
    }

    g_list_free(sessions);
    json_decref(event);
}


/*
 * Takes a participant out of the room (leave, hangup, removed, turned
 * away): Redis, the events stream, their media, the others' lists, and
 * the room itself when the leave policy says so.
 */
static void
janus_telehealth_room_out(janus_telehealth_room *room,
    janus_telehealth_participant *participant, const char *reason,
    gboolean ban, const char *transaction)
{
    gboolean                   empty, hung_up, waiting, release_lock;
    const char                *closes;
    janus_telehealth_session  *session;

    janus_mutex_lock(&room->mutex);
    session = participant->session;
    if (session != NULL) {
        janus_refcount_increase(&session->ref);
    }
    janus_telehealth_participant_detach(participant);
    if (g_hash_table_lookup(room->participants, participant->id)
        == participant)
    {
        g_hash_table_remove(room->participants, participant->id);
    }
    empty = g_hash_table_size(room->participants) == 0;
    if (empty) {
        room->empty_since = janus_get_monotonic_time();
    }
    waiting = participant->waiting;
    closes = janus_telehealth_leave_effect(room, participant, reason,
                                           &hung_up);
    janus_mutex_unlock(&room->mutex);

    /* A video_call's lock is nginx's, for the whole session. */
    release_lock = g_strcmp0(room->kind, TH_KIND_VIDEO_CALL) != 0;
    if (janus_telehealth_redis_member_out(janus_telehealth_handler_redis,
            room->id, room->session_id, participant->id, release_lock, ban)
        != 0)
    {
        JANUS_LOG(LOG_ERR, "[telehealth] member %s of room %s not removed "
                  "from Redis (unavailable)\n", participant->id, room->id);
    }

    janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room, participant->id,
                                participant->role, reason);

    JANUS_LOG(LOG_INFO, "[telehealth] participant %s left room %s: %s%s\n",
              participant->id, room->id, reason,
              waiting ? " (was waiting)" : "");

    /*
     * What they published stops and their subscriber handles are let go;
     * closing does it for everyone at once, without renegotiating first.
     */
    if (closes == NULL) {
        janus_telehealth_media_participant_out(room, session,
                                               participant->id, reason);
    }

    /* Still pushed for a hangup: the handle may be alive. */
    if (session != NULL) {
        janus_telehealth_push_simple(session, transaction, "left", room->id,
                                     reason);
    }

    if (closes != NULL) {
        janus_telehealth_room_close(room, closes, TRUE);

    } else {
        if (hung_up) {
            janus_telehealth_room_push_hung_up(room, participant);
        }
        if (!empty) {
            janus_telehealth_room_push_participants(room, NULL);
        }
    }

    if (session != NULL) {
        janus_telehealth_session_unref(session);
    }
}


int
janus_telehealth_room_leave(janus_telehealth_session *session,
    const char *reason, const char *transaction)
{
    janus_telehealth_room         *room;
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&session->mutex);
    participant = session->participant;
    if (participant != NULL) {
        janus_refcount_increase(&participant->ref);
    }
    janus_mutex_unlock(&session->mutex);

    if (participant == NULL) {
        return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
    }

    room = participant->room;
    janus_refcount_increase(&room->ref);

    janus_telehealth_room_out(room, participant, reason, FALSE,
                              transaction);

    janus_telehealth_participant_unref(participant);
    janus_telehealth_room_unref(room);

    return 0;
}


/*
 * A chair or nginx takes someone out (removed, turned_away); with ban they
 * cannot come back to this session (docs/lifecycle.md).  Returns 0, or 1
 * when they are not in the room.
 */
int
janus_telehealth_room_remove_participant(janus_telehealth_room *room,
    const char *participant_id, const char *reason, gboolean ban)
{
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&room->mutex);
    participant = g_hash_table_lookup(room->participants, participant_id);
    if (participant != NULL) {
        janus_refcount_increase(&participant->ref);
    }
    janus_mutex_unlock(&room->mutex);

    if (participant == NULL) {
        return 1;
    }

    janus_telehealth_room_out(room, participant, reason, ban, NULL);
    janus_telehealth_participant_unref(participant);

    return 0;
}


/* A chair's lookup: the participant (reference) or NULL. */
janus_telehealth_participant *
janus_telehealth_room_participant(janus_telehealth_room *room,
    const char *participant_id)
{
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&room->mutex);
    participant = g_hash_table_lookup(room->participants, participant_id);
    if (participant != NULL) {
        janus_refcount_increase(&participant->ref);
    }
    janus_mutex_unlock(&room->mutex);

    return participant;
}


void
janus_telehealth_participant_release(janus_telehealth_participant *p)
{
    janus_telehealth_participant_unref(p);
}


/* Close for everyone, from a chair. */
void
janus_telehealth_room_close_now(janus_telehealth_room *room,
    const char *reason)
{
    janus_telehealth_room_close(room, reason, TRUE);
}


/* Configure */

int
janus_telehealth_room_configure(janus_telehealth_session *session,
    json_t *audio_muted, json_t *video_paused, const char *transaction)
{
    char                          *member;
    json_t                        *event;
    janus_telehealth_room         *room;
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&session->mutex);
    participant = session->participant;
    if (participant != NULL) {
        janus_refcount_increase(&participant->ref);
    }
    janus_mutex_unlock(&session->mutex);

    if (participant == NULL) {
        return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
    }

    room = participant->room;

    janus_mutex_lock(&room->mutex);
    if (audio_muted != NULL) {
        participant->audio_muted = json_is_true(audio_muted);
    }
    if (video_paused != NULL) {
        participant->video_paused = json_is_true(video_paused);
    }
    member = janus_telehealth_member_json(participant);
    janus_mutex_unlock(&room->mutex);

    /* The flags are presentation only: a Redis outage must not undo them. */
    if (janus_telehealth_redis_member_set(janus_telehealth_handler_redis,
                                          room->id, participant->id, member))
    {
        JANUS_LOG(LOG_WARN, "[telehealth] member %s of room %s not updated "
                  "in Redis (unavailable)\n", participant->id, room->id);
    }
    free(member);

    event = json_pack("{s:s, s:s, s:b, s:b}",
                      "telehealth", "configured",
                      "room", room->id,
                      "audio_muted", participant->audio_muted,
                      "video_paused", participant->video_paused);
    janus_telehealth_push(session, transaction, event);
    json_decref(event);

    janus_telehealth_room_push_participants(room, session);
    janus_telehealth_participant_unref(participant);

    return 0;
}


/* Tasks from the housekeeping and command threads */

/*
 * Has the room been empty for its empty_timeout (the room hash's, else
 * the setting's; 0: never)?  empty_since is monotonic us, 0 if not empty.
 */
static gboolean
janus_telehealth_room_empty_expired(janus_telehealth_room *room,
    gint64 empty_since)
{
    gint64  timeout;

    timeout = g_atomic_int_get(&room->empty_timeout);
    if (timeout < 0) {
        timeout = janus_telehealth_cfg.empty_room_timeout;
    }

    return empty_since != 0 && timeout > 0
           && janus_get_monotonic_time() - empty_since
              >= timeout * G_USEC_PER_SEC;
}


void
janus_telehealth_room_expire(const char *room_id)
{
    gboolean                expired;
    janus_telehealth_room  *room;

    room = janus_telehealth_rooms_lookup(room_id);
    if (room == NULL) {
        return;
    }

    /* Someone may have come back since housekeeping looked. */
    janus_mutex_lock(&room->mutex);
    expired = g_hash_table_size(room->participants) == 0
              && janus_telehealth_room_empty_expired(room,
                                                     room->empty_since);
    janus_mutex_unlock(&room->mutex);

    if (expired) {
        janus_telehealth_room_close(room, TH_CLOSE_EXPIRED, TRUE);
    }

    janus_telehealth_room_unref(room);
}


void
janus_telehealth_room_lost(const char *room_id, const char *reason)
{
    janus_telehealth_room  *room;

    room = janus_telehealth_rooms_lookup(room_id);
    if (room == NULL) {
        return;
    }

    JANUS_LOG(LOG_WARN, "[telehealth] room %s is no longer ours in Redis: "
              "letting its participants go\n", room_id);
    janus_telehealth_room_close(room, reason, FALSE);
    janus_telehealth_room_unref(room);
}


/* nginx's close command (a chair.action with actor "command"). */
int
janus_telehealth_room_close_by_id(const char *room_id, const char *reason)
{
    int                         rc;
    char                       *session_id;
    janus_telehealth_room      *room;
    janus_telehealth_room_info  info;

    room = janus_telehealth_rooms_lookup(room_id);
    if (room != NULL) {
        janus_telehealth_chair_action(room->id, room->session_id,
                                      room->org_id, TH_ACT_CLOSE,
                                      JANUS_TELEHEALTH_ACTOR_COMMAND, NULL,
                                      NULL, NULL);
        janus_telehealth_room_close(room, reason, TRUE);
        janus_telehealth_room_unref(room);
        return 0;
    }

    /* Nobody joined it here yet, but it may be ours to close. */
    rc = janus_telehealth_redis_room_for_close(janus_telehealth_handler_redis,
                                               room_id, &session_id, &info);
    if (rc <= 0) {
        return rc < 0 ? -1 : 1;
    }

    rc = janus_telehealth_redis_close(janus_telehealth_handler_redis, room_id,
                                      info.patient_id, reason);
    if (rc < 0) {
        rc = -1;

    } else if (rc == 0) {
        /* Closed by someone else meanwhile: theirs to report. */
        rc = 1;

    } else {
        janus_telehealth_chair_action(room_id, session_id, info.org_id,
                                      TH_ACT_CLOSE,
                                      JANUS_TELEHEALTH_ACTOR_COMMAND, NULL,
                                      NULL, NULL);
        janus_telehealth_event_emit_fields(TH_EV_ROOM_CLOSED,
            "room", room_id, "session", session_id, "org", info.org_id,
            "kind", info.kind, "reason", reason, NULL);
        JANUS_LOG(LOG_INFO, "[telehealth] room %s closed: %s\n", room_id,
                  reason);
        rc = 0;
    }

    g_free(session_id);
    janus_telehealth_room_info_clear(&info);

    return rc;
}


/* Duration limit */

/* Milliseconds left before the room's duration limit; G_MAXINT64 when it
 * has none.  Called with the room mutex held. */
static gint64
janus_telehealth_room_time_left(janus_telehealth_room *room)
{
    if (room->duration_limit <= 0 || room->opened_at_ms <= 0) {
        return G_MAXINT64;
    }

    return room->opened_at_ms + room->duration_limit * 1000
           - g_get_real_time() / 1000;
}


void
janus_telehealth_room_deadline(const char *room_id)
{
    gint64                  left;
    json_t                 *event;
    gboolean                warn;
    janus_telehealth_room  *room;

    room = janus_telehealth_rooms_lookup(room_id);
    if (room == NULL) {
        return;
    }

    janus_mutex_lock(&room->mutex);
    left = janus_telehealth_room_time_left(room);
    warn = left > 0 && left <= JANUS_TELEHEALTH_DURATION_WARNING * 1000
           && !room->warned;
    if (warn) {
        room->warned = TRUE;
    }
    janus_mutex_unlock(&room->mutex);

    if (left <= 0) {
        janus_telehealth_room_close(room, TH_CLOSE_DURATION_LIMIT, TRUE);

    } else if (warn) {
        event = json_pack("{s:s, s:s, s:s, s:I}", "telehealth", "warning",
                          "room", room->id, "reason", "duration_limit",
                          "seconds_left", (json_int_t) ((left + 999) / 1000));
        janus_telehealth_room_push_chairs(room, event);
        json_decref(event);
    }

    janus_telehealth_room_unref(room);
}


/* Housekeeping */

/* Every second: rooms near or past their duration limit, and rooms empty
 * for longer than their empty_timeout (a timeout of a few seconds is
 * honoured whatever refresh_interval is). */
static void
janus_telehealth_housekeeping_deadlines(void)
{
    gint64                  left;
    GList                  *snapshot, *l;
    gboolean                due, expired;
    janus_telehealth_room  *room;

    janus_mutex_lock(&rooms_mutex);
    snapshot = g_hash_table_get_values(rooms);
    for (l = snapshot; l != NULL; l = l->next) {
        janus_refcount_increase(&((janus_telehealth_room *) l->data)->ref);
    }
    janus_mutex_unlock(&rooms_mutex);

    for (l = snapshot; l != NULL; l = l->next) {
        room = l->data;

        janus_mutex_lock(&room->mutex);
        left = janus_telehealth_room_time_left(room);
        due = left <= 0
              || (left <= JANUS_TELEHEALTH_DURATION_WARNING * 1000
                  && !room->warned);
        expired = janus_telehealth_room_empty_expired(room,
                                                      room->empty_since);
        janus_mutex_unlock(&room->mutex);

        if (due && !g_atomic_int_get(&room->closed)) {
            janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_DEADLINE,
                                               room->id, NULL, NULL);
        }

        if (expired && !g_atomic_int_get(&room->closed)) {
            janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_EXPIRE,
                                               room->id, NULL, NULL);
        }

        janus_telehealth_room_unref(room);
    }

    g_list_free(snapshot);
}

static void
janus_telehealth_housekeeping_round(janus_telehealth_redis *redis,
    gint64 started_ms)
{
    int                              nrooms, nparticipants, empty_timeout;
    GList                           *snapshot, *l;
    const char                      *lost, *closed;
    janus_telehealth_room           *room;
    janus_telehealth_refresh_status  status;

    janus_mutex_lock(&rooms_mutex);
    snapshot = g_hash_table_get_values(rooms);
    for (l = snapshot; l != NULL; l = l->next) {
        janus_refcount_increase(&((janus_telehealth_room *) l->data)->ref);
    }
    janus_mutex_unlock(&rooms_mutex);

    nrooms = 0;
    nparticipants = 0;

    for (l = snapshot; l != NULL; l = l->next) {
        room = l->data;

        janus_mutex_lock(&room->mutex);
        nparticipants += g_hash_table_size(room->participants);
        janus_mutex_unlock(&room->mutex);
        nrooms++;

        status = janus_telehealth_redis_refresh(redis, room->id,
                                                &empty_timeout, &closed);
        lost = NULL;

        switch (status) {
        case JANUS_TELEHEALTH_REFRESH_OK:
            g_atomic_int_set(&room->empty_timeout, empty_timeout);
            break;
        case JANUS_TELEHEALTH_REFRESH_UNAVAILABLE:
            break;
        case JANUS_TELEHEALTH_REFRESH_CLOSED:
            /* nginx's close, its reconciler's, a chair's on another path */
            lost = closed;
            break;
        case JANUS_TELEHEALTH_REFRESH_GONE:
        case JANUS_TELEHEALTH_REFRESH_MOVED:
            lost = TH_CLOSE_EXPIRED;
            break;
        }

        if (lost != NULL) {
            janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_LOST,
                                               room->id, lost, NULL);
        }

        janus_telehealth_room_unref(room);
    }

    g_list_free(snapshot);

    (void) janus_telehealth_redis_heartbeat(redis, started_ms, nrooms,
                                            nparticipants);
}


static void *
janus_telehealth_housekeeping(void *data)
{
    gint64                   started_ms, deadline, next_round;
    janus_telehealth_redis  *redis;

    redis = janus_telehealth_redis_new("housekeeping");
    started_ms = g_get_real_time() / 1000;

    next_round = 0;

    g_mutex_lock(&housekeeping_mutex);

    while (!housekeeping_stop) {
        g_mutex_unlock(&housekeeping_mutex);
        if (g_get_monotonic_time() >= next_round) {
            janus_telehealth_housekeeping_round(redis, started_ms);
            next_round = g_get_monotonic_time()
                         + (gint64) janus_telehealth_cfg.refresh_interval
                           * G_TIME_SPAN_SECOND;
        }
        janus_telehealth_housekeeping_deadlines();
        g_mutex_lock(&housekeeping_mutex);

        /* Duration limits are checked every second, Redis less often. */
        deadline = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
        while (!housekeeping_stop
               && g_cond_wait_until(&housekeeping_cond, &housekeeping_mutex,
                                    deadline))
        {
            /* woken early: only stop matters */
        }
    }

    g_mutex_unlock(&housekeeping_mutex);

    /* Without our heartbeat other nodes may take our rooms at once. */
    janus_telehealth_redis_heartbeat_delete(redis);
    janus_telehealth_redis_free(redis);

    return NULL;
}


int
janus_telehealth_rooms_init(void)
{
    GError  *error = NULL;

    rooms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
        (GDestroyNotify) janus_telehealth_room_unref);

    housekeeping_stop = FALSE;
    housekeeping_thread = g_thread_try_new("telehealth housekeeping",
        janus_telehealth_housekeeping, NULL, &error);
    if (error != NULL) {
        JANUS_LOG(LOG_FATAL, "[telehealth] cannot start the housekeeping "
                  "thread: %s\n", error->message);
        g_error_free(error);
        g_hash_table_destroy(rooms);
        rooms = NULL;
        return -1;
    }

    return 0;
}


void
janus_telehealth_rooms_deinit(void)
{
    GList                  *list, *l, *participants, *p;
    janus_telehealth_room  *room;

    if (housekeeping_thread != NULL) {
        g_mutex_lock(&housekeeping_mutex);
        housekeeping_stop = TRUE;
        g_cond_signal(&housekeeping_cond);
        g_mutex_unlock(&housekeeping_mutex);
        g_thread_join(housekeeping_thread);
        housekeeping_thread = NULL;
    }

    if (rooms == NULL) {
        return;
    }

    /*
     * Shutting down: everyone here has hung up, as far as call history
     * goes.  The rooms stay open in Redis: another node takes them over
     * (our heartbeat is gone) when people rejoin there, or nginx's
     * reconciler ends them (empty_timeout, node_grace).
     */
    janus_mutex_lock(&rooms_mutex);
    list = g_hash_table_get_values(rooms);
    for (l = list; l != NULL; l = l->next) {
        room = l->data;

        /* Feeds and subscribers hold the room: let go of them first. */
        janus_telehealth_media_room_clear(room);

        janus_mutex_lock(&room->mutex);
        participants = g_hash_table_get_values(room->participants);
        for (p = participants; p != NULL; p = p->next) {
            janus_telehealth_participant  *participant = p->data;

            janus_telehealth_participant_detach(participant);
            (void) janus_telehealth_redis_member_out(
                janus_telehealth_handler_redis, room->id, room->session_id,
                participant->id,
                g_strcmp0(room->kind, TH_KIND_VIDEO_CALL) != 0, FALSE);
            janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room,
                participant->id, participant->role, TH_LEFT_HANGUP);
        }
        g_list_free(participants);
        g_hash_table_remove_all(room->participants);
        janus_mutex_unlock(&room->mutex);
    }
    g_list_free(list);

    g_hash_table_destroy(rooms);
    rooms = NULL;
    janus_mutex_unlock(&rooms_mutex);
}

