/*
 * The plugin's request handling (janus-plugin/janus_telehealth.c): a
 * message of any JSON through handle_message, as the Janus core hands it
 * over, then the request dispatch the handler thread runs (here on the
 * fuzzing thread, one message at a time), then the handle's end.  A
 * "jsep" member becomes the JSEP; a "credential" that is an object is
 * signed with the join key as the claims of a credential, so that
 * requests get past the signature.  Redis is a socket that does not
 * exist: every request that needs it fails as when Redis is down.  Every
 * event a client gets must be a JSON object.
 */

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../janus-plugin/janus_telehealth.c"

#include "fuzz_janus.h"


static th_keyset_t fuzz_signer;
static char        fuzz_dir[] = "/tmp/th-fuzz-janus-XXXXXX";


static void
fuzz_cleanup(void)
{
    char path[256];

    g_snprintf(path, sizeof(path), "%s/join.key", fuzz_dir);
    unlink(path);
    g_snprintf(path, sizeof(path), "%s/join.pub", fuzz_dir);
    unlink(path);
    g_snprintf(path, sizeof(path), "%s/%s.jcfg", fuzz_dir,
        JANUS_TELEHEALTH_PACKAGE);
    unlink(path);
    rmdir(fuzz_dir);
}


static void
fuzz_janus_handle_free(const janus_refcount *ref)
{
    g_free(janus_refcount_containerof(ref, janus_plugin_session, ref));
}


/*
 * The next message for the handler thread; while a join's Redis work runs
 * on its worker, its answer is awaited (a join that never answers is a
 * hang libFuzzer reports).
 */

static janus_telehealth_message *
fuzz_janus_next(void)
{
    janus_telehealth_message *msg;

    msg = g_async_queue_try_pop(janus_telehealth_messages);

    while (msg == NULL && janus_telehealth_joins_busy()) {
        msg = g_async_queue_timeout_pop(janus_telehealth_messages, 100000);
    }

    return msg;
}


/* runs what handle_message queued, as janus_telehealth_handler() does */

static void
fuzz_janus_drain(void)
{
    int                       code;
    char                      error[512];
    json_t                   *event;
    janus_telehealth_message *msg;

    while ((msg = fuzz_janus_next()) != NULL) {
        if (msg->task != 0) {
            janus_telehealth_handle_task(msg);
            janus_telehealth_message_free(msg);
            continue;
        }

        error[0] = '\0';
        code = janus_telehealth_handle_request(msg->session, msg->message,
            msg->jsep, msg->transaction, error, sizeof(error));
        if (code != 0 && code != JANUS_TELEHEALTH_ANSWER_LATER) {
            if (error[0] == '\0') {
                abort(); /* an error without its text */
            }

            event = janus_telehealth_error_event(code, error);
            janus_telehealth_push(msg->session, msg->transaction, event);
            json_decref(event);
        }

        janus_telehealth_message_free(msg);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE       *f;
    EVP_PKEY   *pkey;
    const char *err;
    char       *dir, path[256];

    janus_log_level = LOG_NONE;

    dir = mkdtemp(fuzz_dir);
    if (dir == NULL) {
        abort();
    }

    atexit(fuzz_cleanup);

    /* the join key: Janus gets the public half, the harness signs */
    pkey = EVP_EC_gen("P-256");

    g_snprintf(path, sizeof(path), "%s/join.key", dir);
    f = fopen(path, "w");
    if (pkey == NULL || f == NULL
        || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
    {
        abort();
    }
    fclose(f);

    if (th_keyset_add_pem_file(&fuzz_signer, "j1", path, &err) != 0) {
        abort();
    }

    g_snprintf(path, sizeof(path), "%s/join.pub", dir);
    f = fopen(path, "w");
    if (f == NULL || !PEM_write_PUBKEY(f, pkey)) {
        abort();
    }
    fclose(f);
    EVP_PKEY_free(pkey);

    g_snprintf(path, sizeof(path), "%s/%s.jcfg", dir, JANUS_TELEHEALTH_PACKAGE);
    f = fopen(path, "w");
    if (f == NULL) {
        abort();
    }
    fprintf(f,
        "general: {\n"
        "    redis = \"%s/no-redis.sock\"\n"
        "    node_id = \"fuzz-1\"\n"
        "    event_stream = false\n"
        "}\n"
        "keys: {\n"
        "    j1 = \"%s/join.pub\"\n"
        "}\n",
        dir, dir);
    fclose(f);

    /* janus_telehealth_init() without its threads */
    if (janus_telehealth_config_load(dir) != 0) {
        abort();
    }

    janus_telehealth_gateway = &fuzz_janus_callbacks;
    janus_telehealth_sessions = g_hash_table_new_full(NULL, NULL, NULL,
        (GDestroyNotify) janus_telehealth_session_destroy);
    janus_telehealth_messages =
        g_async_queue_new_full((GDestroyNotify) janus_telehealth_message_free);
    janus_telehealth_handler_redis = janus_telehealth_redis_new("handler");

    if (janus_telehealth_rooms_init() != 0
        || janus_telehealth_joins_init() != 0)
    {
        abort();
    }

    g_atomic_int_set(&janus_telehealth_initialized, 1);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                         error;
    char                       *token;
    json_t                     *message, *jsep, *claims;
    janus_plugin_session       *handle;
    struct janus_plugin_result *result;

    message = json_loadb((const char *) data, size, 0, NULL);

    jsep = NULL;
    if (json_is_object(message)) {
        jsep = json_incref(json_object_get(message, "jsep"));
        json_object_del(message, "jsep");

        claims = json_object_get(message, "credential");
        if (json_is_object(claims)) {
            token = th_token_sign(&fuzz_signer, claims);
            if (token != NULL) {
                json_object_set_new(message, "credential", json_string(token));
                free(token);
            }
        }
    }

    handle = g_malloc0(sizeof(janus_plugin_session));
    janus_refcount_init(&handle->ref, fuzz_janus_handle_free);

    error = 0;
    janus_telehealth_create_session(handle, &error);
    if (error != 0) {
        abort();
    }

    /* the core's reference, given with create_session */
    janus_refcount_increase(&handle->ref);

    result = janus_telehealth_handle_message(handle, g_strdup("fuzz"), message,
        jsep);
    if (result == NULL
        || (result->type == JANUS_PLUGIN_OK && !json_is_object(result->content))
        || (result->type == JANUS_PLUGIN_ERROR && result->text == NULL))
    {
        abort();
    }

    janus_plugin_result_destroy(result);
    fuzz_janus_drain();

    janus_telehealth_destroy_session(handle, &error);
    fuzz_janus_drain();

    g_atomic_int_set(&handle->stopped, 1);
    janus_refcount_decrease(&handle->ref);

    return 0;
}
