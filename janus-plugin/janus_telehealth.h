/*
 * janus.plugin.telehealth: declarations shared by the plugin's files.
 *
 *   janus_telehealth.c           plugin glue, sessions, handler thread,
 *                                request parsing and answers
 *   janus_telehealth_config.c    the configuration file
 *   janus_telehealth_room.c      rooms and participants in memory (the
 *                                registry), close, configure
 *   janus_telehealth_join.c      join and leave
 *   janus_telehealth_housekeeping.c  the housekeeping thread: leases,
 *                                duration limits, empty rooms
 *   janus_telehealth_redis.c     Redis connections and the scripts that
 *                                keep room state consistent across nodes
 *   janus_telehealth_events.c    the events stream (plugin -> nginx)
 *   janus_telehealth_commands.c  commands from nginx (pub/sub)
 *   janus_telehealth_moderation.c  chairs' requests
 *   janus_telehealth_breakout.c  breakout rooms of a group session
 *   janus_telehealth_media.c     feeds and subscribers (the SFU)
 *   janus_telehealth_receivers.c who may subscribe: one-time tokens of the
 *                                joined handle, the cap, the chairs' view
 *   janus_telehealth_sdp.c       their SDP offers and answers
 *   janus_telehealth_forward.c   the media callbacks: RTP and RTCP
 *                                forwarding
 *
 * Threads: the Janus core calls into us from its own threads; every
 * request that needs Redis goes through the message queue to the handler
 * thread, which is the only thread that changes rooms.  The housekeeping,
 * command and events threads each own one Redis connection.  The media
 * callbacks never take a global lock and never touch Redis.
 */

#ifndef JANUS_TELEHEALTH_H
#define JANUS_TELEHEALTH_H

#include <glib.h>
#include <jansson.h>

#include <plugins/plugin.h>
#include <mutex.h>
#include <refcount.h>

#include "th_names.h"
#include "th_token.h"


#define JANUS_TELEHEALTH_VERSION 1
#define JANUS_TELEHEALTH_VERSION_STRING "0.1.0"
#define JANUS_TELEHEALTH_NAME "JANUS Telehealth plugin"
#define JANUS_TELEHEALTH_DESCRIPTION \
	"Telehealth rooms: join credentials, roles, participants, " \
	"one room per patient across nodes."
#define JANUS_TELEHEALTH_AUTHOR "Telehealth project"
#define JANUS_TELEHEALTH_PACKAGE TH_PLUGIN_PACKAGE


/* Error codes of the plugin protocol (docs/plugin.md). */
#define JANUS_TELEHEALTH_ERROR_NO_MESSAGE 470
#define JANUS_TELEHEALTH_ERROR_INVALID_JSON 471
#define JANUS_TELEHEALTH_ERROR_INVALID_REQUEST 472
#define JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT 473
#define JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT 474
#define JANUS_TELEHEALTH_ERROR_ACCESS_DENIED 475
#define JANUS_TELEHEALTH_ERROR_IN_SESSION 476
#define JANUS_TELEHEALTH_ERROR_BANNED 477
#define JANUS_TELEHEALTH_ERROR_SUBSCRIPTION_LIMIT 478
#define JANUS_TELEHEALTH_ERROR_SUBSCRIPTION_REFUSED 479
#define JANUS_TELEHEALTH_ERROR_INVALID_CREDENTIAL 480
#define JANUS_TELEHEALTH_ERROR_CREDENTIAL_EXPIRED 481
#define JANUS_TELEHEALTH_ERROR_WRONG_AUDIENCE 482
#define JANUS_TELEHEALTH_ERROR_UNKNOWN_KEY 483
#define JANUS_TELEHEALTH_ERROR_CREDENTIAL_REVOKED 484
#define JANUS_TELEHEALTH_ERROR_NO_SUCH_ROOM 485
#define JANUS_TELEHEALTH_ERROR_ROOM_CLOSED 486
#define JANUS_TELEHEALTH_ERROR_ALREADY_JOINED 487
#define JANUS_TELEHEALTH_ERROR_NOT_JOINED 488
#define JANUS_TELEHEALTH_ERROR_REDIS_UNAVAILABLE 489
#define JANUS_TELEHEALTH_ERROR_ROOM_FULL 490
#define JANUS_TELEHEALTH_ERROR_WRONG_NODE 491
#define JANUS_TELEHEALTH_ERROR_PUBLISH_NOT_ALLOWED 492
#define JANUS_TELEHEALTH_ERROR_INVALID_SDP 493
#define JANUS_TELEHEALTH_ERROR_WRONG_STATE 494
#define JANUS_TELEHEALTH_ERROR_NOT_CHAIR 495
#define JANUS_TELEHEALTH_ERROR_WAITING 496
#define JANUS_TELEHEALTH_ERROR_NO_SUCH_PARTICIPANT 497
#define JANUS_TELEHEALTH_ERROR_NOT_YET 498
#define JANUS_TELEHEALTH_ERROR_UNKNOWN_ERROR 499

#define JANUS_TELEHEALTH_EV_COMMAND_RESULT TH_EV_COMMAND_RESULT

/* The actor of a chair.action that nginx asked for (a command). */
#define JANUS_TELEHEALTH_ACTOR_COMMAND "command"

/* Chairs are warned this many seconds before the room's duration limit. */
#define JANUS_TELEHEALTH_DURATION_WARNING 300

/* Longest room or participant id we accept (they become Redis keys). */
#define JANUS_TELEHEALTH_ID_MAX 128


/* Settings from janus.plugin.telehealth.jcfg, read once at init. */
typedef struct janus_telehealth_config {
	char *redis_address; /* "IP:port" or a unix socket path */
	char *redis_prefix;
	int redis_connect_timeout_ms;
	int redis_command_timeout_ms;
	char *redis_user; /* ACL user, NULL: no AUTH */
	char *redis_password; /* read from redis_password_file */
	char *redis_master; /* Sentinel's name, NULL: no Sentinel */
	char **redis_sentinels; /* "IP:port", NULL-terminated */
	int redis_wait_replicas; /* WAIT after each event, 0: none */
	int redis_wait_timeout_ms;
	char *node_id;
	gboolean event_stream;
	int event_stream_maxlen; /* 0: no trimming */
	int refresh_interval; /* seconds */
	int closed_room_ttl; /* seconds */
	int empty_room_timeout; /* seconds, 0: never */
	int credential_leeway; /* seconds of clock skew */
	int max_participants; /* 0: no limit */
	int max_subscriptions; /* per participant */
	int bitrate; /* bps cap of published video */
	char *public_url; /* clients' WebSocket URL; NULL: none */
	gboolean draining; /* takes no new rooms (docs/plugin.md) */
	th_keyset_t keys;
} janus_telehealth_config;

extern janus_telehealth_config janus_telehealth_cfg;

/* janus_telehealth_config.c */
int janus_telehealth_config_load(const char *config_path);
void janus_telehealth_config_clear(void);
/* Ids end up in Redis keys: a small alphabet keeps keys unambiguous. */
gboolean janus_telehealth_id_valid(const char *id, gboolean allow_colon);
extern janus_callbacks *janus_telehealth_gateway;
extern janus_plugin janus_telehealth_plugin;
extern volatile gint janus_telehealth_stopping;


typedef struct janus_telehealth_room janus_telehealth_room;
typedef struct janus_telehealth_participant janus_telehealth_participant;
typedef struct janus_telehealth_feed janus_telehealth_feed;
typedef struct janus_telehealth_subscriber janus_telehealth_subscriber;

/* One Janus handle attached to the plugin. */
typedef struct janus_telehealth_session {
	janus_plugin_session *handle;
	/* Set while joined; guarded by mutex, changed by the handler thread. */
	janus_telehealth_participant *participant;
	/* What the handle's PeerConnection carries (reference or NULL); guarded
     * by mutex, changed by the handler thread.  A joined handle may publish
     * a feed; a second handle subscribes to the others' feeds. */
	janus_telehealth_feed *feed;
	janus_telehealth_subscriber *subscriber;
	gboolean joining; /* a join is under way; mutex */
	janus_mutex mutex;
	volatile gint hangingup;
	volatile gint destroyed;
	janus_refcount ref;
} janus_telehealth_session;

/* A person in a room, seen from this node. */
struct janus_telehealth_participant {
	char *id; /* "staff:<uuid>", "patient:<uuid>" */
	char *display; /* PHI: never logged */
	const char *role; /* one of TH_ROLE_* */
	gboolean audio_muted;
	gboolean video_paused;
	/* Guarded by the room mutex, changed by the handler thread. */
	gboolean audio_only; /* no camera: declared at
                                                   * join or none published */
	gboolean waiting; /* not admitted yet */
	gboolean audio_blocked; /* muted by a chair */
	gboolean video_blocked;
	char *breakout; /* NULL: main room */
	char *jti; /* of the credential */
	/* The one-time subscription token handed to the joined handle, NULL
     * when none is outstanding (janus_telehealth_receivers.c). */
	char *subscribe_token;
	gint64 exp; /* its expiry, Unix s */
	guint64 seq; /* join order in the room */
	janus_telehealth_room *room; /* reference */
	janus_telehealth_session *session; /* reference, NULL once detached */
	janus_refcount ref;
};

/* A room this node hosts. */
struct janus_telehealth_room {
	char *id;
	char *session_id; /* telehealth session */
	char *org_id;
	char *kind;
	char *patient_id; /* NULL: no patient lock */
	/* participant id -> participant (reference); guarded by mutex */
	GHashTable *participants;
	gint64 empty_since; /* monotonic us, 0: not empty */
	/* The room hash's empty_timeout (s, 0: never), -1 when it has none;
     * read at each join and refresh. */
	volatile gint empty_timeout;
	guint32 bitrate; /* video cap, bps; 0: none */
	/* Policies from the room hash (docs/redis.md), refreshed on each
     * join; guarded by mutex, changed by the handler thread. */
	char *leave_policy;
	gint64 opened_at_ms; /* Unix ms */
	gint64 duration_limit; /* s, 0: none */
	gboolean warned;
	/* Participant ids admitted once (rejoin without waiting again). */
	GHashTable *admitted;
	/* Breakout room ids, in order of creation. */
	GList *breakouts;
	guint breakout_seq;
	/* Published feeds and subscribers (references, in order of arrival);
     * guarded by mutex, changed by the handler thread. */
	GList *feeds;
	GList *subscribers;
	volatile gint closed;
	janus_mutex mutex;
	janus_refcount ref;
};


/* janus_telehealth.c */
void janus_telehealth_session_unref(janus_telehealth_session *session);
void janus_telehealth_push(janus_telehealth_session *session, const char *transaction, json_t *event);
void janus_telehealth_push_error(
	janus_telehealth_session *session, const char *transaction, int error_code, const char *error);
void janus_telehealth_enqueue_room_task(int kind, const char *room_id, const char *reason, json_t *command);

/* Kinds of work the handler thread does besides client requests. */
enum {
	JANUS_TELEHEALTH_TASK_EXPIRE = 1, /* empty-room timeout reached */
	JANUS_TELEHEALTH_TASK_LOST, /* room no longer ours in Redis */
	JANUS_TELEHEALTH_TASK_COMMAND, /* command from nginx */
	JANUS_TELEHEALTH_TASK_DEADLINE, /* duration limit near or reached */
	JANUS_TELEHEALTH_TASK_JOINED /* the join script answered */
};


/* janus_telehealth_room.c: the handler thread calls these */
typedef struct janus_telehealth_join {
	const char *room_id;
	const char *session_id;
	const char *org_id;
	const char *kind;
	const char *participant_id;
	const char *display;
	const char *role;
	const char *jti;
	gint64 iat;
	gint64 exp;
	gboolean unlisted; /* staff admitted by the level, not the list */
	gboolean admitted; /* admitted before the room ran (a group's
                                 * registrant): skips the waiting room */
	gboolean audio_only; /* joins without a camera ("audio_only") */
	gint64 started; /* monotonic us: the request arrived */
} janus_telehealth_join;

/* A join under way (janus_telehealth_join.c). */
typedef struct janus_telehealth_join_job janus_telehealth_join_job;

/* A request's answer comes later, pushed by another step. */
#define JANUS_TELEHEALTH_ANSWER_LATER 1

int janus_telehealth_joins_init(void);
void janus_telehealth_joins_deinit(void);
gboolean janus_telehealth_joins_busy(void);
void janus_telehealth_join_job_free(janus_telehealth_join_job *job);
int janus_telehealth_room_join_finish(janus_telehealth_join_job *job, char *error, size_t error_size);
void janus_telehealth_room_join_next(const char *room_id);

/*
 * Redis work for a room off the handler thread: work runs on a join
 * worker (its Redis connection), then done on the handler thread; a
 * room's jobs and joins run in the order they were asked.  The handler
 * thread only.  data belongs to done (work alone when done is NULL).
 */
struct janus_telehealth_redis;
typedef void (*janus_telehealth_room_work)(struct janus_telehealth_redis *redis, void *data);
typedef void (*janus_telehealth_room_done)(void *data);
void janus_telehealth_room_redis(
	const char *room_id, janus_telehealth_room_work work, janus_telehealth_room_done done, void *data);
gboolean janus_telehealth_room_redis_finish(janus_telehealth_join_job *job);
const char *janus_telehealth_join_job_room(const janus_telehealth_join_job *job);
const char *janus_telehealth_join_job_transaction(const janus_telehealth_join_job *job);
janus_telehealth_session *janus_telehealth_join_job_session(const janus_telehealth_join_job *job);
gint64 janus_telehealth_join_job_started(const janus_telehealth_join_job *job);
/* A member's flags to Redis, behind the request (member is taken). */
void janus_telehealth_member_update(const char *room_id, const char *participant_id, char *member);
/* janus_telehealth.c: a worker hands a join's answer to the handler. */
void janus_telehealth_enqueue_joined(janus_telehealth_join_job *job);

int janus_telehealth_rooms_init(void);
void janus_telehealth_rooms_deinit(void);
int janus_telehealth_room_join(janus_telehealth_session *session, const janus_telehealth_join *join,
	const char *transaction, char *error, size_t error_size);
int janus_telehealth_room_leave(janus_telehealth_session *session, const char *reason, const char *transaction);
int janus_telehealth_room_configure(
	janus_telehealth_session *session, json_t *audio_muted, json_t *video_paused, const char *transaction);
void janus_telehealth_room_expire(const char *room_id);
void janus_telehealth_room_lost(const char *room_id, const char *reason);
int janus_telehealth_room_close_by_id(const char *room_id, const char *reason, const char *command_id);
json_t *janus_telehealth_room_participants(janus_telehealth_room *room, gboolean with_waiting);
int janus_telehealth_room_remove_participant(
	janus_telehealth_room *room, const char *participant_id, const char *reason, gboolean ban);
janus_telehealth_participant *janus_telehealth_room_participant(
	janus_telehealth_room *room, const char *participant_id);
void janus_telehealth_participant_release(janus_telehealth_participant *p);
void janus_telehealth_room_close_now(janus_telehealth_room *room, const char *reason);
janus_telehealth_participant *janus_telehealth_session_participant(janus_telehealth_session *session);
janus_telehealth_room *janus_telehealth_session_room(janus_telehealth_session *session);
void janus_telehealth_room_unref(janus_telehealth_room *room);
janus_telehealth_room *janus_telehealth_room_find(const char *room_id);
void janus_telehealth_room_deadline(const char *room_id);
/* The participants list changed: everyone is told. */
void janus_telehealth_room_push_participants(janus_telehealth_room *room, janus_telehealth_session *except);
/* Sends event to the room's chairs only. */
void janus_telehealth_room_push_chairs(janus_telehealth_room *room, json_t *event);
char *janus_telehealth_member_json(const janus_telehealth_participant *p);


/* janus_telehealth_moderation.c: chair requests and nginx commands
 * (handler thread).  Each returns 0 or an error code with a text. */
int janus_telehealth_moderation_request(janus_telehealth_session *session, const char *request, json_t *root,
	const char *transaction, char *error, size_t error_size);
gboolean janus_telehealth_moderation_is_request(const char *request);
/* actor: the chair's participant id, or "command" (nginx). */
int janus_telehealth_moderate_mute(janus_telehealth_room *room, const char *actor, const char *participant_id,
	json_t *audio, json_t *video, char *error, size_t error_size);
/* actor NULL: not a chair's decision (the access level changed), so no
 * ban and no chair.action. */
int janus_telehealth_moderate_remove(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *reason, char *error, size_t error_size);
int janus_telehealth_moderate_set_role(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *role, char *error, size_t error_size);
/* Breakout rooms of a group; breakout NULL (move): the main room. */
int janus_telehealth_moderate_breakout_create(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size);
int janus_telehealth_moderate_breakout_move(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *breakout, char *error, size_t error_size);
int janus_telehealth_moderate_breakout_close(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size);
/* A chair.action entry on the events stream (nginx audits each). */
void janus_telehealth_chair_action(const char *room_id, const char *session_id, const char *org_id, const char *action,
	const char *actor, const char *participant, const char *role, const char *breakout);


/* janus_telehealth_events.c */
int janus_telehealth_events_start(void);
void janus_telehealth_events_stop(void);
void janus_telehealth_event_emit(
	const char *type, const janus_telehealth_room *room, const char *participant, const char *role, const char *reason);
void janus_telehealth_event_emit_fields(const char *type, ...);


/* janus_telehealth_commands.c */
int janus_telehealth_commands_start(void);
void janus_telehealth_commands_stop(void);
void janus_telehealth_command_execute(json_t *command);
void janus_telehealth_command_result(const char *name, const char *id, const char *room_id, const char *result);


/* janus_telehealth_media.c: requests (handler thread) */
int janus_telehealth_media_publish(janus_telehealth_session *session, json_t *root, json_t *jsep,
	const char *transaction, char *error, size_t error_size);
int janus_telehealth_media_unpublish(
	janus_telehealth_session *session, const char *transaction, char *error, size_t error_size);
int janus_telehealth_media_subscribe(janus_telehealth_session *session, janus_telehealth_room *room,
	const char *participant_id, const char *transaction, char *error, size_t error_size);
int janus_telehealth_media_start(
	janus_telehealth_session *session, json_t *jsep, const char *transaction, char *error, size_t error_size);
/* The handle's PeerConnection or the handle itself is gone. */
void janus_telehealth_media_session_gone(janus_telehealth_session *session, gboolean pc_only);
/* A participant is out of the room (left, replaced, room closed). */
void janus_telehealth_media_participant_out(
	janus_telehealth_room *room, janus_telehealth_session *session, const char *participant_id, const char *reason);
/* Room closing or plugin stopping: drops every feed and subscriber. */
void janus_telehealth_media_room_clear(janus_telehealth_room *room);
/* A chair's mute: -1 keeps, 0 forwards again, 1 stops forwarding. */
void janus_telehealth_media_block(janus_telehealth_session *session, int audio, int video);
/* Stops what a participant publishes (role changed to viewer). */
void janus_telehealth_media_stop_publishing(janus_telehealth_session *session, const char *reason);
/* Someone moved between breakout rooms: new offers where needed. */
void janus_telehealth_media_renegotiate(janus_telehealth_room *room);
/* What the participants list shows of a session's feed. */
void janus_telehealth_media_feed_state(
	janus_telehealth_session *session, gboolean *publishing, gboolean *screen_sharing);

/* janus_telehealth_receivers.c: who receives (handler thread, but
 * receivers_json, which any thread may call) */
int janus_telehealth_receivers_token(
	janus_telehealth_session *session, const char *transaction, char *error, size_t error_size);
int janus_telehealth_receivers_subscribe(
	janus_telehealth_session *session, json_t *root, const char *transaction, char *error, size_t error_size);
/* [{"participant": id}] per subscription, in order of arrival. */
json_t *janus_telehealth_receivers_json(janus_telehealth_room *room);
/* A subscription started or ended: the chairs get "receivers". */
void janus_telehealth_receivers_changed(janus_telehealth_room *room);

/* janus_telehealth_media.c: the Janus media callbacks */
void janus_telehealth_setup_media(janus_plugin_session *handle);
void janus_telehealth_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet);
void janus_telehealth_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet);
void janus_telehealth_incoming_data(janus_plugin_session *handle, janus_plugin_data *packet);
void janus_telehealth_data_ready(janus_plugin_session *handle);
void janus_telehealth_slow_link(janus_plugin_session *handle, int mindex, gboolean video, gboolean uplink);
void janus_telehealth_hangup_media(janus_plugin_session *handle);

/* janus_telehealth.c: media.c hands hangups to the handler thread */
void janus_telehealth_session_hangup(janus_telehealth_session *session);
void janus_telehealth_session_media_hangup(janus_telehealth_session *session);
void janus_telehealth_push_jsep(
	janus_telehealth_session *session, const char *transaction, json_t *event, json_t *jsep);

#endif /* JANUS_TELEHEALTH_H */
