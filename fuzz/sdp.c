/*
 * Publishers' SDP offers (janus-plugin/janus_telehealth_sdp.c): an offer
 * parsed by the Janus core's parser, answered by the plugin (the first
 * Opus audio and the first two VP8 videos received, the rest refused),
 * and the answer written; an offer of an unknown transport profile is
 * refused first, as the plugin does.  The input is the offer, optionally
 * followed by a NUL and the request's "descriptions" (JSON).  Every stream taken must
 * name an m-line of the offer, and the answer must parse again.
 */

#include <stdint.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"

#include <sdp-utils.h>


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    janus_log_level = LOG_NONE;

    return 0;
}


static void
fuzz_sdp_feed_free(const janus_refcount *ref)
{
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                         *text, *written, error[256];
    guint                         i;
    json_t                       *descriptions;
    janus_sdp                    *offer, *answer, *again;
    const uint8_t                *nul;
    janus_telehealth_feed         feed;
    janus_telehealth_feed_stream *fs;

    nul = memchr(data, '\0', size);
    text = g_strndup((const char *) data, nul ? (size_t) (nul - data) : size);
    descriptions = nul ? json_loadb((const char *) nul + 1,
                             size - (nul - data) - 1, 0, NULL)
                       : NULL;

    offer = janus_sdp_parse(text, error, sizeof(error));
    g_free(text);

    /* refused whole before an answer is made, as media_publish() does */
    if (offer == NULL || !janus_telehealth_offer_profiles_known(offer)) {
        if (offer != NULL) {
            janus_sdp_destroy(offer);
        }
        json_decref(descriptions);
        return 0;
    }

    memset(&feed, 0, sizeof(feed));
    feed.streams = g_ptr_array_new();
    feed.bitrate = (data[0] & 1) ? 512000 : 0;
    janus_refcount_init(&feed.ref, fuzz_sdp_feed_free);

    answer = janus_telehealth_publish_answer(offer, descriptions, &feed);

    for (i = 0; i < feed.streams->len; i++) {
        fs = g_ptr_array_index(feed.streams, i);

        if (janus_sdp_mline_find_by_index(offer, fs->mindex) == NULL
            || fs->mid == NULL || fs->description == NULL)
        {
            abort();
        }

        g_free(fs->mid);
        g_free(fs->description);
        janus_mutex_destroy(&fs->mutex);
        g_free(fs);
    }

    g_ptr_array_free(feed.streams, TRUE);

    if (answer != NULL) {
        written = janus_sdp_write(answer);
        if (written == NULL) {
            abort();
        }

        again = janus_sdp_parse(written, error, sizeof(error));
        if (again == NULL) {
            fprintf(stderr, "fuzz: the answer does not parse: %s\n%s\n", error,
                written);
            abort();
        }

        janus_sdp_destroy(again);
        g_free(written);
        janus_sdp_destroy(answer);
    }

    janus_sdp_destroy(offer);
    json_decref(descriptions);

    return 0;
}
