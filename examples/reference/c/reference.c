/*
 * The reference policy in C, the same in every SDK's language:
 *
 * config:  {"users":[{"name":"alice","password":"alice-pw","tenant":"acme"}, ...]}
 * authn:   a listed user with the right password is allowed, with the
 *          attribute tenant = the user's tenant; a listed user with a wrong
 *          (or no) password is denied, "bad user name or password"; anyone
 *          else is ignored (left to the next plugin).
 * authz:   every action is allowed on devices/{username}/# and on
 *          tenants/{tenant attribute}/#; everything else is denied. A
 *          subscription is allowed only when one of them covers its filter.
 * payload: messages on secure/# are kept at rest encrypted under key id
 *          "default"; others are plaintext (whatever the action).
 *
 * examples/reference/POLICY.md has the details; examples/reference/cases.toml
 * is the conformance suite every language's build passes.
 *
 * Build (see sdk/c/README.md):
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -Isdk/c \
 *         -Wl,--strip-debug -o bin/examples/reference-c.wasm \
 *         examples/reference/c/reference.c
 */
#define MOAT_IMPLEMENTATION
#include "moat.h"

#include <stdlib.h>

struct user {
	moat_bytes name;
	moat_bytes password;
	moat_bytes tenant;
};

/* The users of this instance: configure runs once per instance. */
static struct user *users;
static uint32_t nusers;

static const struct user *find_user(moat_bytes name)
{
	uint32_t i;
	for (i = 0; i < nusers; i++) {
		if (moat_bytes_equal(users[i].name, name)) {
			return &users[i];
		}
	}
	return NULL;
}

/* refuse sets the config's refusal message: "reference: config: <path>: <what>". */
static int refuse(const char *path, uint32_t index, const char *field, const char *what, int64_t at)
{
	moat_text t;
	t.len = 0;
	moat_text_str(&t, "reference: config: ");
	moat_text_str(&t, path);
	if (field != NULL) {
		moat_text_str(&t, "[");
		moat_text_uint(&t, index);
		moat_text_str(&t, "]");
		if (field[0] != 0) {
			moat_text_str(&t, ".");
			moat_text_str(&t, field);
		}
	}
	moat_text_str(&t, ": ");
	moat_text_str(&t, what);
	if (at >= 0) {
		moat_text_str(&t, " at byte ");
		moat_text_uint(&t, (uint64_t)at);
	}
	moat_set_message_text(&t);
	return 1;
}

static int json_error(const moat_json *j, const char *path, uint32_t index, const char *field)
{
	return refuse(path, index, field, j->err, j->err_at);
}

/* unknown_key refuses a key of the config (index < 0) or of a user. */
static int unknown_key(int64_t index, moat_bytes key)
{
	moat_text t;
	t.len = 0;
	moat_text_str(&t, "reference: config: ");
	if (index >= 0) {
		moat_text_str(&t, "users[");
		moat_text_uint(&t, (uint64_t)index);
		moat_text_str(&t, "]: ");
	}
	moat_text_str(&t, "unknown key \"");
	moat_text_bytes(&t, key);
	moat_text_str(&t, "\"");
	moat_set_message_text(&t);
	return 1;
}

/* configure reads the users; an unknown key, or a missing name, password
 * or tenant, refuses the config. Of two users of one name, the first wins. */
static int configure(char *text, size_t len)
{
	moat_json j;
	moat_bytes key;
	uint32_t cap = 0, i;

	for (i = 0; i < nusers; i++) {
		moat_bytes_free(users[i].name);
		moat_bytes_free(users[i].password);
		moat_bytes_free(users[i].tenant);
	}
	free(users);
	users = NULL;
	nusers = 0;

	moat_json_init(&j, text, len);
	if (!moat_json_object(&j)) {
		return json_error(&j, "the config", 0, NULL);
	}
	while (moat_json_member(&j, &key)) {
		if (!moat_bytes_is(key, "users")) {
			return unknown_key(-1, key);
		}
		if (!moat_json_array(&j)) {
			return json_error(&j, "users", 0, NULL);
		}
		while (moat_json_element(&j)) {
			struct user u = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
			bool has_name = false, has_password = false, has_tenant = false;
			if (!moat_json_object(&j)) {
				return json_error(&j, "users", nusers, "");
			}
			while (moat_json_member(&j, &key)) {
				moat_bytes v;
				const char *field;
				if (moat_bytes_is(key, "name")) {
					field = "name";
					has_name = true;
				} else if (moat_bytes_is(key, "password")) {
					field = "password";
					has_password = true;
				} else if (moat_bytes_is(key, "tenant")) {
					field = "tenant";
					has_tenant = true;
				} else {
					return unknown_key(nusers, key);
				}
				if (!moat_json_string(&j, &v)) {
					return json_error(&j, "users", nusers, field);
				}
				if (field[0] == 'n') u.name = v;
				else if (field[0] == 'p') u.password = v;
				else u.tenant = v;
			}
			if (j.err != NULL) {
				return json_error(&j, "users", nusers, "");
			}
			if (!has_name || u.name.len == 0) {
				return refuse("users", nusers, "name", "missing or empty", -1);
			}
			if (!has_password) {
				return refuse("users", nusers, "password", "missing", -1);
			}
			if (!has_tenant) {
				return refuse("users", nusers, "tenant", "missing", -1);
			}
			if (find_user(u.name) != NULL) {
				continue; /* the first user of a name wins */
			}
			if (nusers == cap) {
				struct user *grown;
				cap = cap ? 2 * cap : 8;
				grown = (struct user *)realloc(users, cap * sizeof *users);
				if (grown == NULL) {
					moat_panic("reference: out of memory for the users");
				}
				users = grown;
			}
			users[nusers].name = moat_bytes_dup(u.name);
			users[nusers].password = moat_bytes_dup(u.password);
			users[nusers].tenant = moat_bytes_dup(u.tenant);
			nusers++;
		}
		if (j.err != NULL) {
			return json_error(&j, "users", nusers, "");
		}
	}
	if (!moat_json_end(&j)) {
		return json_error(&j, "the config", 0, NULL);
	}
	return 0;
}
MOAT_CONFIGURE(configure)

static moat_authn_result authenticate(const moat_request *r)
{
	const struct user *u = find_user(moat_username(r));
	moat_bytes password;
	if (u == NULL) {
		return moat_authn_ignore();
	}
	if (!moat_password(r, &password) || !moat_bytes_equal_ct(u->password, password)) {
		moat_set_message("bad user name or password");
		return moat_authn_deny();
	}
	if (moat_add_attribute(moat_str("tenant"), u->tenant) != MOAT_OK) {
		moat_set_message("reference: the tenant attribute is too large");
		return moat_authn_deny();
	}
	return moat_authn_allow();
}
MOAT_AUTHN(authenticate)

/* A tenant filter "tenants/<tenant>/#" is built here; attributes total at
 * most 4096 bytes, so any tenant fits. */
static char tenant_filter[MOAT_MAX_ATTRIBUTE_BYTES + 16];

static moat_authz_result authorize(const moat_request *r)
{
	bool sub = r->action == MOAT_ACTION_SUBSCRIBE;
	moat_bytes topic = moat_topic(r), user = moat_username(r), client = moat_client_id(r), tenant;
	if (moat_match(moat_str("devices/%u/#"), topic, sub, user, client)) {
		return moat_authz_allow();
	}
	if (moat_attribute(r, moat_str("tenant"), &tenant) && moat_level_name(tenant) &&
	    tenant.len <= MOAT_MAX_ATTRIBUTE_BYTES) {
		uint32_t n = 0;
		__builtin_memcpy(tenant_filter, "tenants/", 8);
		n = 8;
		__builtin_memcpy(tenant_filter + n, tenant.ptr, tenant.len);
		n += tenant.len;
		__builtin_memcpy(tenant_filter + n, "/#", 2);
		n += 2;
		if (moat_match(moat_bytes_of(tenant_filter, n), topic, sub, user, client)) {
			return moat_authz_allow();
		}
	}
	return moat_authz_deny();
}
MOAT_AUTHZ(authorize)

static moat_payload_result payload(const moat_request *r)
{
	if (moat_match(moat_str("secure/#"), moat_topic(r), false, moat_username(r), moat_client_id(r))) {
		moat_set_key_id(moat_str("default"));
		return moat_payload_allow(MOAT_MODE_AT_REST);
	}
	return moat_payload_allow(MOAT_MODE_PLAINTEXT);
}
MOAT_PAYLOAD(payload)
