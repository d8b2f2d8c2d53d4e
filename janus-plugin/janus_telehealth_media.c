/*
 * Media of janus.plugin.telehealth: the SFU.
 *
 * A joined handle may publish a feed: one Opus stream, a camera VP8 stream
 * and a second VP8 stream for a screen share (chairs and broadcasters
 * only).  Each participant receives the others' feeds on a second handle,
 * the subscriber: one PeerConnection, one m-line per remote stream, offered
 * by the plugin and renegotiated whenever a feed comes or goes.
 *
 * Threads.  The handler thread creates and tears down feeds and
 * subscribers (requests, hangups, leaving, closing); the core's media
 * threads forward.  incoming_rtp takes only the lock of the publisher's
 * stream it forwards (never a global lock, never Redis); incoming_rtcp
 * takes only the subscriber's own lock.  Lock order: room->mutex, then
 * subscriber->mutex, then feed stream mutex; session->mutex alone.
 *
 * References.  A feed holds its session and room; a subscriber holds its
 * session and room; a subscriber stream holds the feed it forwards; a feed
 * stream's list holds the subscriber streams fed from it.  The cycles are
 * cut explicitly when a feed or subscriber is removed.
 */

#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <rtp.h>
#include <sdp-utils.h>
#include <utils.h>

#include "janus_telehealth.h"


#define JANUS_TELEHEALTH_AUDIO  0
#define JANUS_TELEHEALTH_VIDEO  1

/* Payload types the plugin offers to subscribers. */
#define JANUS_TELEHEALTH_OPUS_PT  111
#define JANUS_TELEHEALTH_VP8_PT   96

/* Camera and screen. */
#define JANUS_TELEHEALTH_MAX_VIDEO  2

#define JANUS_TELEHEALTH_DESCRIPTION_MAX  32

/* Keyframe requests to one publisher stream, at most this often. */
#define JANUS_TELEHEALTH_PLI_INTERVAL  (300 * 1000)
/* The REMB cap is repeated this often, as browsers forget it. */
#define JANUS_TELEHEALTH_REMB_INTERVAL  G_USEC_PER_SEC


typedef struct janus_telehealth_feed_stream {
    janus_telehealth_feed  *feed;         /* back pointer */
    int                     mindex;       /* in the publisher's SDP */
    int                     type;
    char                   *mid;
    char                   *description;  /* microphone, camera, screen */
    /* Subscriber streams fed from this one (references). */
    GSList                 *subscribers;
    gint64                  pli_last;
    /* Muted by a chair: incoming_rtp drops the stream's packets. */
    volatile gint           blocked;
    janus_mutex             mutex;
} janus_telehealth_feed_stream;

struct janus_telehealth_feed {
    char                      *participant_id;
    char                      *msid;       /* participant id as an SDP token */
    janus_telehealth_session  *session;    /* reference */
    janus_telehealth_room     *room;       /* reference */
    GPtrArray                 *streams;    /* of feed_stream, owned */
    guint32                    bitrate;
    gint64                     remb_last;  /* the publisher's media thread */
    volatile gint              active;
    janus_refcount             ref;
};

typedef struct janus_telehealth_sub_stream {
    /* Back pointer: a subscriber outlives its streams' presence in feeds. */
    janus_telehealth_subscriber   *subscriber;
    int                            mindex;
    int                            type;
    int                            pt;
    char                          *mid;
    janus_telehealth_feed         *feed;     /* reference; NULL: inactive */
    janus_telehealth_feed_stream  *fstream;  /* in feed */
    gboolean                       in_offer; /* active in the last offer */
    volatile gint                  ready;    /* answered: forward */
    janus_rtp_switching_context    context;  /* publisher's media thread */
    janus_refcount                 ref;
} janus_telehealth_sub_stream;

struct janus_telehealth_subscriber {
    janus_telehealth_session  *session;     /* reference */
    janus_telehealth_room     *room;        /* reference */
    char                      *participant_id;
    /* sub_stream references, index == mindex; guarded by mutex */
    GPtrArray                 *streams;
    gboolean                   dirty;       /* a stream went inactive */
    /* Handler thread only. */
    gboolean                   answered;
    gboolean                   offer_pending;
    guint64                    sdp_version;
    janus_mutex                mutex;
    janus_refcount             ref;
};


/* Objects */

static void
janus_telehealth_feed_free(const janus_refcount *feed_ref)
{
    guint                          i;
    janus_telehealth_feed         *feed;
    janus_telehealth_feed_stream  *fs;

    feed = janus_refcount_containerof(feed_ref, janus_telehealth_feed, ref);

    for (i = 0; i < feed->streams->len; i++) {
        fs = g_ptr_array_index(feed->streams, i);
        janus_mutex_destroy(&fs->mutex);
        g_free(fs->mid);
        g_free(fs->description);
        g_free(fs);
    }
    g_ptr_array_free(feed->streams, TRUE);

    janus_telehealth_session_unref(feed->session);
    janus_telehealth_room_unref(feed->room);
    g_free(feed->participant_id);
    g_free(feed->msid);
    g_free(feed);
}


static void
janus_telehealth_feed_unref_cb(janus_telehealth_feed *feed)
{
    janus_refcount_decrease(&feed->ref);
}


static void
janus_telehealth_sub_stream_free(const janus_refcount *ss_ref)
{
    janus_telehealth_sub_stream  *ss;

    ss = janus_refcount_containerof(ss_ref, janus_telehealth_sub_stream, ref);

    if (ss->feed != NULL) {
        janus_refcount_decrease(&ss->feed->ref);
    }
    g_free(ss->mid);
    g_free(ss);
}


static void
janus_telehealth_sub_stream_unref(janus_telehealth_sub_stream *ss)
{
    janus_refcount_decrease(&ss->ref);
}


static void
janus_telehealth_subscriber_free(const janus_refcount *sub_ref)
{
    janus_telehealth_subscriber  *sub;

    sub = janus_refcount_containerof(sub_ref, janus_telehealth_subscriber,
                                     ref);

    g_ptr_array_free(sub->streams, TRUE);
    janus_telehealth_session_unref(sub->session);
    janus_telehealth_room_unref(sub->room);
    janus_mutex_destroy(&sub->mutex);
    g_free(sub->participant_id);
    g_free(sub);
}


static void
janus_telehealth_subscriber_unref(janus_telehealth_subscriber *sub)
{
    janus_refcount_decrease(&sub->ref);
}


static const char *
janus_telehealth_media_type_name(int type)
{
    return type == JANUS_TELEHEALTH_AUDIO ? "audio" : "video";
}


static gboolean
janus_telehealth_handle_usable(janus_plugin_session *handle)
{
    return handle != NULL && !g_atomic_int_get(&handle->stopped)
           && !g_atomic_int_get(&janus_telehealth_stopping);
}


static void
janus_telehealth_close_pc(janus_telehealth_session *session)
{
    if (!g_atomic_int_get(&session->destroyed)
        && janus_telehealth_handle_usable(session->handle))
    {
        janus_telehealth_gateway->close_pc(session->handle);
    }
}


/* Asks the publisher for a keyframe on one stream, at most so often. */
static void
janus_telehealth_feed_keyframe(janus_telehealth_feed *feed,
    janus_telehealth_feed_stream *fs)
{
    gint64    now;
    gboolean  send;

    if (fs->type != JANUS_TELEHEALTH_VIDEO || !g_atomic_int_get(&feed->active)
        || !janus_telehealth_handle_usable(feed->session->handle))
    {
        return;
    }

    now = janus_get_monotonic_time();

    janus_mutex_lock(&fs->mutex);
    send = now - fs->pli_last >= JANUS_TELEHEALTH_PLI_INTERVAL;
    if (send) {
        fs->pli_last = now;
    }
    janus_mutex_unlock(&fs->mutex);

    if (send) {
        janus_telehealth_gateway->send_pli_stream(feed->session->handle,
                                                  fs->mindex);
    }
}


/* Feeds */

/* Cuts every subscriber stream off one feed stream. */
static void
janus_telehealth_feed_stream_detach_all(janus_telehealth_feed_stream *fs)
{
    GSList                       *list, *l;
    janus_telehealth_feed        *feed;
    janus_telehealth_subscriber  *sub;
    janus_telehealth_sub_stream  *ss;

    janus_mutex_lock(&fs->mutex);
    list = fs->subscribers;
    fs->subscribers = NULL;
    janus_mutex_unlock(&fs->mutex);

    for (l = list; l != NULL; l = l->next) {
        ss = l->data;
        sub = ss->subscriber;
        feed = NULL;

        janus_mutex_lock(&sub->mutex);
        if (ss->fstream == fs) {
            g_atomic_int_set(&ss->ready, 0);
            ss->fstream = NULL;
            feed = ss->feed;
            ss->feed = NULL;
            sub->dirty = TRUE;
        }
        janus_mutex_unlock(&sub->mutex);

        if (feed != NULL) {
            janus_refcount_decrease(&feed->ref);
        }
        janus_telehealth_sub_stream_unref(ss);
    }

    g_slist_free(list);
}


/* Takes a feed out of its room and off its session.  Handler thread. */
static void
janus_telehealth_feed_remove(janus_telehealth_feed *feed)
{
    guint                      i;
    GList                     *link;
    janus_telehealth_room     *room;
    janus_telehealth_session  *session;

    if (!g_atomic_int_compare_and_exchange(&feed->active, 1, 0)) {
        return;
    }

    room = feed->room;
    session = feed->session;

    janus_mutex_lock(&room->mutex);
    link = g_list_find(room->feeds, feed);
    if (link != NULL) {
        room->feeds = g_list_delete_link(room->feeds, link);
    }
    janus_mutex_unlock(&room->mutex);

    for (i = 0; i < feed->streams->len; i++) {
        janus_telehealth_feed_stream_detach_all(
            g_ptr_array_index(feed->streams, i));
    }

    janus_mutex_lock(&session->mutex);
    if (session->feed == feed) {
        session->feed = NULL;
        janus_refcount_decrease(&feed->ref);
    }
    janus_mutex_unlock(&session->mutex);

    JANUS_LOG(LOG_INFO, "[telehealth] participant %s stopped publishing in "
              "room %s\n", feed->participant_id, room->id);

    if (link != NULL) {
        janus_refcount_decrease(&feed->ref);
    }
}


static janus_telehealth_feed *
janus_telehealth_session_feed(janus_telehealth_session *session)
{
    janus_telehealth_feed  *feed;

    janus_mutex_lock(&session->mutex);
    feed = session->feed;
    if (feed != NULL) {
        janus_refcount_increase(&feed->ref);
    }
    janus_mutex_unlock(&session->mutex);

    return feed;
}


static janus_telehealth_subscriber *
janus_telehealth_session_subscriber(janus_telehealth_session *session)
{
    janus_telehealth_subscriber  *sub;

    janus_mutex_lock(&session->mutex);
    sub = session->subscriber;
    if (sub != NULL) {
        janus_refcount_increase(&sub->ref);
    }
    janus_mutex_unlock(&session->mutex);

    return sub;
}


static json_t *
janus_telehealth_feed_streams_json(janus_telehealth_feed *feed)
{
    guint                          i;
    json_t                        *streams;
    janus_telehealth_feed_stream  *fs;

    streams = json_array();
    for (i = 0; i < feed->streams->len; i++) {
        fs = g_ptr_array_index(feed->streams, i);
        json_array_append_new(streams, json_pack("{s:s, s:i, s:s, s:s}",
            "mid", fs->mid, "mindex", fs->mindex,
            "type", janus_telehealth_media_type_name(fs->type),
            "description", fs->description));
    }

    return streams;
}


/* Subscribers */

static janus_telehealth_sub_stream *
janus_telehealth_sub_stream_slot(janus_telehealth_subscriber *sub, int type)
{
    guint                         i;
    janus_telehealth_sub_stream  *ss;

    /* An inactive m-line of the same kind is reused, as VideoRoom does. */
    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        if (ss->feed == NULL && ss->type == type) {
            return ss;
        }
    }

    ss = g_malloc0(sizeof(janus_telehealth_sub_stream));
    ss->subscriber = sub;
    ss->mindex = (int) sub->streams->len;
    ss->type = type;
    ss->pt = type == JANUS_TELEHEALTH_AUDIO ? JANUS_TELEHEALTH_OPUS_PT
                                            : JANUS_TELEHEALTH_VP8_PT;
    ss->mid = g_strdup_printf("%d", ss->mindex);
    janus_rtp_switching_context_reset(&ss->context);
    janus_refcount_init(&ss->ref, janus_telehealth_sub_stream_free);
    g_ptr_array_add(sub->streams, ss);

    return ss;
}


/* Called with sub->mutex held. */
static void
janus_telehealth_sub_stream_detach(janus_telehealth_sub_stream *ss)
{
    GSList                        *link;
    janus_telehealth_feed_stream  *fs;

    fs = ss->fstream;
    g_atomic_int_set(&ss->ready, 0);

    if (fs != NULL) {
        janus_mutex_lock(&fs->mutex);
        link = g_slist_find(fs->subscribers, ss);
        if (link != NULL) {
            fs->subscribers = g_slist_delete_link(fs->subscribers, link);
        }
        janus_mutex_unlock(&fs->mutex);

        if (link != NULL) {
            janus_telehealth_sub_stream_unref(ss);
        }
        ss->fstream = NULL;
    }

    if (ss->feed != NULL) {
        janus_refcount_decrease(&ss->feed->ref);
        ss->feed = NULL;
    }
}


/*
 * Gives the subscriber an m-line for every stream of every other
 * participant's feed.  TRUE when its m-lines changed (new, or gone
 * inactive since the last sync).  Handler thread.
 */
static gboolean
janus_telehealth_subscriber_sync(janus_telehealth_subscriber *sub)
{
    guint                          i, j;
    GList                         *feeds, *l;
    gboolean                       changed, found;
    janus_telehealth_feed         *feed;
    janus_telehealth_sub_stream   *ss;
    janus_telehealth_feed_stream  *fs;
    janus_telehealth_participant  *me, *other;

    /* Only the feeds of the subscriber's own (breakout) room. */
    feeds = NULL;
    janus_mutex_lock(&sub->room->mutex);
    me = g_hash_table_lookup(sub->room->participants, sub->participant_id);
    for (l = sub->room->feeds; l != NULL; l = l->next) {
        feed = l->data;
        other = g_hash_table_lookup(sub->room->participants,
                                    feed->participant_id);
        if (me == NULL || other == NULL
            || g_strcmp0(me->breakout, other->breakout) != 0)
        {
            continue;
        }
        janus_refcount_increase(&feed->ref);
        feeds = g_list_prepend(feeds, feed);
    }
    janus_mutex_unlock(&sub->room->mutex);
    feeds = g_list_reverse(feeds);

    janus_mutex_lock(&sub->mutex);
    changed = sub->dirty;
    sub->dirty = FALSE;

    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        if (ss->feed != NULL && (!g_atomic_int_get(&ss->feed->active)
                                 || g_list_find(feeds, ss->feed) == NULL))
        {
            janus_telehealth_sub_stream_detach(ss);
            changed = TRUE;
        }
    }

    for (l = feeds; l != NULL; l = l->next) {
        feed = l->data;
        if (!g_atomic_int_get(&feed->active)
            || strcmp(feed->participant_id, sub->participant_id) == 0)
        {
            continue;
        }

        for (i = 0; i < feed->streams->len; i++) {
            fs = g_ptr_array_index(feed->streams, i);

            found = FALSE;
            for (j = 0; j < sub->streams->len && !found; j++) {
                ss = g_ptr_array_index(sub->streams, j);
                found = ss->fstream == fs;
            }
            if (found) {
                continue;
            }

            ss = janus_telehealth_sub_stream_slot(sub, fs->type);
            janus_refcount_increase(&feed->ref);
            ss->feed = feed;
            ss->fstream = fs;
            ss->in_offer = FALSE;
            g_atomic_int_set(&ss->ready, 0);
            /* A reused m-line keeps its context: the receiver sees one
             * stream whose source switched (no SRTP replay of old
             * sequence numbers). */

            janus_refcount_increase(&ss->ref);
            janus_mutex_lock(&fs->mutex);
            fs->subscribers = g_slist_append(fs->subscribers, ss);
            janus_mutex_unlock(&fs->mutex);

            changed = TRUE;
        }
    }
    janus_mutex_unlock(&sub->mutex);

    g_list_free_full(feeds, (GDestroyNotify) janus_telehealth_feed_unref_cb);

    return changed;
}


/* Called with sub->mutex held. */
static json_t *
janus_telehealth_subscriber_streams_json(janus_telehealth_subscriber *sub)
{
    guint                         i;
    json_t                       *streams, *entry;
    janus_telehealth_sub_stream  *ss;

    streams = json_array();
    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        entry = json_pack("{s:s, s:i, s:s, s:b}", "mid", ss->mid,
                          "mindex", ss->mindex,
                          "type", janus_telehealth_media_type_name(ss->type),
                          "active", ss->feed != NULL);
        if (ss->feed != NULL) {
            json_object_set_new(entry, "participant",
                                json_string(ss->feed->participant_id));
            json_object_set_new(entry, "description",
                                json_string(ss->fstream->description));
            json_object_set_new(entry, "feed_mid",
                                json_string(ss->fstream->mid));
        }
        json_array_append_new(streams, entry);
    }

    return streams;
}


/* Called with sub->mutex held. */
static json_t *
janus_telehealth_subscriber_offer_jsep(janus_telehealth_subscriber *sub)
{
    guint                         i;
    char                          name[160], *sdp, *mstid;
    json_t                       *jsep;
    gboolean                      active;
    janus_sdp                    *offer;
    janus_telehealth_sub_stream  *ss;

    g_snprintf(name, sizeof(name), "Telehealth %s", sub->room->id);
    offer = janus_sdp_generate_offer(name, "0.0.0.0", JANUS_SDP_OA_DONE);

    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        active = ss->feed != NULL;
        ss->in_offer = active;
        mstid = active ? g_strdup_printf("%s-%s", ss->feed->msid,
                                         ss->fstream->mid)
                       : NULL;

        janus_sdp_generate_offer_mline(offer,
            JANUS_SDP_OA_MLINE, ss->type == JANUS_TELEHEALTH_AUDIO
                                ? JANUS_SDP_AUDIO : JANUS_SDP_VIDEO,
            JANUS_SDP_OA_MID, ss->mid,
            JANUS_SDP_OA_MSID, active ? ss->feed->msid : NULL, mstid,
            JANUS_SDP_OA_PT, ss->pt,
            JANUS_SDP_OA_CODEC, ss->type == JANUS_TELEHEALTH_AUDIO
                                ? "opus" : "vp8",
            JANUS_SDP_OA_DIRECTION, active ? JANUS_SDP_SENDONLY
                                           : JANUS_SDP_INACTIVE,
            JANUS_SDP_OA_EXTENSION, JANUS_RTP_EXTMAP_MID,
                janus_rtp_extension_id(JANUS_RTP_EXTMAP_MID),
            JANUS_SDP_OA_DONE);

        g_free(mstid);
    }

    offer->o_version = ++sub->sdp_version;
    sdp = janus_sdp_write(offer);
    janus_sdp_destroy(offer);

    jsep = json_pack("{s:s, s:s}", "type", "offer", "sdp", sdp);
    g_free(sdp);

    return jsep;
}


/*
 * Sends the subscriber an offer of its current m-lines, in event "what"
 * (subscribed, updated).  While an offer is unanswered the next one waits
 * for the answer.  Handler thread.
 */
static void
janus_telehealth_subscriber_offer(janus_telehealth_subscriber *sub,
    const char *what, const char *transaction)
{
    json_t  *event, *jsep;

    if (sub->sdp_version > 0 && !sub->answered) {
        sub->offer_pending = TRUE;
        return;
    }

    jsep = NULL;
    event = json_object();
    json_object_set_new(event, "telehealth", json_string(what));
    json_object_set_new(event, "room", json_string(sub->room->id));

    janus_mutex_lock(&sub->mutex);
    json_object_set_new(event, "streams",
                        janus_telehealth_subscriber_streams_json(sub));
    if (sub->streams->len > 0) {
        jsep = janus_telehealth_subscriber_offer_jsep(sub);
        sub->answered = FALSE;
        sub->offer_pending = FALSE;
    }
    janus_mutex_unlock(&sub->mutex);

    janus_telehealth_push_jsep(sub->session, transaction, event, jsep);
    json_decref(event);
    json_decref(jsep);
}


/* Renegotiates every subscriber of the room whose m-lines changed. */
static void
janus_telehealth_room_renegotiate(janus_telehealth_room *room)
{
    GList                        *subs, *l;
    janus_telehealth_subscriber  *sub;

    if (g_atomic_int_get(&room->closed)) {
        return;
    }

    janus_mutex_lock(&room->mutex);
    subs = g_list_copy(room->subscribers);
    for (l = subs; l != NULL; l = l->next) {
        janus_refcount_increase(
            &((janus_telehealth_subscriber *) l->data)->ref);
    }
    janus_mutex_unlock(&room->mutex);

    for (l = subs; l != NULL; l = l->next) {
        sub = l->data;
        if (janus_telehealth_subscriber_sync(sub)) {
            janus_telehealth_subscriber_offer(sub, "updated", NULL);
        }
        janus_telehealth_subscriber_unref(sub);
    }

    g_list_free(subs);
}


/* Takes a subscriber out of its room and off its session. */
static void
janus_telehealth_subscriber_remove(janus_telehealth_subscriber *sub,
    const char *reason, gboolean close_pc)
{
    guint                      i;
    GList                     *link;
    json_t                    *event;
    janus_telehealth_session  *session;

    janus_mutex_lock(&sub->room->mutex);
    link = g_list_find(sub->room->subscribers, sub);
    if (link != NULL) {
        sub->room->subscribers = g_list_delete_link(sub->room->subscribers,
                                                    link);
    }
    janus_mutex_unlock(&sub->room->mutex);

    janus_mutex_lock(&sub->mutex);
    for (i = 0; i < sub->streams->len; i++) {
        janus_telehealth_sub_stream_detach(g_ptr_array_index(sub->streams, i));
    }
    janus_mutex_unlock(&sub->mutex);

    session = sub->session;
    janus_mutex_lock(&session->mutex);
    if (session->subscriber == sub) {
        session->subscriber = NULL;
        janus_refcount_decrease(&sub->ref);
    }
    janus_mutex_unlock(&session->mutex);

    if (link != NULL && !g_atomic_int_get(&janus_telehealth_stopping)) {
        event = json_pack("{s:s, s:s, s:s}", "telehealth", "unsubscribed",
                          "room", sub->room->id, "reason", reason);
        janus_telehealth_push(session, NULL, event);
        json_decref(event);

        if (close_pc) {
            janus_telehealth_close_pc(session);
        }
    }

    if (link != NULL) {
        JANUS_LOG(LOG_VERB, "[telehealth] subscriber of %s in room %s "
                  "removed: %s\n", sub->participant_id, sub->room->id, reason);
        janus_telehealth_subscriber_unref(sub);
    }
}


/* Requests (handler thread) */

static const char *
janus_telehealth_mline_mid(janus_sdp_mline *m)
{
    GList                *l;
    janus_sdp_attribute  *a;

    for (l = m->attributes; l != NULL; l = l->next) {
        a = l->data;
        if (a->name != NULL && a->value != NULL && strcmp(a->name, "mid") == 0)
        {
            return a->value;
        }
    }

    return NULL;
}


static const char *
janus_telehealth_description(json_t *descriptions, const char *mid)
{
    size_t       i;
    json_t      *d;
    const char  *d_mid, *text;

    json_array_foreach(descriptions, i, d) {
        d_mid = json_string_value(json_object_get(d, "mid"));
        text = json_string_value(json_object_get(d, "description"));
        if (d_mid != NULL && text != NULL && mid != NULL
            && strcmp(d_mid, mid) == 0 && text[0] != '\0'
            && strlen(text) <= JANUS_TELEHEALTH_DESCRIPTION_MAX)
        {
            return text;
        }
    }

    return NULL;
}


static gboolean
janus_telehealth_offer_sends(janus_sdp_mline *m)
{
    return m->port > 0
           && (m->direction == JANUS_SDP_DEFAULT
               || m->direction == JANUS_SDP_SENDRECV
               || m->direction == JANUS_SDP_SENDONLY);
}


/*
 * Answers a publisher's offer: the first Opus audio and the first two VP8
 * videos are received, everything else is rejected.  Returns the answer
 * and fills feed->streams.
 */
static janus_sdp *
janus_telehealth_publish_answer(janus_sdp *offer, json_t *descriptions,
    janus_telehealth_feed *feed)
{
    int                            naudio, nvideo;
    GList                         *l;
    janus_sdp                     *answer;
    const char                    *mid, *description;
    janus_sdp_mline               *m, *am;
    janus_telehealth_feed_stream  *fs;

    naudio = 0;
    nvideo = 0;
    answer = janus_sdp_generate_answer(offer);

    for (l = offer->m_lines; l != NULL; l = l->next) {
        m = l->data;

        if (m->type == JANUS_SDP_AUDIO && naudio == 0
            && janus_telehealth_offer_sends(m)
            && janus_sdp_get_codec_pt(offer, m->index, "opus") > 0)
        {
            janus_sdp_generate_answer_mline(offer, answer, m,
                JANUS_SDP_OA_MLINE, JANUS_SDP_AUDIO,
                    JANUS_SDP_OA_DIRECTION, JANUS_SDP_RECVONLY,
                    JANUS_SDP_OA_CODEC, "opus",
                    JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
                JANUS_SDP_OA_DONE);
            naudio++;
            description = "microphone";

        } else if (m->type == JANUS_SDP_VIDEO
                   && nvideo < JANUS_TELEHEALTH_MAX_VIDEO
                   && janus_telehealth_offer_sends(m)
                   && janus_sdp_get_codec_pt(offer, m->index, "vp8") > 0)
        {
            janus_sdp_generate_answer_mline(offer, answer, m,
                JANUS_SDP_OA_MLINE, JANUS_SDP_VIDEO,
                    JANUS_SDP_OA_DIRECTION, JANUS_SDP_RECVONLY,
                    JANUS_SDP_OA_CODEC, "vp8",
                    JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
                JANUS_SDP_OA_DONE);
            description = nvideo == 0 ? "camera" : "screen";
            nvideo++;

            am = janus_sdp_mline_find_by_index(answer, m->index);
            if (am != NULL && feed->bitrate > 0) {
                g_free(am->b_name);
                am->b_name = g_strdup("AS");
                am->b_value = feed->bitrate / 1000;
            }

        } else {
            if (m->type == JANUS_SDP_AUDIO || m->type == JANUS_SDP_VIDEO
                || m->type == JANUS_SDP_APPLICATION)
            {
                janus_sdp_generate_answer_mline(offer, answer, m,
                    JANUS_SDP_OA_MLINE, m->type,
                        JANUS_SDP_OA_ENABLED, FALSE,
                    JANUS_SDP_OA_DONE);
            }
            continue;
        }

        mid = janus_telehealth_mline_mid(m);
        fs = g_malloc0(sizeof(janus_telehealth_feed_stream));
        fs->feed = feed;
        fs->mindex = m->index;
        fs->type = m->type == JANUS_SDP_AUDIO ? JANUS_TELEHEALTH_AUDIO
                                              : JANUS_TELEHEALTH_VIDEO;
        fs->mid = mid != NULL ? g_strdup(mid) : g_strdup_printf("%d",
                                                                m->index);
        if (fs->type == JANUS_TELEHEALTH_VIDEO
            && janus_telehealth_description(descriptions, fs->mid) != NULL)
        {
            description = janus_telehealth_description(descriptions, fs->mid);
        }
        fs->description = g_strdup(description);
        janus_mutex_init(&fs->mutex);
        g_ptr_array_add(feed->streams, fs);
    }

    return answer;
}


/* Same streams (index, kind, description) as an existing feed? */
static gboolean
janus_telehealth_feed_same(janus_telehealth_feed *a, janus_telehealth_feed *b)
{
    guint                          i;
    janus_telehealth_feed_stream  *fa, *fb;

    if (a->streams->len != b->streams->len) {
        return FALSE;
    }

    for (i = 0; i < a->streams->len; i++) {
        fa = g_ptr_array_index(a->streams, i);
        fb = g_ptr_array_index(b->streams, i);
        if (fa->mindex != fb->mindex || fa->type != fb->type
            || strcmp(fa->description, fb->description) != 0)
        {
            return FALSE;
        }
    }

    return TRUE;
}


int
janus_telehealth_media_publish(janus_telehealth_session *session,
    json_t *root, json_t *jsep, const char *transaction, char *error,
    size_t error_size)
{
    char                          *sdp_text, parse_error[200];
    json_t                        *event, *answer_jsep, *descriptions;
    gboolean                       viewer, waiting;
    janus_sdp                     *offer, *answer;
    const char                    *type, *sdp;
    janus_telehealth_feed         *feed, *old;
    janus_telehealth_room         *room;
    janus_telehealth_participant  *participant;

    janus_mutex_lock(&session->mutex);
    participant = session->participant;
    if (participant != NULL) {
        janus_refcount_increase(&participant->ref);
    }
    janus_mutex_unlock(&session->mutex);

    if (participant == NULL) {
        g_snprintf(error, error_size, "Not in a room");
        return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
    }

    room = participant->room;
    janus_mutex_lock(&room->mutex);
    viewer = strcmp(participant->role, TH_ROLE_VIEWER) == 0;
    waiting = participant->waiting;
    janus_mutex_unlock(&room->mutex);

    /*
     * The core has taken the refused offer in: the PeerConnection it began
     * is let go, so that the handle can publish later (once admitted, or
     * made broadcaster).
     */
    if (waiting) {
        janus_refcount_decrease(&participant->ref);
        if (jsep != NULL) {
            janus_telehealth_close_pc(session);
        }
        g_snprintf(error, error_size, "Please wait: a chair has not "
                   "admitted you yet");
        return JANUS_TELEHEALTH_ERROR_WAITING;
    }

    if (viewer) {
        JANUS_LOG(LOG_WARN, "[telehealth] participant %s (viewer) may not "
                  "publish in room %s\n", participant->id, room->id);
        janus_refcount_decrease(&participant->ref);
        if (jsep != NULL) {
            janus_telehealth_close_pc(session);
        }
        g_snprintf(error, error_size, "Viewers cannot publish media");
        return JANUS_TELEHEALTH_ERROR_PUBLISH_NOT_ALLOWED;
    }

    type = json_string_value(json_object_get(jsep, "type"));
    sdp = json_string_value(json_object_get(jsep, "sdp"));
    if (type == NULL || sdp == NULL || strcasecmp(type, "offer") != 0) {
        janus_refcount_decrease(&participant->ref);
        g_snprintf(error, error_size, "publish needs a JSEP offer");
        return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
    }

    offer = janus_sdp_parse(sdp, parse_error, sizeof(parse_error));
    if (offer == NULL) {
        janus_refcount_decrease(&participant->ref);
        g_snprintf(error, error_size, "Invalid SDP offer: %s", parse_error);
        return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
    }

    feed = g_malloc0(sizeof(janus_telehealth_feed));
    feed->participant_id = g_strdup(participant->id);
    feed->msid = g_strdup(participant->id);
    g_strdelimit(feed->msid, ":", '-');
    janus_refcount_increase(&session->ref);
    feed->session = session;
    janus_refcount_increase(&room->ref);
    feed->room = room;
    feed->streams = g_ptr_array_new();
    feed->bitrate = room->bitrate;
    g_atomic_int_set(&feed->active, 1);
    janus_refcount_init(&feed->ref, janus_telehealth_feed_free);

    descriptions = json_object_get(root, "descriptions");
    answer = janus_telehealth_publish_answer(offer, descriptions, feed);
    janus_sdp_destroy(offer);

    if (feed->streams->len == 0) {
        janus_sdp_destroy(answer);
        janus_refcount_decrease(&feed->ref);
        janus_refcount_decrease(&participant->ref);
        g_snprintf(error, error_size, "The offer has no Opus audio or VP8 "
                   "video to send");
        return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
    }

    sdp_text = janus_sdp_write(answer);
    janus_sdp_destroy(answer);
    answer_jsep = json_pack("{s:s, s:s}", "type", "answer", "sdp", sdp_text);
    g_free(sdp_text);

    /* A renegotiation with the same streams keeps the feed as it is. */
    old = janus_telehealth_session_feed(session);
    if (old != NULL && janus_telehealth_feed_same(old, feed)) {
        janus_refcount_decrease(&feed->ref);
        feed = old;

    } else {
        if (old != NULL) {
            janus_telehealth_feed_remove(old);
            janus_refcount_decrease(&old->ref);
        }

        janus_mutex_lock(&room->mutex);
        janus_refcount_increase(&feed->ref);
        room->feeds = g_list_append(room->feeds, feed);
        janus_mutex_unlock(&room->mutex);

        janus_mutex_lock(&session->mutex);
        session->feed = feed;   /* takes our reference */
        janus_mutex_unlock(&session->mutex);

        /* A chair's mute outlives a new PeerConnection. */
        janus_mutex_lock(&room->mutex);
        janus_telehealth_media_block(session, participant->audio_blocked,
                                     participant->video_blocked);
        janus_mutex_unlock(&room->mutex);

        JANUS_LOG(LOG_INFO, "[telehealth] participant %s publishes %u "
                  "streams in room %s\n", participant->id,
                  feed->streams->len, room->id);
    }

    event = json_object();
    json_object_set_new(event, "telehealth", json_string("published"));
    json_object_set_new(event, "room", json_string(room->id));
    json_object_set_new(event, "streams",
                        janus_telehealth_feed_streams_json(feed));
    json_object_set_new(event, "bitrate", json_integer(feed->bitrate));
    janus_telehealth_push_jsep(session, transaction, event, answer_jsep);
    json_decref(event);
    json_decref(answer_jsep);

    if (feed == old) {
        janus_refcount_decrease(&old->ref);

    } else {
        janus_telehealth_room_push_participants(room, NULL);
    }

    janus_telehealth_room_renegotiate(room);
    janus_refcount_decrease(&participant->ref);

    return 0;
}


int
janus_telehealth_media_unpublish(janus_telehealth_session *session,
    const char *transaction, char *error, size_t error_size)
{
    json_t                 *event;
    janus_telehealth_feed  *feed;
    janus_telehealth_room  *room;

    feed = janus_telehealth_session_feed(session);
    if (feed == NULL) {
        g_snprintf(error, error_size, "Not publishing");
        return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
    }

    room = feed->room;
    janus_refcount_increase(&room->ref);
    janus_telehealth_feed_remove(feed);
    janus_refcount_decrease(&feed->ref);

    event = json_pack("{s:s, s:s}", "telehealth", "unpublished",
                      "room", room->id);
    janus_telehealth_push(session, transaction, event);
    json_decref(event);

    janus_telehealth_close_pc(session);
    janus_telehealth_room_renegotiate(room);
    janus_telehealth_room_push_participants(room, NULL);
    janus_telehealth_room_unref(room);

    return 0;
}


int
janus_telehealth_media_subscribe(janus_telehealth_session *session,
    janus_telehealth_room *room, const char *participant_id,
    const char *transaction, char *error, size_t error_size)
{
    gboolean                       busy, joined, waiting;
    janus_telehealth_subscriber   *sub;
    janus_telehealth_participant  *p;

    janus_mutex_lock(&session->mutex);
    busy = session->participant != NULL || session->feed != NULL
           || session->subscriber != NULL;
    janus_mutex_unlock(&session->mutex);

    if (busy) {
        g_snprintf(error, error_size, "This handle is already in a room or "
                   "subscribed: subscribe from a handle of its own");
        return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
    }

    janus_mutex_lock(&room->mutex);
    p = g_hash_table_lookup(room->participants, participant_id);
    joined = p != NULL && p->session != NULL
             && !g_atomic_int_get(&room->closed);
    waiting = joined && p->waiting;
    janus_mutex_unlock(&room->mutex);

    if (!joined) {
        g_snprintf(error, error_size, "Join the room before subscribing");
        return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
    }

    if (waiting) {
        g_snprintf(error, error_size, "Please wait: a chair has not "
                   "admitted you yet");
        return JANUS_TELEHEALTH_ERROR_WAITING;
    }

    sub = g_malloc0(sizeof(janus_telehealth_subscriber));
    janus_refcount_increase(&session->ref);
    sub->session = session;
    janus_refcount_increase(&room->ref);
    sub->room = room;
    sub->participant_id = g_strdup(participant_id);
    sub->streams = g_ptr_array_new_with_free_func(
        (GDestroyNotify) janus_telehealth_sub_stream_unref);
    janus_mutex_init(&sub->mutex);
    janus_refcount_init(&sub->ref, janus_telehealth_subscriber_free);

    janus_mutex_lock(&room->mutex);
    janus_refcount_increase(&sub->ref);
    room->subscribers = g_list_append(room->subscribers, sub);
    janus_mutex_unlock(&room->mutex);

    janus_mutex_lock(&session->mutex);
    session->subscriber = sub;   /* takes our reference */
    janus_mutex_unlock(&session->mutex);

    JANUS_LOG(LOG_VERB, "[telehealth] participant %s subscribes in room %s\n",
              participant_id, room->id);

    (void) janus_telehealth_subscriber_sync(sub);
    janus_telehealth_subscriber_offer(sub, "subscribed", transaction);

    return 0;
}


int
janus_telehealth_media_start(janus_telehealth_session *session,
    json_t *jsep, const char *transaction, char *error, size_t error_size)
{
    guint                          i;
    GList                         *keyframes, *l;
    json_t                        *event;
    const char                    *type;
    janus_telehealth_feed         *feed;
    janus_telehealth_subscriber   *sub;
    janus_telehealth_sub_stream   *ss;
    janus_telehealth_feed_stream  *fs;

    sub = janus_telehealth_session_subscriber(session);
    if (sub == NULL) {
        g_snprintf(error, error_size, "Not subscribed");
        return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
    }

    type = json_string_value(json_object_get(jsep, "type"));
    if (type == NULL || strcasecmp(type, "answer") != 0
        || !json_is_string(json_object_get(jsep, "sdp")))
    {
        janus_telehealth_subscriber_unref(sub);
        g_snprintf(error, error_size, "start needs a JSEP answer");
        return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
    }

    if (sub->answered || sub->sdp_version == 0) {
        janus_telehealth_subscriber_unref(sub);
        g_snprintf(error, error_size, "No offer to answer");
        return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
    }

    keyframes = NULL;

    janus_mutex_lock(&sub->mutex);
    sub->answered = TRUE;
    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        if (ss->feed == NULL || !ss->in_offer) {
            continue;
        }
        if (!g_atomic_int_get(&ss->ready)) {
            g_atomic_int_set(&ss->ready, 1);
            if (ss->type == JANUS_TELEHEALTH_VIDEO) {
                janus_refcount_increase(&ss->ref);
                keyframes = g_list_prepend(keyframes, ss);
            }
        }
    }
    janus_mutex_unlock(&sub->mutex);

    event = json_pack("{s:s, s:s}", "telehealth", "started",
                      "room", sub->room->id);
    janus_telehealth_push(session, transaction, event);
    json_decref(event);

    /* The new receivers need a keyframe to start decoding. */
    for (l = keyframes; l != NULL; l = l->next) {
        ss = l->data;
        janus_mutex_lock(&sub->mutex);
        feed = ss->feed;
        fs = ss->fstream;
        if (feed != NULL) {
            janus_refcount_increase(&feed->ref);
        }
        janus_mutex_unlock(&sub->mutex);

        if (feed != NULL) {
            janus_telehealth_feed_keyframe(feed, fs);
            janus_refcount_decrease(&feed->ref);
        }
        janus_telehealth_sub_stream_unref(ss);
    }
    g_list_free(keyframes);

    if (sub->offer_pending) {
        janus_telehealth_subscriber_offer(sub, "updated", NULL);
    }

    janus_telehealth_subscriber_unref(sub);

    return 0;
}


void
janus_telehealth_media_session_gone(janus_telehealth_session *session,
    gboolean pc_only)
{
    janus_telehealth_feed        *feed;
    janus_telehealth_room        *room;
    janus_telehealth_subscriber  *sub;

    feed = janus_telehealth_session_feed(session);
    if (feed != NULL) {
        room = feed->room;
        janus_refcount_increase(&room->ref);
        janus_telehealth_feed_remove(feed);
        janus_refcount_decrease(&feed->ref);

        if (pc_only) {
            json_t  *event;

            event = json_pack("{s:s, s:s, s:s}", "telehealth", "unpublished",
                              "room", room->id, "reason", "hangup");
            janus_telehealth_push(session, NULL, event);
            json_decref(event);
        }

        janus_telehealth_room_renegotiate(room);
        if (!g_atomic_int_get(&room->closed)) {
            janus_telehealth_room_push_participants(room, NULL);
        }
        janus_telehealth_room_unref(room);
    }

    sub = janus_telehealth_session_subscriber(session);
    if (sub != NULL) {
        janus_telehealth_subscriber_remove(sub, TH_LEFT_HANGUP, FALSE);
        janus_telehealth_subscriber_unref(sub);
    }
}


void
janus_telehealth_media_participant_out(janus_telehealth_room *room,
    janus_telehealth_session *session, const char *participant_id,
    const char *reason)
{
    GList                        *subs, *l;
    gboolean                      renegotiate;
    janus_telehealth_feed        *feed;
    janus_telehealth_subscriber  *sub;

    renegotiate = FALSE;

    feed = session != NULL ? janus_telehealth_session_feed(session) : NULL;
    if (feed != NULL) {
        janus_telehealth_feed_remove(feed);
        janus_refcount_decrease(&feed->ref);
        janus_telehealth_close_pc(session);
        renegotiate = TRUE;
    }

    subs = NULL;
    janus_mutex_lock(&room->mutex);
    for (l = room->subscribers; l != NULL; l = l->next) {
        sub = l->data;
        if (strcmp(sub->participant_id, participant_id) == 0) {
            janus_refcount_increase(&sub->ref);
            subs = g_list_prepend(subs, sub);
        }
    }
    janus_mutex_unlock(&room->mutex);

    for (l = subs; l != NULL; l = l->next) {
        janus_telehealth_subscriber_remove(l->data, reason, TRUE);
        janus_telehealth_subscriber_unref(l->data);
    }
    g_list_free(subs);

    if (renegotiate) {
        janus_telehealth_room_renegotiate(room);
    }
}


void
janus_telehealth_media_room_clear(janus_telehealth_room *room)
{
    GList                  *list, *l;
    janus_telehealth_feed  *feed;

    janus_mutex_lock(&room->mutex);
    list = g_list_copy(room->feeds);
    for (l = list; l != NULL; l = l->next) {
        janus_refcount_increase(&((janus_telehealth_feed *) l->data)->ref);
    }
    janus_mutex_unlock(&room->mutex);

    for (l = list; l != NULL; l = l->next) {
        feed = l->data;
        janus_telehealth_feed_remove(feed);
        janus_telehealth_close_pc(feed->session);
        janus_refcount_decrease(&feed->ref);
    }
    g_list_free(list);

    janus_mutex_lock(&room->mutex);
    list = g_list_copy(room->subscribers);
    for (l = list; l != NULL; l = l->next) {
        janus_refcount_increase(
            &((janus_telehealth_subscriber *) l->data)->ref);
    }
    janus_mutex_unlock(&room->mutex);

    for (l = list; l != NULL; l = l->next) {
        janus_telehealth_subscriber_remove(l->data, TH_LEFT_ROOM_CLOSED,
                                           TRUE);
        janus_telehealth_subscriber_unref(l->data);
    }
    g_list_free(list);
}


void
janus_telehealth_media_block(janus_telehealth_session *session, int audio,
    int video)
{
    guint                          i;
    int                            block;
    gboolean                       resumed;
    janus_telehealth_feed         *feed;
    janus_telehealth_feed_stream  *fs;

    feed = janus_telehealth_session_feed(session);
    if (feed == NULL) {
        return;
    }

    for (i = 0; i < feed->streams->len; i++) {
        fs = g_ptr_array_index(feed->streams, i);
        block = fs->type == JANUS_TELEHEALTH_AUDIO ? audio : video;
        if (block < 0) {
            continue;
        }
        resumed = g_atomic_int_get(&fs->blocked) && !block;
        g_atomic_int_set(&fs->blocked, block ? 1 : 0);

        /* Receivers decode again from a keyframe. */
        if (resumed) {
            janus_telehealth_feed_keyframe(feed, fs);
        }
    }

    janus_refcount_decrease(&feed->ref);
}


void
janus_telehealth_media_stop_publishing(janus_telehealth_session *session,
    const char *reason)
{
    json_t                 *event;
    janus_telehealth_feed  *feed;
    janus_telehealth_room  *room;

    feed = janus_telehealth_session_feed(session);
    if (feed == NULL) {
        return;
    }

    room = feed->room;
    janus_refcount_increase(&room->ref);
    janus_telehealth_feed_remove(feed);
    janus_refcount_decrease(&feed->ref);

    event = json_pack("{s:s, s:s, s:s}", "telehealth", "unpublished",
                      "room", room->id, "reason", reason);
    janus_telehealth_push(session, NULL, event);
    json_decref(event);

    janus_telehealth_close_pc(session);
    janus_telehealth_room_renegotiate(room);
    janus_telehealth_room_unref(room);
}


void
janus_telehealth_media_renegotiate(janus_telehealth_room *room)
{
    janus_telehealth_room_renegotiate(room);
}


void
janus_telehealth_media_feed_state(janus_telehealth_session *session,
    gboolean *publishing, gboolean *screen_sharing)
{
    guint                          i, nvideo;
    janus_telehealth_feed_stream  *fs;

    *publishing = FALSE;
    *screen_sharing = FALSE;
    nvideo = 0;

    janus_mutex_lock(&session->mutex);
    if (session->feed != NULL) {
        *publishing = TRUE;
        for (i = 0; i < session->feed->streams->len; i++) {
            fs = g_ptr_array_index(session->feed->streams, i);
            if (fs->type != JANUS_TELEHEALTH_VIDEO) {
                continue;
            }
            nvideo++;
            if (nvideo > 1 || strcmp(fs->description, "screen") == 0) {
                *screen_sharing = TRUE;
            }
        }
    }
    janus_mutex_unlock(&session->mutex);
}


/* Media callbacks (the core's threads) */

static janus_telehealth_session *
janus_telehealth_media_session(janus_plugin_session *handle)
{
    janus_telehealth_session  *session;

    if (handle == NULL || g_atomic_int_get(&handle->stopped)
        || g_atomic_int_get(&janus_telehealth_stopping))
    {
        return NULL;
    }

    session = handle->plugin_handle;
    if (session == NULL || g_atomic_int_get(&session->destroyed)) {
        return NULL;
    }

    return session;
}


void
janus_telehealth_setup_media(janus_plugin_session *handle)
{
    guint                          i;
    GList                         *keyframes, *l;
    janus_telehealth_session      *session;
    janus_telehealth_subscriber   *sub;
    janus_telehealth_sub_stream   *ss;

    session = janus_telehealth_media_session(handle);
    if (session == NULL) {
        return;
    }

    g_atomic_int_set(&session->hangingup, 0);
    JANUS_LOG(LOG_VERB, "[telehealth] PeerConnection up\n");

    sub = janus_telehealth_session_subscriber(session);
    if (sub == NULL) {
        return;
    }

    /* Receivers start with a keyframe of every video they get. */
    keyframes = NULL;
    janus_mutex_lock(&sub->mutex);
    for (i = 0; i < sub->streams->len; i++) {
        ss = g_ptr_array_index(sub->streams, i);
        if (ss->feed != NULL && ss->type == JANUS_TELEHEALTH_VIDEO) {
            janus_refcount_increase(&ss->feed->ref);
            keyframes = g_list_prepend(keyframes, ss->feed);
            keyframes = g_list_prepend(keyframes, ss->fstream);
        }
    }
    janus_mutex_unlock(&sub->mutex);

    for (l = keyframes; l != NULL; l = l->next->next) {
        /* fstream, then its feed (which keeps it alive) */
        janus_telehealth_feed_keyframe(l->next->data, l->data);
        janus_refcount_decrease(
            &((janus_telehealth_feed *) l->next->data)->ref);
    }
    g_list_free(keyframes);

    janus_telehealth_subscriber_unref(sub);
}


void
janus_telehealth_incoming_rtp(janus_plugin_session *handle,
    janus_plugin_rtp *packet)
{
    guint                          i;
    gint64                         now;
    guint16                        seq;
    guint32                        ssrc, ts;
    GSList                        *l;
    gboolean                       video;
    janus_rtp_header              *header;
    janus_plugin_rtp               out;
    janus_plugin_session          *target;
    janus_telehealth_feed         *feed;
    janus_telehealth_session      *session;
    janus_telehealth_sub_stream   *ss;
    janus_telehealth_feed_stream  *fs;
    int                            pt;

    session = janus_telehealth_media_session(handle);
    if (session == NULL || packet == NULL || packet->buffer == NULL
        || packet->length < 12)
    {
        return;
    }

    /* Only an accepted publisher's media goes anywhere: a viewer, a
     * subscriber or a handle that never published has no feed. */
    feed = janus_telehealth_session_feed(session);
    if (feed == NULL) {
        return;
    }

    fs = NULL;
    for (i = 0; i < feed->streams->len; i++) {
        fs = g_ptr_array_index(feed->streams, i);
        if (fs->mindex == packet->mindex) {
            break;
        }
        fs = NULL;
    }

    if (fs == NULL || !g_atomic_int_get(&feed->active)
        || g_atomic_int_get(&fs->blocked))
    {
        janus_refcount_decrease(&feed->ref);
        return;
    }

    video = fs->type == JANUS_TELEHEALTH_VIDEO;

    if (video && feed->bitrate > 0) {
        now = janus_get_monotonic_time();
        if (now - feed->remb_last >= JANUS_TELEHEALTH_REMB_INTERVAL) {
            feed->remb_last = now;
            janus_telehealth_gateway->send_remb(handle, feed->bitrate);
        }
    }

    header = (janus_rtp_header *) packet->buffer;
    ssrc = header->ssrc;
    seq = header->seq_number;
    ts = header->timestamp;
    pt = header->type;

    janus_mutex_lock(&fs->mutex);
    for (l = fs->subscribers; l != NULL; l = l->next) {
        ss = l->data;
        target = ss->subscriber->session->handle;
        if (!g_atomic_int_get(&ss->ready) || target == NULL
            || g_atomic_int_get(&target->stopped))
        {
            continue;
        }

        janus_rtp_header_update(header, &ss->context, video, 0);
        header->type = ss->pt;

        memset(&out, 0, sizeof(out));
        janus_plugin_rtp_extensions_reset(&out.extensions);
        out.mindex = ss->mindex;
        out.video = video;
        out.buffer = packet->buffer;
        out.length = packet->length;
        janus_telehealth_gateway->relay_rtp(target, &out);

        header->ssrc = ssrc;
        header->seq_number = seq;
        header->timestamp = ts;
        header->type = pt;
    }
    janus_mutex_unlock(&fs->mutex);

    janus_refcount_decrease(&feed->ref);
}


void
janus_telehealth_incoming_rtcp(janus_plugin_session *handle,
    janus_plugin_rtcp *packet)
{
    janus_telehealth_feed         *feed;
    janus_telehealth_session      *session;
    janus_telehealth_subscriber   *sub;
    janus_telehealth_sub_stream   *ss;
    janus_telehealth_feed_stream  *fs;

    session = janus_telehealth_media_session(handle);
    if (session == NULL || packet == NULL || packet->buffer == NULL) {
        return;
    }

    if (!janus_rtcp_has_pli(packet->buffer, packet->length)
        && !janus_rtcp_has_fir(packet->buffer, packet->length))
    {
        return;
    }

    /* A subscriber asks for a keyframe: ask the publisher it watches. */
    sub = janus_telehealth_session_subscriber(session);
    if (sub == NULL) {
        return;
    }

    feed = NULL;
    fs = NULL;

    janus_mutex_lock(&sub->mutex);
    if (packet->mindex >= 0 && (guint) packet->mindex < sub->streams->len) {
        ss = g_ptr_array_index(sub->streams, packet->mindex);
        if (ss->feed != NULL) {
            feed = ss->feed;
            fs = ss->fstream;
            janus_refcount_increase(&feed->ref);
        }
    }
    janus_mutex_unlock(&sub->mutex);

    if (feed != NULL) {
        janus_telehealth_feed_keyframe(feed, fs);
        janus_refcount_decrease(&feed->ref);
    }

    janus_telehealth_subscriber_unref(sub);
}


void
janus_telehealth_incoming_data(janus_plugin_session *handle,
    janus_plugin_data *packet)
{
}


void
janus_telehealth_data_ready(janus_plugin_session *handle)
{
}


void
janus_telehealth_slow_link(janus_plugin_session *handle, int mindex,
    gboolean video, gboolean uplink)
{
}


void
janus_telehealth_hangup_media(janus_plugin_session *handle)
{
    janus_telehealth_session  *session;

    session = janus_telehealth_media_session(handle);
    if (session == NULL) {
        return;
    }

    if (!g_atomic_int_compare_and_exchange(&session->hangingup, 0, 1)) {
        return;
    }

    /*
     * The PeerConnection is gone (ICE failure, DTLS alert, the peer hung
     * up): what it published or received stops, the person stays in the
     * room and may publish or subscribe again.
     */
    janus_telehealth_session_media_hangup(session);
}
