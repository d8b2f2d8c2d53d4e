/*
 * janus.plugin.telehealth: its configuration file
 * (janus.plugin.telehealth.jcfg, conf/janus.plugin.telehealth.jcfg.sample)
 * read into janus_telehealth_cfg once, at init.
 */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <config.h>
#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"


janus_telehealth_config janus_telehealth_cfg;


static const char *janus_telehealth_config_string(
	janus_config *config, janus_config_category *general, const char *name) {
	janus_config_item *item;

	item = janus_config_get(config, general, janus_config_type_item, name);
	if (item == NULL || item->value == NULL) {
		return NULL;
	}

	return item->value;
}


static int janus_telehealth_config_int(
	janus_config *config, janus_config_category *general, const char *name, int min, int max, int *value) {
	long n;
	char *end;
	const char *text;

	text = janus_telehealth_config_string(config, general, name);
	if (text == NULL) {
		return 0;
	}

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || end == text || n < min || n > max) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] %s must be an integer from %d to "
			"%d\n",
			name, min, max);
		return -1;
	}

	*value = (int)n;

	return 0;
}


/* Ids end up in Redis keys: a small alphabet keeps keys unambiguous. */
gboolean janus_telehealth_id_valid(const char *id, gboolean allow_colon) {
	size_t i, len;

	if (id == NULL) {
		return FALSE;
	}

	len = strlen(id);
	if (len == 0 || len > JANUS_TELEHEALTH_ID_MAX) {
		return FALSE;
	}

	for (i = 0; i < len; i++) {
		if (!g_ascii_isalnum(id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.' && !(allow_colon && id[i] == ':')) {
			return FALSE;
		}
	}

	return TRUE;
}


static int janus_telehealth_config_keys(janus_config *config, const char *config_path) {
	char *path;
	GList *items, *l;
	const char *err;
	janus_config_item *item;
	janus_config_category *keys;

	keys = janus_config_get(config, NULL, janus_config_type_category, "keys");
	if (keys == NULL) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] no \"keys\" category: join "
			"credentials cannot be verified\n");
		return -1;
	}

	items = janus_config_get_items(config, keys);

	for (l = items; l != NULL; l = l->next) {
		item = l->data;
		if (item->name == NULL || item->value == NULL) {
			continue;
		}

		/* Relative key paths are relative to the configuration folder. */
		path =
			g_path_is_absolute(item->value) ? g_strdup(item->value) : g_build_filename(config_path, item->value, NULL);
		err = NULL;

		/*
         * ES256 public keys only: an access-token secret is no PEM key, and
         * a private key would let whoever holds this server sign.
         */
		if (th_keyset_add_pem_file(&janus_telehealth_cfg.keys, item->name, path, &err) == 0 &&
			janus_telehealth_cfg.keys.keys[janus_telehealth_cfg.keys.nkeys - 1].can_sign) {
			err = "a private key: Janus must hold public keys only";
		}

		if (err != NULL) {
			JANUS_LOG(LOG_FATAL, "[telehealth] key \"%s\" (%s): %s\n", item->name, path, err);
			g_free(path);
			g_list_free(items);
			return -1;
		}

		JANUS_LOG(LOG_INFO, "[telehealth] verification key \"%s\" loaded\n", item->name);
		g_free(path);
	}

	g_list_free(items);

	if (janus_telehealth_cfg.keys.nkeys == 0) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] the \"keys\" category names no "
			"key\n");
		return -1;
	}

	return 0;
}


/*
 * AUTH and Sentinel: redis_user with redis_password_file (one line, read
 * here so the file may be readable by Janus' user only), and redis_master
 * with redis_sentinels ("IP:port, IP:port, ...").
 */
static int janus_telehealth_config_redis(
	janus_config *config, janus_config_category *general, const char *config_path) {
	int i;
	char *path, *text, **list;
	gsize len;
	GError *error;
	const char *file, *user, *master, *sentinels, *reason;
	janus_telehealth_config *cfg = &janus_telehealth_cfg;

	user = janus_telehealth_config_string(config, general, "redis_user");
	file = janus_telehealth_config_string(config, general, "redis_password_file");

	if ((user == NULL) != (file == NULL)) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] redis_user and "
			"redis_password_file go together\n");
		return -1;
	}

	if (file != NULL) {
		path = g_path_is_absolute(file) ? g_strdup(file) : g_build_filename(config_path, file, NULL);
		error = NULL;

		if (!g_file_get_contents(path, &text, &len, &error)) {
			JANUS_LOG(LOG_FATAL, "[telehealth] redis_password_file: %s\n", error->message);
			g_error_free(error);
			g_free(path);
			return -1;
		}

		g_free(path);

		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
			text[--len] = '\0';
		}

		if (len == 0 || len > 1000 || strlen(text) != len || strchr(text, '\n') != NULL) {
			JANUS_LOG(LOG_FATAL,
				"[telehealth] redis_password_file must "
				"hold one password of 1 to 1000 characters on one "
				"line\n");
			g_free(text);
			return -1;
		}

		cfg->redis_user = g_strdup(user);
		cfg->redis_password = text;
	}

	master = janus_telehealth_config_string(config, general, "redis_master");
	sentinels = janus_telehealth_config_string(config, general, "redis_sentinels");

	if ((master == NULL) != (sentinels == NULL)) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] redis_master and redis_sentinels "
			"go together\n");
		return -1;
	}

	if (master != NULL) {
		list = g_strsplit(sentinels, ",", 0);

		for (i = 0; list[i] != NULL; i++) {
			g_strstrip(list[i]);

			if (list[i][0] == '/' || janus_telehealth_redis_check_address(list[i], &reason)) {
				JANUS_LOG(LOG_FATAL,
					"[telehealth] redis_sentinels: \"%s\": "
					"%s\n",
					list[i], list[i][0] == '/' ? "a sentinel is IP:port" : reason);
				g_strfreev(list);
				return -1;
			}
		}

		if (i == 0) {
			JANUS_LOG(LOG_FATAL, "[telehealth] redis_sentinels is empty\n");
			g_strfreev(list);
			return -1;
		}

		cfg->redis_master = g_strdup(master);
		cfg->redis_sentinels = list;
	}

	cfg->redis_wait_timeout_ms = 100;

	if (janus_telehealth_config_int(config, general, "redis_wait_replicas", 0, 100, &cfg->redis_wait_replicas) ||
		janus_telehealth_config_int(config, general, "redis_wait_timeout", 1, 10000, &cfg->redis_wait_timeout_ms)) {
		return -1;
	}

	return 0;
}


int janus_telehealth_config_load(const char *config_path) {
	int rc;
	char *filename, hostname[256];
	const char *value, *reason;
	janus_config *config;
	janus_config_category *general;

	janus_telehealth_config *cfg = &janus_telehealth_cfg;

	memset(cfg, 0, sizeof(*cfg));
	cfg->redis_connect_timeout_ms = 1000;
	cfg->redis_command_timeout_ms = 1000;
	cfg->event_stream = TRUE;
	cfg->event_stream_maxlen = 100000;
	cfg->refresh_interval = 3;
	cfg->closed_room_ttl = 60;
	cfg->empty_room_timeout = 300;
	cfg->credential_leeway = 5;
	cfg->max_participants = 0;
	cfg->max_subscriptions = 1;
	cfg->bitrate = 1024000;

	filename = g_strdup_printf("%s/%s.jcfg", config_path, JANUS_TELEHEALTH_PACKAGE);
	config = janus_config_parse(filename);
	if (config == NULL) {
		JANUS_LOG(LOG_FATAL, "[telehealth] cannot read %s\n", filename);
		g_free(filename);
		return -1;
	}
	g_free(filename);

	janus_config_print(config);

	general = janus_config_get_create(config, NULL, janus_config_type_category, "general");
	rc = -1;

	value = janus_telehealth_config_string(config, general, "redis");
	cfg->redis_address = g_strdup(value != NULL ? value : "127.0.0.1:6379");
	if (janus_telehealth_redis_check_address(cfg->redis_address, &reason)) {
		JANUS_LOG(LOG_FATAL, "[telehealth] redis = \"%s\": %s\n", cfg->redis_address, reason);
		goto done;
	}

	if (janus_telehealth_config_redis(config, general, config_path) != 0) {
		goto done;
	}

	value = janus_telehealth_config_string(config, general, "redis_prefix");
	cfg->redis_prefix = g_strdup(value != NULL ? value : TH_REDIS_PREFIX_DEFAULT);

	value = janus_telehealth_config_string(config, general, "node_id");
	if (value != NULL) {
		cfg->node_id = g_strdup(value);

	} else {
		if (gethostname(hostname, sizeof(hostname)) != 0) {
			g_strlcpy(hostname, "janus", sizeof(hostname));
		}
		hostname[sizeof(hostname) - 1] = '\0';
		cfg->node_id = g_strdup_printf("%s-%d", hostname, (int)getpid());
	}

	if (!janus_telehealth_id_valid(cfg->node_id, FALSE)) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] node_id \"%s\" must be 1-128 of "
			"A-Z a-z 0-9 . _ -\n",
			cfg->node_id);
		goto done;
	}

	value = janus_telehealth_config_string(config, general, "public_url");
	if (value != NULL && *value != '\0') {
		if (strncmp(value, "ws://", 5) != 0 && strncmp(value, "wss://", 6) != 0 && strncmp(value, "http://", 7) != 0 &&
			strncmp(value, "https://", 8) != 0) {
			JANUS_LOG(LOG_FATAL,
				"[telehealth] public_url \"%s\" must be a "
				"ws://, wss://, http:// or https:// URL\n",
				value);
			goto done;
		}
		cfg->public_url = g_strdup(value);
	}

	value = janus_telehealth_config_string(config, general, "draining");
	if (value != NULL) {
		cfg->draining = janus_is_true(value);
	}

	value = janus_telehealth_config_string(config, general, "event_stream");
	if (value != NULL) {
		cfg->event_stream = janus_is_true(value);
	}

	if (janus_telehealth_config_int(
			config, general, "redis_connect_timeout", 10, 60000, &cfg->redis_connect_timeout_ms) ||
		janus_telehealth_config_int(
			config, general, "redis_command_timeout", 10, 60000, &cfg->redis_command_timeout_ms) ||
		janus_telehealth_config_int(config, general, "event_stream_maxlen", 0, 1000000000, &cfg->event_stream_maxlen) ||
		janus_telehealth_config_int(config, general, "refresh_interval", 1, 3600, &cfg->refresh_interval) ||
		janus_telehealth_config_int(config, general, "closed_room_ttl", 1, 86400, &cfg->closed_room_ttl) ||
		janus_telehealth_config_int(config, general, "empty_room_timeout", 0, 86400, &cfg->empty_room_timeout) ||
		janus_telehealth_config_int(config, general, "credential_leeway", 0, 300, &cfg->credential_leeway) ||
		janus_telehealth_config_int(config, general, "max_participants", 0, 100000, &cfg->max_participants) ||
		janus_telehealth_config_int(config, general, "max_subscriptions", 1, 16, &cfg->max_subscriptions) ||
		janus_telehealth_config_int(config, general, "bitrate", 0, 100000000, &cfg->bitrate)) {
		goto done;
	}

	/* Nothing of an open room expires any more: the lease does the work
     * (docs/lifecycle.md).  An old setting is harmless but misleading. */
	if (janus_config_get(config, general, janus_config_type_item, "room_ttl") != NULL) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] room_ttl is ignored: open rooms "
			"no longer expire\n");
	}

	if (janus_telehealth_config_keys(config, config_path) != 0) {
		goto done;
	}

	rc = 0;

done:

	janus_config_destroy(config);

	return rc;
}


void janus_telehealth_config_clear(void) {
	g_free(janus_telehealth_cfg.redis_address);
	g_free(janus_telehealth_cfg.redis_prefix);
	g_free(janus_telehealth_cfg.redis_user);
	if (janus_telehealth_cfg.redis_password != NULL) {
		memset(janus_telehealth_cfg.redis_password, 0, strlen(janus_telehealth_cfg.redis_password));
		g_free(janus_telehealth_cfg.redis_password);
	}
	g_free(janus_telehealth_cfg.redis_master);
	g_strfreev(janus_telehealth_cfg.redis_sentinels);
	g_free(janus_telehealth_cfg.node_id);
	g_free(janus_telehealth_cfg.public_url);
	th_keyset_clear(&janus_telehealth_cfg.keys);
	memset(&janus_telehealth_cfg, 0, sizeof(janus_telehealth_cfg));
}
