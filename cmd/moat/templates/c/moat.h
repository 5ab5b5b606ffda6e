/*
 * moat.h: the C and C++ SDK for moat policy modules (moat ABI v1,
 * sdk/ABI.md). One header, no other file: a module includes it everywhere
 * it needs it, and in exactly one C or C++ file defines
 * MOAT_IMPLEMENTATION first, which adds the two exports every module has
 * (moat_abi_v1, moat_buffer) and the JSON reader:
 *
 *     #define MOAT_IMPLEMENTATION
 *     #include "moat.h"
 *
 *     static moat_authz_result authorize(const moat_request *r) {
 *         if (moat_match(moat_str("public/#"), moat_topic(r),
 *                        r->action == MOAT_ACTION_SUBSCRIBE,
 *                        moat_username(r), moat_client_id(r)))
 *             return moat_authz_allow();
 *         return moat_authz_ignore();
 *     }
 *     MOAT_AUTHZ(authorize)
 *
 * built as a WASI reactor (never a command: a command's _start would run
 * the C runtime's constructors and destructors around every call):
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -Isdk/c \
 *         -Wl,--strip-debug -o policy.wasm policy.c
 *
 * The decision macros MOAT_AUTHN, MOAT_AUTHZ, MOAT_PAYLOAD and
 * MOAT_CONFIGURE export a decision and call the given function with a
 * checked view of the request; a module uses only the ones it decides, and
 * moat.toml's decisions list must name the same ones.
 *
 * Requests are read in place, from the buffer the host rewrites for the
 * next call: a moat_bytes of a request is valid until the decision
 * returns; copy what is kept (moat_bytes_dup).
 *
 * Results are built only with the moat_authn_*, moat_authz_* and
 * moat_payload_* functions, each of which yields a well-formed result of
 * its decision (the types keep one decision's result out of another's
 * export). The one result the types cannot rule out, moat_authn_continue()
 * for a request without an auth_method, is reported as a plugin error
 * with a log line saying so.
 *
 * Failures that have no verdict (the buffer cannot grow, a request that
 * breaks the ABI, moat_panic) log an error line through the host, set it
 * as the decision's message, and trap: the host counts a plugin error,
 * replaces the instance and applies the plugin's on_error.
 */
#ifndef MOAT_H
#define MOAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__wasm32__)
#error "moat.h: build for wasm32: clang --target=wasm32-wasi -mexec-model=reactor"
#endif

#ifdef __cplusplus
#define MOAT_EXTERN_C extern "C"
extern "C" {
#else
#define MOAT_EXTERN_C
#endif

/* ---- ABI constants (sdk/ABI.md §3, §4, §6) ---- */

enum {
	MOAT_KIND_AUTHN = 1,
	MOAT_KIND_AUTHZ = 2,
	MOAT_KIND_PAYLOAD = 3
};

/* Actions of authz and payload requests; authn requests carry 0. */
enum {
	MOAT_ACTION_PUBLISH = 1,
	MOAT_ACTION_SUBSCRIBE = 2,
	MOAT_ACTION_DELIVER = 3,
	MOAT_ACTION_DECRYPT = 4
};

/* Request header flags. */
enum {
	MOAT_FLAG_RETAIN = 1u << 0,
	MOAT_FLAG_SUPERUSER = 1u << 1,
	MOAT_FLAG_CERT = 1u << 2,
	MOAT_FLAG_PASSWORD = 1u << 3
};

/* Field ids. */
enum {
	MOAT_FIELD_CLIENT_ID = 0,
	MOAT_FIELD_USERNAME = 1,
	MOAT_FIELD_PASSWORD = 2,
	MOAT_FIELD_REMOTE_ADDR = 3,
	MOAT_FIELD_LISTENER = 4,
	MOAT_FIELD_TOPIC = 5,
	MOAT_FIELD_SHARE_GROUP = 6,
	MOAT_FIELD_ATTRIBUTES = 7,      /* pair list */
	MOAT_FIELD_CERT_CN = 8,
	MOAT_FIELD_CERT_SANS = 9,       /* string list */
	MOAT_FIELD_CERT_SHA256 = 10,
	MOAT_FIELD_USER_PROPERTIES = 11, /* pair list */
	MOAT_FIELD_AUTH_METHOD = 12,
	MOAT_FIELD_AUTH_DATA = 13,
	MOAT_FIELD_AUTH_STATE = 14,
	MOAT_FIELD_CONTENT_TYPE = 15,
	MOAT_FIELD_ENVELOPE_KEY_ID = 16,
	MOAT_FIELD_MODE = 17
};

/* Verdicts (result bits 0-7). */
enum {
	MOAT_VERDICT_ALLOW = 1,
	MOAT_VERDICT_DENY = 2,
	MOAT_VERDICT_IGNORE = 3,
	MOAT_VERDICT_CONTINUE = 4
};

/* MQTT 5 reason codes a deny may carry (result bits 8-15). */
enum {
	MOAT_REASON_DEFAULT = 0, /* 0x86 for authn, 0x87 otherwise */
	MOAT_REASON_UNSPECIFIED = 0x80,
	MOAT_REASON_BAD_USERNAME_OR_PASSWORD = 0x86,
	MOAT_REASON_NOT_AUTHORIZED = 0x87,
	MOAT_REASON_SERVER_BUSY = 0x89,
	MOAT_REASON_BANNED = 0x8A,
	MOAT_REASON_BAD_AUTH_METHOD = 0x8C,
	MOAT_REASON_TOPIC_NAME_INVALID = 0x90,
	MOAT_REASON_QUOTA_EXCEEDED = 0x97,
	MOAT_REASON_PAYLOAD_FORMAT_INVALID = 0x99
};

/* Payload modes (result bits 24-31 of a payload allow). */
typedef enum moat_mode {
	MOAT_MODE_PLAINTEXT = 1,
	MOAT_MODE_REQUIRE_E2E = 2,
	MOAT_MODE_AT_REST = 3,
	MOAT_MODE_REENCRYPT = 4
} moat_mode;

/* Log levels of moat_log. */
typedef enum moat_level {
	MOAT_LOG_DEBUG = 0,
	MOAT_LOG_INFO = 1,
	MOAT_LOG_WARN = 2,
	MOAT_LOG_ERROR = 3
} moat_level;

/* Host function status codes. */
enum {
	MOAT_OK = 0,
	MOAT_NOT_AVAILABLE = -1,
	MOAT_TOO_LARGE = -2
};

/* Limits of the host's setters. */
enum {
	MOAT_INITIAL_BUFFER = 4096,
	MOAT_MAX_MESSAGE = 1024,
	MOAT_MAX_ATTRIBUTES = 64,
	MOAT_MAX_ATTRIBUTE_BYTES = 4096,
	MOAT_MAX_KEY_ID = 255,
	MOAT_MAX_AUTH_DATA = 65535
};

/* ---- Imports and exports ---- */

#define MOAT_EXPORT(name) __attribute__((export_name(name)))
#define MOAT_IMPORT(name) __attribute__((import_module("moat"), import_name(name)))

/*
 * The host functions, raw (§6). Pointers are into this module's memory;
 * a pointer/length outside it traps. A declaration that is never called
 * adds no import, so declaring the capabilities (file_size, file_read)
 * here costs a module that does not use them nothing; one that does needs
 * the [plugin.files] grant.
 */
MOAT_IMPORT("log") void moat_host_log(int32_t level, const void *ptr, int32_t len);
MOAT_IMPORT("time_now") int64_t moat_host_time_now(void);
MOAT_IMPORT("time_monotonic") int64_t moat_host_time_monotonic(void);
MOAT_IMPORT("random") int32_t moat_host_random(void *ptr, int32_t len);
MOAT_IMPORT("set_message") int32_t moat_host_set_message(const void *ptr, int32_t len);
MOAT_IMPORT("add_attribute") int32_t moat_host_add_attribute(const void *kptr, int32_t klen, const void *vptr, int32_t vlen);
MOAT_IMPORT("set_expiry") int32_t moat_host_set_expiry(int64_t unix_ns);
MOAT_IMPORT("set_auth_data") int32_t moat_host_set_auth_data(const void *ptr, int32_t len);
MOAT_IMPORT("set_auth_state") int32_t moat_host_set_auth_state(const void *ptr, int32_t len);
MOAT_IMPORT("set_key_id") int32_t moat_host_set_key_id(const void *ptr, int32_t len);
MOAT_IMPORT("payload_read") int32_t moat_host_payload_read(int32_t offset, void *ptr, int32_t len);
MOAT_IMPORT("pbkdf2") int32_t moat_host_pbkdf2(int32_t hash, const void *pw, int32_t pw_len, const void *salt, int32_t salt_len, int32_t iterations, void *out, int32_t out_len);
MOAT_IMPORT("argon2id") int32_t moat_host_argon2id(const void *pw, int32_t pw_len, const void *salt, int32_t salt_len, int32_t time, int32_t memory_kib, int32_t threads, void *out, int32_t out_len);
MOAT_IMPORT("bcrypt_compare") int32_t moat_host_bcrypt_compare(const void *hash, int32_t hash_len, const void *pw, int32_t pw_len);
MOAT_IMPORT("file_size") int64_t moat_host_file_size(const void *name, int32_t name_len);
MOAT_IMPORT("file_read") int64_t moat_host_file_read(const void *name, int32_t name_len, int64_t offset, void *ptr, int32_t len);

/* ---- Byte strings ---- */

/*
 * moat_bytes is a view of bytes this module does not own: a request
 * field, a JSON string, a C string. It is not NUL-terminated.
 */
typedef struct moat_bytes {
	const uint8_t *ptr;
	uint32_t len;
} moat_bytes;

static inline moat_bytes moat_bytes_of(const void *ptr, size_t len)
{
	moat_bytes b;
	b.ptr = (const uint8_t *)ptr;
	b.len = (uint32_t)len;
	return b;
}

/* moat_str views a NUL-terminated string. */
static inline moat_bytes moat_str(const char *s)
{
	return moat_bytes_of(s, __builtin_strlen(s));
}

static inline bool moat_bytes_equal(moat_bytes a, moat_bytes b)
{
	return a.len == b.len && (a.len == 0 || __builtin_memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool moat_bytes_is(moat_bytes a, const char *s)
{
	return moat_bytes_equal(a, moat_str(s));
}

/*
 * moat_bytes_equal_ct compares a secret (a password, a token) with a
 * guess in time that depends only on the guess's length, so that timing
 * tells an attacker nothing about the secret but its length's equality.
 */
static inline bool moat_bytes_equal_ct(moat_bytes secret, moat_bytes guess)
{
	uint32_t diff = secret.len ^ guess.len;
	uint32_t i;
	if (secret.len == 0) {
		return guess.len == 0;
	}
	for (i = 0; i < guess.len; i++) {
		diff |= (uint32_t)(guess.ptr[i] ^ secret.ptr[i % secret.len]);
	}
	return diff == 0;
}

/*
 * moat_bytes_dup copies b into memory from malloc, NUL-terminated after
 * len bytes; an empty view for an empty b. It traps (moat_panic) when
 * memory runs out: a module without memory has no safe verdict.
 */
moat_bytes moat_bytes_dup(moat_bytes b);
void moat_bytes_free(moat_bytes b);

/* ---- Text: messages built without printf ---- */

/*
 * moat_text builds a message of at most MOAT_MAX_MESSAGE bytes, what
 * set_message takes; longer text is cut. It lives on the stack.
 */
typedef struct moat_text {
	uint32_t len;
	char buf[MOAT_MAX_MESSAGE];
} moat_text;

static inline void moat_text_bytes(moat_text *t, moat_bytes b)
{
	uint32_t n = b.len;
	if (n > MOAT_MAX_MESSAGE - t->len) {
		n = MOAT_MAX_MESSAGE - t->len;
	}
	if (n > 0) {
		__builtin_memcpy(t->buf + t->len, b.ptr, n);
	}
	t->len += n;
}

static inline void moat_text_str(moat_text *t, const char *s)
{
	moat_text_bytes(t, moat_str(s));
}

static inline void moat_text_uint(moat_text *t, uint64_t v)
{
	char d[20];
	uint32_t n = 0;
	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	moat_text_bytes(t, moat_bytes_of(d + sizeof d - n, n));
}

/* ---- Host functions, typed ---- */

static inline void moat_log_bytes(moat_level level, moat_bytes msg)
{
	moat_host_log((int32_t)level, msg.ptr, (int32_t)msg.len);
}

/* moat_log writes a line to the broker's log, as the plugin's. */
static inline void moat_log(moat_level level, const char *msg)
{
	moat_log_bytes(level, moat_str(msg));
}

static inline void moat_log_text(moat_level level, const moat_text *t)
{
	moat_host_log((int32_t)level, t->buf, (int32_t)t->len);
}

/* Wall clock and monotonic clock, nanoseconds. */
static inline int64_t moat_time_now(void) { return moat_host_time_now(); }
static inline int64_t moat_time_monotonic(void) { return moat_host_time_monotonic(); }

/* moat_random fills p with cryptographically secure random bytes. */
static inline void moat_random(void *p, size_t n)
{
	uint8_t *b = (uint8_t *)p;
	while (n > 0) {
		int32_t k = n > 65536 ? 65536 : (int32_t)n;
		moat_host_random(b, k);
		b += k;
		n -= (size_t)k;
	}
}

/*
 * The result setters, valid during a decision (and set_message during
 * moat_configure too): MOAT_OK, MOAT_NOT_AVAILABLE outside their decision,
 * MOAT_TOO_LARGE beyond their limit (then they do nothing).
 */
static inline int32_t moat_set_message_bytes(moat_bytes msg)
{
	return moat_host_set_message(msg.ptr, (int32_t)msg.len);
}
static inline int32_t moat_set_message(const char *msg) { return moat_set_message_bytes(moat_str(msg)); }
static inline int32_t moat_set_message_text(const moat_text *t)
{
	return moat_host_set_message(t->buf, (int32_t)t->len);
}
static inline int32_t moat_add_attribute(moat_bytes key, moat_bytes value)
{
	return moat_host_add_attribute(key.ptr, (int32_t)key.len, value.ptr, (int32_t)value.len);
}
static inline int32_t moat_set_expiry(int64_t unix_ns) { return moat_host_set_expiry(unix_ns); }
static inline int32_t moat_set_auth_data(moat_bytes b) { return moat_host_set_auth_data(b.ptr, (int32_t)b.len); }
static inline int32_t moat_set_auth_state(moat_bytes b) { return moat_host_set_auth_state(b.ptr, (int32_t)b.len); }
static inline int32_t moat_set_key_id(moat_bytes id) { return moat_host_set_key_id(id.ptr, (int32_t)id.len); }

/*
 * moat_panic ends the call as a plugin error that carries msg: it logs
 * "panic: msg" at error level, sets msg as the decision's message, and
 * traps. Use it where no verdict is safe; plain abort() traps too, but
 * without a word.
 */
__attribute__((noreturn)) void moat_panic(const char *msg);

#define MOAT_ASSERT(cond) \
	do { \
		if (!(cond)) moat_panic("assertion failed: " #cond); \
	} while (0)

/* ---- Requests ---- */

/*
 * moat_request is a checked view of one request (§3): the header, and the
 * field table, whose every descriptor lies inside the request (the
 * decision macros check it before calling the module's function).
 */
typedef struct moat_request {
	const uint8_t *data;
	uint32_t len;
	uint8_t kind;
	uint8_t action;   /* MOAT_ACTION_*, 0 for authn */
	uint8_t qos;
	uint8_t flags;    /* MOAT_FLAG_* */
	uint8_t protocol; /* 3, 4 or 5 */
	uint16_t nfields;
	uint32_t number;  /* authn: enhanced-auth round; payload: payload length */
} moat_request;

static inline uint32_t moatp_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * moat_field sets *out to field id and returns true when the request has
 * it; false (and an empty *out) when it is absent or unknown to this
 * request.
 */
static inline bool moat_field(const moat_request *r, unsigned id, moat_bytes *out)
{
	const uint8_t *d;
	uint32_t off;
	out->ptr = r->data;
	out->len = 0;
	if (id >= r->nfields) {
		return false;
	}
	d = r->data + 16 + 8 * id;
	off = moatp_le32(d);
	if (off == 0) {
		return false;
	}
	out->ptr = r->data + off;
	out->len = moatp_le32(d + 4);
	return true;
}

/* moat_field_or_empty is a field, empty when absent. */
static inline moat_bytes moat_field_or_empty(const moat_request *r, unsigned id)
{
	moat_bytes b;
	moat_field(r, id, &b);
	return b;
}

static inline moat_bytes moat_client_id(const moat_request *r) { return moat_field_or_empty(r, MOAT_FIELD_CLIENT_ID); }
static inline moat_bytes moat_username(const moat_request *r) { return moat_field_or_empty(r, MOAT_FIELD_USERNAME); }
static inline moat_bytes moat_topic(const moat_request *r) { return moat_field_or_empty(r, MOAT_FIELD_TOPIC); }
static inline moat_bytes moat_remote_addr(const moat_request *r) { return moat_field_or_empty(r, MOAT_FIELD_REMOTE_ADDR); }
static inline moat_bytes moat_listener(const moat_request *r) { return moat_field_or_empty(r, MOAT_FIELD_LISTENER); }

/* moat_password: false when the client sent no password field. */
static inline bool moat_password(const moat_request *r, moat_bytes *out)
{
	return moat_field(r, MOAT_FIELD_PASSWORD, out);
}

static inline bool moat_retain(const moat_request *r) { return (r->flags & MOAT_FLAG_RETAIN) != 0; }
static inline bool moat_superuser(const moat_request *r) { return (r->flags & MOAT_FLAG_SUPERUSER) != 0; }

/*
 * moat_list walks a pair list (attributes, user_properties) or a string
 * list (cert_sans). Start it with moat_pairs or moat_strings, then call
 * moat_pairs_next or moat_strings_next until it returns false. A list
 * that breaks the ABI's encoding ends early.
 */
typedef struct moat_list {
	const uint8_t *p;
	const uint8_t *end;
	uint32_t left;
} moat_list;

static inline bool moatp_list(const moat_request *r, unsigned id, moat_list *l)
{
	moat_bytes f;
	l->p = l->end = r->data;
	l->left = 0;
	if (!moat_field(r, id, &f) || f.len < 4) {
		return false;
	}
	l->p = f.ptr + 4;
	l->end = f.ptr + f.len;
	l->left = moatp_le32(f.ptr);
	return true;
}

static inline bool moatp_item(moat_list *l, moat_bytes *out)
{
	uint32_t n;
	if ((size_t)(l->end - l->p) < 4) {
		return false;
	}
	n = moatp_le32(l->p);
	l->p += 4;
	if ((size_t)(l->end - l->p) < n) {
		return false;
	}
	out->ptr = l->p;
	out->len = n;
	l->p += n;
	return true;
}

static inline bool moat_pairs(const moat_request *r, unsigned id, moat_list *l) { return moatp_list(r, id, l); }
static inline bool moat_strings(const moat_request *r, unsigned id, moat_list *l) { return moatp_list(r, id, l); }

static inline bool moat_pairs_next(moat_list *l, moat_bytes *key, moat_bytes *value)
{
	if (l->left == 0 || !moatp_item(l, key) || !moatp_item(l, value)) {
		l->left = 0;
		return false;
	}
	l->left--;
	return true;
}

static inline bool moat_strings_next(moat_list *l, moat_bytes *s)
{
	if (l->left == 0 || !moatp_item(l, s)) {
		l->left = 0;
		return false;
	}
	l->left--;
	return true;
}

/*
 * moat_attribute finds the value of the first attribute called key (what
 * authentication attached to the client) in an authz or payload request.
 */
static inline bool moat_attribute(const moat_request *r, moat_bytes key, moat_bytes *value)
{
	moat_list l;
	moat_bytes k;
	if (moat_pairs(r, MOAT_FIELD_ATTRIBUTES, &l)) {
		while (moat_pairs_next(&l, &k, value)) {
			if (moat_bytes_equal(k, key)) {
				return true;
			}
		}
	}
	value->ptr = r->data;
	value->len = 0;
	return false;
}

/* ---- Results ---- */

/*
 * One type per decision, built only by the functions below, so that a
 * module cannot return a malformed result (§4): a deny reason below 0x80
 * becomes the default reason, and a payload allow with a mode outside
 * MOAT_MODE_* becomes a deny (safe, and visible in testing).
 */
typedef struct moat_authn_result { uint32_t bits; } moat_authn_result;
typedef struct moat_authz_result { uint32_t bits; } moat_authz_result;
typedef struct moat_payload_result { uint32_t bits; } moat_payload_result;

static inline uint32_t moatp_deny_bits(uint8_t reason)
{
	return MOAT_VERDICT_DENY | (reason >= 0x80 ? (uint32_t)reason << 8 : 0u);
}

static inline moat_authn_result moat_authn_allow(void) { moat_authn_result r = {MOAT_VERDICT_ALLOW}; return r; }
/* moat_authn_allow_superuser admits a client that skips authz. */
static inline moat_authn_result moat_authn_allow_superuser(void) { moat_authn_result r = {MOAT_VERDICT_ALLOW | 1u << 16}; return r; }
static inline moat_authn_result moat_authn_deny(void) { moat_authn_result r = {MOAT_VERDICT_DENY}; return r; }
static inline moat_authn_result moat_authn_deny_reason(uint8_t reason) { moat_authn_result r = {moatp_deny_bits(reason)}; return r; }
static inline moat_authn_result moat_authn_ignore(void) { moat_authn_result r = {MOAT_VERDICT_IGNORE}; return r; }
/* moat_authn_continue: another round of MQTT 5 enhanced authentication,
 * only for a request with an auth_method. */
static inline moat_authn_result moat_authn_continue(void) { moat_authn_result r = {MOAT_VERDICT_CONTINUE}; return r; }

static inline moat_authz_result moat_authz_allow(void) { moat_authz_result r = {MOAT_VERDICT_ALLOW}; return r; }
static inline moat_authz_result moat_authz_deny(void) { moat_authz_result r = {MOAT_VERDICT_DENY}; return r; }
static inline moat_authz_result moat_authz_deny_reason(uint8_t reason) { moat_authz_result r = {moatp_deny_bits(reason)}; return r; }
static inline moat_authz_result moat_authz_ignore(void) { moat_authz_result r = {MOAT_VERDICT_IGNORE}; return r; }

static inline moat_payload_result moat_payload_allow(moat_mode mode)
{
	moat_payload_result r;
	if ((unsigned)mode < MOAT_MODE_PLAINTEXT || (unsigned)mode > MOAT_MODE_REENCRYPT) {
		r.bits = MOAT_VERDICT_DENY;
	} else {
		r.bits = MOAT_VERDICT_ALLOW | (uint32_t)mode << 24;
	}
	return r;
}
static inline moat_payload_result moat_payload_deny(void) { moat_payload_result r = {MOAT_VERDICT_DENY}; return r; }
static inline moat_payload_result moat_payload_deny_reason(uint8_t reason) { moat_payload_result r = {moatp_deny_bits(reason)}; return r; }
static inline moat_payload_result moat_payload_ignore(void) { moat_payload_result r = {MOAT_VERDICT_IGNORE}; return r; }

/* ---- Topics ---- */

/*
 * moat_level_name reports whether name can stand for one topic level: not
 * empty, and no '/', '+' or '#'.
 */
static inline bool moat_level_name(moat_bytes name)
{
	uint32_t i;
	if (name.len == 0) {
		return false;
	}
	for (i = 0; i < name.len; i++) {
		if (name.ptr[i] == '/' || name.ptr[i] == '+' || name.ptr[i] == '#') {
			return false;
		}
	}
	return true;
}

/*
 * moat_match reports whether the rule filter matches topic: a topic name
 * (publish, deliver, payload), or, when is_filter, a subscription's topic
 * filter, which the rule matches only if it matches every topic the
 * subscription can ("a/#" covers "a/+/b"; "a/+" does not cover "a/#").
 *
 * A rule level that is exactly "%u" or "%c" matches the level equal to the
 * username or client id; it never matches when that name is empty or
 * contains '/', '+' or '#', so a client cannot widen a rule by its choice
 * of name. Wildcards at the first level do not match topics that start
 * with '$' [MQTT-4.7.2-1]. "a/#" matches "a" too. Same semantics as the
 * Go SDK's demo and the Rust SDK.
 */
static inline bool moat_match(moat_bytes filter, moat_bytes topic, bool is_filter, moat_bytes username, moat_bytes client_id)
{
	uint32_t fi = 0, ti = 0;
	bool done = false; /* the topic has no level left */
	if (filter.len >= 1 && (filter.ptr[0] == '#' || filter.ptr[0] == '+') &&
	    (filter.len == 1 || filter.ptr[1] == '/') && topic.len > 0 && topic.ptr[0] == '$') {
		return false;
	}
	for (;;) {
		/* The rule level [fs, fi), and whether it is the last. */
		uint32_t fs = fi, ts, n;
		bool last;
		moat_bytes f, level;
		while (fi < filter.len && filter.ptr[fi] != '/') {
			fi++;
		}
		f = moat_bytes_of(filter.ptr + fs, fi - fs);
		last = fi >= filter.len;
		if (done) {
			return last && moat_bytes_is(f, "#");
		}
		ts = ti;
		while (ti < topic.len && topic.ptr[ti] != '/') {
			ti++;
		}
		level = moat_bytes_of(topic.ptr + ts, ti - ts);
		if (ti >= topic.len) {
			done = true;
		} else {
			ti++;
		}
		n = f.len;
		if (n == 1 && f.ptr[0] == '#') {
			return true;
		} else if (n == 1 && f.ptr[0] == '+') {
			if (is_filter && moat_bytes_is(level, "#")) {
				return false;
			}
		} else if (n == 2 && f.ptr[0] == '%' && f.ptr[1] == 'u') {
			if (!moat_level_name(username) || !moat_bytes_equal(level, username)) {
				return false;
			}
		} else if (n == 2 && f.ptr[0] == '%' && f.ptr[1] == 'c') {
			if (!moat_level_name(client_id) || !moat_bytes_equal(level, client_id)) {
				return false;
			}
		} else if (!moat_bytes_equal(level, f)) {
			return false;
		}
		if (last) {
			return done;
		}
		fi++; /* past the '/' */
	}
}

/* ---- JSON: a reader for the config ---- */

/*
 * moat_json reads one JSON document (RFC 8259) as a cursor, without
 * allocating: strings are decoded in place (the text must be writable;
 * the config's is), so a moat_bytes of a string is valid as long as the
 * text. Every function returns false on the first error and leaves it in
 * err (a constant message) and err_at (a byte offset); after an error
 * every call returns false.
 *
 *     moat_json j;
 *     moat_bytes key, name;
 *     moat_json_init(&j, text, len);
 *     if (moat_json_object(&j)) {
 *         while (moat_json_member(&j, &key)) {
 *             if (moat_bytes_is(key, "name")) moat_json_string(&j, &name);
 *             else moat_json_skip(&j);
 *         }
 *     }
 *     moat_json_end(&j);
 *     if (j.err) ... j.err, j.err_at ...
 */
typedef enum moat_json_type {
	MOAT_JSON_INVALID = 0,
	MOAT_JSON_OBJECT,
	MOAT_JSON_ARRAY,
	MOAT_JSON_STRING,
	MOAT_JSON_NUMBER,
	MOAT_JSON_BOOL,
	MOAT_JSON_NULL
} moat_json_type;

enum { MOAT_JSON_MAX_DEPTH = 64 };

typedef struct moat_json {
	char *start;
	char *p;
	char *end;
	const char *err;
	uint32_t err_at;
	uint32_t depth;
	uint64_t first; /* bit d: the container at depth d has no item yet */
} moat_json;

void moat_json_init(moat_json *j, char *text, size_t len);
/* moat_json_peek tells the type of the next value without reading it. */
moat_json_type moat_json_peek(moat_json *j);
/* moat_json_object enters an object; moat_json_member reads the next key
 * and its ':' and returns true, or reads the '}' and returns false. */
bool moat_json_object(moat_json *j);
bool moat_json_member(moat_json *j, moat_bytes *key);
/* moat_json_array enters an array; moat_json_element returns true when a
 * value follows (read it next), or reads the ']' and returns false. */
bool moat_json_array(moat_json *j);
bool moat_json_element(moat_json *j);
bool moat_json_string(moat_json *j, moat_bytes *out);
bool moat_json_bool(moat_json *j, bool *out);
/* moat_json_int reads a number that is an integer within int64. */
bool moat_json_int(moat_json *j, int64_t *out);
bool moat_json_null(moat_json *j);
/* moat_json_skip reads any one value. */
bool moat_json_skip(moat_json *j);
/* moat_json_end checks that only white space is left. */
bool moat_json_end(moat_json *j);
/* moat_json_fail records an error of the module's own (a wrong type, an
 * unknown key) at the cursor, so it reads like the reader's. */
bool moat_json_fail(moat_json *j, const char *err);

/* ---- Decision exports ---- */

/* The module's buffer, set by moat_buffer (MOAT_IMPLEMENTATION). */
extern uint8_t *moatp_buffer;
extern uint32_t moatp_buffer_size;

/* moatp_fail reports a request or result the module cannot serve, and
 * returns 0, a malformed result: the host counts a plugin error. */
uint32_t moatp_fail(const char *what, const char *detail);

/*
 * moatp_open checks the request the host wrote for a decision of kind and
 * fills r; false (after logging why) when it breaks §3.
 */
static inline bool moatp_open(int32_t len, uint8_t kind, moat_request *r)
{
	const uint8_t *b = moatp_buffer;
	uint32_t n = (uint32_t)len, i;
	if (len < 16 || n > moatp_buffer_size) {
		return false;
	}
	r->data = b;
	r->len = n;
	r->kind = b[0];
	r->action = b[1];
	r->qos = b[2];
	r->flags = b[3];
	r->protocol = b[4];
	r->nfields = (uint16_t)(b[6] | b[7] << 8);
	r->number = moatp_le32(b + 8);
	if (r->kind != kind || moatp_le32(b + 12) != n || 16 + 8 * (uint32_t)r->nfields > n) {
		return false;
	}
	for (i = 0; i < r->nfields; i++) {
		uint32_t off = moatp_le32(b + 16 + 8 * i), flen = moatp_le32(b + 20 + 8 * i);
		if (off != 0 && (off > n || flen > n - off)) {
			return false;
		}
	}
	return true;
}

static inline int32_t moatp_run_authn(int32_t len, moat_authn_result (*fn)(const moat_request *))
{
	moat_request r;
	moat_authn_result res;
	moat_bytes method;
	if (!moatp_open(len, MOAT_KIND_AUTHN, &r)) {
		return (int32_t)moatp_fail("moat_authenticate", "the request breaks ABI v1 §3");
	}
	res = fn(&r);
	if ((res.bits & 0xff) == MOAT_VERDICT_CONTINUE && !moat_field(&r, MOAT_FIELD_AUTH_METHOD, &method)) {
		return (int32_t)moatp_fail("moat_authenticate", "continue for a request without an auth_method");
	}
	return (int32_t)res.bits;
}

static inline int32_t moatp_run_authz(int32_t len, moat_authz_result (*fn)(const moat_request *))
{
	moat_request r;
	if (!moatp_open(len, MOAT_KIND_AUTHZ, &r)) {
		return (int32_t)moatp_fail("moat_authorize", "the request breaks ABI v1 §3");
	}
	return (int32_t)fn(&r).bits;
}

static inline int32_t moatp_run_payload(int32_t len, moat_payload_result (*fn)(const moat_request *))
{
	moat_request r;
	if (!moatp_open(len, MOAT_KIND_PAYLOAD, &r)) {
		return (int32_t)moatp_fail("moat_payload", "the request breaks ABI v1 §3");
	}
	return (int32_t)fn(&r).bits;
}

static inline int32_t moatp_run_configure(int32_t len, int (*fn)(char *json, size_t len))
{
	if (len < 0 || (uint32_t)len > moatp_buffer_size) {
		return (int32_t)moatp_fail("moat_configure", "the config is larger than the buffer");
	}
	return fn((char *)moatp_buffer, (size_t)len) == 0 ? 0 : 1;
}

/*
 * MOAT_AUTHN(fn) exports moat_authenticate, calling
 *     moat_authn_result fn(const moat_request *r);
 * and likewise MOAT_AUTHZ (moat_authorize, moat_authz_result) and
 * MOAT_PAYLOAD (moat_payload, moat_payload_result). Use each at most once,
 * at file scope.
 *
 * MOAT_CONFIGURE(fn) exports moat_configure, calling
 *     int fn(char *json, size_t len);
 * with the plugin's config as JSON text (writable, valid during the call:
 * copy what you keep); 0 accepts it, anything else refuses it, with the
 * message set by moat_set_message shown to the operator.
 */
#define MOAT_AUTHN(fn) \
	MOAT_EXTERN_C MOAT_EXPORT("moat_authenticate") int32_t moatp_export_authenticate(int32_t len) \
	{ return moatp_run_authn(len, fn); }
#define MOAT_AUTHZ(fn) \
	MOAT_EXTERN_C MOAT_EXPORT("moat_authorize") int32_t moatp_export_authorize(int32_t len) \
	{ return moatp_run_authz(len, fn); }
#define MOAT_PAYLOAD(fn) \
	MOAT_EXTERN_C MOAT_EXPORT("moat_payload") int32_t moatp_export_payload(int32_t len) \
	{ return moatp_run_payload(len, fn); }
#define MOAT_CONFIGURE(fn) \
	MOAT_EXTERN_C MOAT_EXPORT("moat_configure") int32_t moatp_export_configure(int32_t len) \
	{ return moatp_run_configure(len, fn); }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOAT_H */

/* ================================================================== */

#if defined(MOAT_IMPLEMENTATION) && !defined(MOAT_IMPLEMENTED)
#define MOAT_IMPLEMENTED

#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The declaration: its presence says this module speaks ABI v1. */
MOAT_EXPORT("moat_abi_v1") void moatp_export_abi_v1(void) {}

/*
 * moat_buffer returns a buffer of at least size bytes. The first is 4 KiB
 * of static memory; a larger one is new pages from memory.grow (twice the
 * last size, or what is asked when that is more), so that a module that
 * does not use malloc links none. The host asks only when it needs more
 * room than it was given, so the old buffer's content is never needed; it
 * is not reused, and with the doubling what is left behind is at most the
 * size of the buffer in use. malloc (wasi-libc's dlmalloc) takes memory
 * with memory.grow too and copes with pages taken by others. When memory
 * cannot grow (the plugin's memory_limit), it logs "moat_buffer: out of
 * memory for N bytes" and traps, a plugin error: returning 0 or a smaller
 * buffer would let the host write a request over this module's data.
 */
static uint8_t moatp_initial_buffer[MOAT_INITIAL_BUFFER] __attribute__((aligned(16)));
uint8_t *moatp_buffer = moatp_initial_buffer;
uint32_t moatp_buffer_size = MOAT_INITIAL_BUFFER;

MOAT_EXPORT("moat_buffer") int32_t moatp_export_buffer(int32_t size)
{
	size_t pages, doubled, before;
	if (size < 0) {
		moat_panic("moat_buffer: negative size");
	}
	if ((uint32_t)size <= moatp_buffer_size) {
		return (int32_t)(uintptr_t)moatp_buffer;
	}
	pages = ((size_t)size + 0xFFFF) >> 16;
	doubled = ((size_t)moatp_buffer_size * 2 + 0xFFFF) >> 16;
	before = __builtin_wasm_memory_grow(0, doubled > pages ? doubled : pages);
	if (before == (size_t)-1 && doubled > pages) {
		before = __builtin_wasm_memory_grow(0, pages);
	} else if (before != (size_t)-1) {
		pages = doubled > pages ? doubled : pages;
	}
	if (before == (size_t)-1) {
		moat_text t;
		t.len = 0;
		moat_text_str(&t, "moat_buffer: out of memory for ");
		moat_text_uint(&t, (uint32_t)size);
		moat_text_str(&t, " bytes (see the plugin's memory_limit)");
		moat_log_text(MOAT_LOG_ERROR, &t);
		__builtin_trap();
	}
	moatp_buffer = (uint8_t *)(before << 16);
	moatp_buffer_size = (uint32_t)(pages << 16);
	return (int32_t)(uintptr_t)moatp_buffer;
}

void moat_panic(const char *msg)
{
	moat_text t;
	t.len = 0;
	moat_text_str(&t, "panic: ");
	moat_text_str(&t, msg);
	moat_log_text(MOAT_LOG_ERROR, &t);
	moat_set_message(msg);
	__builtin_trap();
}

uint32_t moatp_fail(const char *what, const char *detail)
{
	moat_text t;
	t.len = 0;
	moat_text_str(&t, what);
	moat_text_str(&t, ": ");
	moat_text_str(&t, detail);
	moat_log_text(MOAT_LOG_ERROR, &t);
	moat_set_message_text(&t);
	return 0;
}

moat_bytes moat_bytes_dup(moat_bytes b)
{
	char *p = (char *)malloc((size_t)b.len + 1);
	if (p == NULL) {
		moat_panic("moat_bytes_dup: out of memory");
	}
	if (b.len > 0) {
		__builtin_memcpy(p, b.ptr, b.len);
	}
	p[b.len] = 0;
	return moat_bytes_of(p, b.len);
}

void moat_bytes_free(moat_bytes b)
{
	free((void *)b.ptr);
}

/* ---- JSON ---- */

void moat_json_init(moat_json *j, char *text, size_t len)
{
	j->start = j->p = text;
	j->end = text + len;
	j->err = NULL;
	j->err_at = 0;
	j->depth = 0;
	j->first = 0;
}

bool moat_json_fail(moat_json *j, const char *err)
{
	if (j->err == NULL) {
		j->err = err;
		j->err_at = (uint32_t)(j->p - j->start);
	}
	return false;
}

static void moatp_json_ws(moat_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
		j->p++;
	}
}

/* moatp_json_next skips white space and returns the next byte, or -1. */
static int moatp_json_next(moat_json *j)
{
	if (j->err != NULL) {
		return -1;
	}
	moatp_json_ws(j);
	return j->p < j->end ? (unsigned char)*j->p : -1;
}

moat_json_type moat_json_peek(moat_json *j)
{
	switch (moatp_json_next(j)) {
	case '{': return MOAT_JSON_OBJECT;
	case '[': return MOAT_JSON_ARRAY;
	case '"': return MOAT_JSON_STRING;
	case 't': case 'f': return MOAT_JSON_BOOL;
	case 'n': return MOAT_JSON_NULL;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9': return MOAT_JSON_NUMBER;
	}
	return MOAT_JSON_INVALID;
}

static bool moatp_json_push(moat_json *j)
{
	if (j->depth >= MOAT_JSON_MAX_DEPTH) {
		return moat_json_fail(j, "nested too deeply");
	}
	j->p++;
	j->depth++;
	j->first |= (uint64_t)1 << (j->depth - 1);
	return true;
}

/* moatp_json_item starts the next item of the innermost container, whose
 * closing byte is close: false at the close (read) or on an error. */
static bool moatp_json_item(moat_json *j, int close)
{
	uint64_t bit;
	int c = moatp_json_next(j);
	if (c < 0 || j->depth == 0) {
		return moat_json_fail(j, c < 0 && j->err == NULL ? "unexpected end" : "not in a container");
	}
	bit = (uint64_t)1 << (j->depth - 1);
	if (c == close) {
		j->p++;
		j->depth--;
		j->first &= ~bit;
		return false;
	}
	if (j->first & bit) {
		j->first &= ~bit;
		return true;
	}
	if (c != ',') {
		return moat_json_fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	j->p++;
	if (moatp_json_next(j) == close) {
		return moat_json_fail(j, "trailing comma");
	}
	return true;
}

bool moat_json_object(moat_json *j)
{
	if (moatp_json_next(j) != '{') {
		return moat_json_fail(j, "expected an object");
	}
	return moatp_json_push(j);
}

bool moat_json_member(moat_json *j, moat_bytes *key)
{
	if (!moatp_json_item(j, '}')) {
		return false;
	}
	if (moatp_json_next(j) != '"') {
		return moat_json_fail(j, "expected a key");
	}
	if (!moat_json_string(j, key)) {
		return false;
	}
	if (moatp_json_next(j) != ':') {
		return moat_json_fail(j, "expected ':'");
	}
	j->p++;
	return true;
}

bool moat_json_array(moat_json *j)
{
	if (moatp_json_next(j) != '[') {
		return moat_json_fail(j, "expected an array");
	}
	return moatp_json_push(j);
}

bool moat_json_element(moat_json *j)
{
	return moatp_json_item(j, ']');
}

static int moatp_hex(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static bool moatp_json_u4(moat_json *j, uint32_t *out)
{
	int i;
	*out = 0;
	if (j->end - j->p < 4) {
		return moat_json_fail(j, "bad \\u escape");
	}
	for (i = 0; i < 4; i++) {
		int h = moatp_hex((unsigned char)j->p[i]);
		if (h < 0) {
			return moat_json_fail(j, "bad \\u escape");
		}
		*out = *out << 4 | (uint32_t)h;
	}
	j->p += 4;
	return true;
}

/* moatp_utf8 writes code point c at w and returns the byte count; the
 * escape it came from (6 or 12 bytes) is always longer. */
static int moatp_utf8(char *w, uint32_t c)
{
	if (c < 0x80) {
		w[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		w[0] = (char)(0xC0 | c >> 6);
		w[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		w[0] = (char)(0xE0 | c >> 12);
		w[1] = (char)(0x80 | (c >> 6 & 0x3F));
		w[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	w[0] = (char)(0xF0 | c >> 18);
	w[1] = (char)(0x80 | (c >> 12 & 0x3F));
	w[2] = (char)(0x80 | (c >> 6 & 0x3F));
	w[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

bool moat_json_string(moat_json *j, moat_bytes *out)
{
	char *w;
	if (moatp_json_next(j) != '"') {
		return moat_json_fail(j, "expected a string");
	}
	j->p++;
	w = j->p;
	out->ptr = (const uint8_t *)w;
	out->len = 0;
	for (;;) {
		unsigned char c;
		if (j->p >= j->end) {
			return moat_json_fail(j, "unterminated string");
		}
		c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20) {
			return moat_json_fail(j, "control character in a string");
		}
		if (c != '\\') {
			*w++ = (char)c;
			j->p++;
			continue;
		}
		if (j->end - j->p < 2) {
			return moat_json_fail(j, "unterminated string");
		}
		j->p += 2;
		switch (j->p[-1]) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			uint32_t c1, c2;
			if (!moatp_json_u4(j, &c1)) {
				return false;
			}
			/* A surrogate pair is one code point; a lone surrogate
			 * becomes U+FFFD, as in Go's encoding/json, which checked
			 * the config the host hands over. */
			if (c1 >= 0xD800 && c1 < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
				char *save = j->p;
				j->p += 2;
				if (moatp_json_u4(j, &c2) && c2 >= 0xDC00 && c2 < 0xE000) {
					c1 = 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
				} else {
					j->p = save; /* read the second escape on its own */
					j->err = NULL;
				}
			}
			if (c1 >= 0xD800 && c1 < 0xE000) {
				c1 = 0xFFFD;
			}
			w += moatp_utf8(w, c1);
			break;
		}
		default:
			j->p--;
			return moat_json_fail(j, "bad escape");
		}
	}
	out->len = (uint32_t)(w - (const char *)out->ptr);
	return true;
}

static bool moatp_json_word(moat_json *j, const char *word)
{
	size_t n = __builtin_strlen(word);
	if ((size_t)(j->end - j->p) < n || __builtin_memcmp(j->p, word, n) != 0) {
		return moat_json_fail(j, "invalid value");
	}
	j->p += n;
	return true;
}

bool moat_json_bool(moat_json *j, bool *out)
{
	int c = moatp_json_next(j);
	if (c == 't') {
		*out = true;
		return moatp_json_word(j, "true");
	}
	if (c == 'f') {
		*out = false;
		return moatp_json_word(j, "false");
	}
	return moat_json_fail(j, "expected true or false");
}

bool moat_json_null(moat_json *j)
{
	if (moatp_json_next(j) != 'n') {
		return moat_json_fail(j, "expected null");
	}
	return moatp_json_word(j, "null");
}

static bool moatp_digit(moat_json *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* moatp_json_number reads a number's text; *integer tells whether it had
 * no fraction or exponent. */
static bool moatp_json_number(moat_json *j, bool *integer)
{
	*integer = true;
	if (j->p < j->end && *j->p == '-') {
		j->p++;
	}
	if (!moatp_digit(j)) {
		return moat_json_fail(j, "invalid number");
	}
	if (*j->p == '0') {
		j->p++;
	} else {
		while (moatp_digit(j)) j->p++;
	}
	if (j->p < j->end && *j->p == '.') {
		*integer = false;
		j->p++;
		if (!moatp_digit(j)) {
			return moat_json_fail(j, "invalid number");
		}
		while (moatp_digit(j)) j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		*integer = false;
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
			j->p++;
		}
		if (!moatp_digit(j)) {
			return moat_json_fail(j, "invalid number");
		}
		while (moatp_digit(j)) j->p++;
	}
	return true;
}

bool moat_json_int(moat_json *j, int64_t *out)
{
	char *s;
	bool integer, neg;
	uint64_t v = 0, limit;
	if (moat_json_peek(j) != MOAT_JSON_NUMBER) {
		return moat_json_fail(j, "expected a number");
	}
	s = j->p;
	if (!moatp_json_number(j, &integer)) {
		return false;
	}
	if (!integer) {
		j->p = s;
		return moat_json_fail(j, "expected an integer");
	}
	neg = *s == '-';
	if (neg) s++;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; s < j->p; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (limit - d) / 10) {
			j->p = s;
			return moat_json_fail(j, "integer out of range");
		}
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

bool moat_json_skip(moat_json *j)
{
	moat_bytes s;
	bool b, integer;
	uint32_t depth;
	switch (moat_json_peek(j)) {
	case MOAT_JSON_OBJECT:
		depth = j->depth;
		if (!moat_json_object(j)) return false;
		while (j->depth > depth) {
			if (moat_json_member(j, &s)) {
				if (!moat_json_skip(j)) return false;
			} else if (j->err != NULL) {
				return false;
			}
		}
		return true;
	case MOAT_JSON_ARRAY:
		depth = j->depth;
		if (!moat_json_array(j)) return false;
		while (j->depth > depth) {
			if (moat_json_element(j)) {
				if (!moat_json_skip(j)) return false;
			} else if (j->err != NULL) {
				return false;
			}
		}
		return true;
	case MOAT_JSON_STRING:
		return moat_json_string(j, &s);
	case MOAT_JSON_BOOL:
		return moat_json_bool(j, &b);
	case MOAT_JSON_NULL:
		return moat_json_null(j);
	case MOAT_JSON_NUMBER:
		return moatp_json_number(j, &integer);
	default:
		return moat_json_fail(j, j->p >= j->end ? "unexpected end" : "invalid value");
	}
}

bool moat_json_end(moat_json *j)
{
	if (j->err != NULL) {
		return false;
	}
	moatp_json_ws(j);
	if (j->p != j->end) {
		return moat_json_fail(j, "text after the value");
	}
	return true;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOAT_IMPLEMENTATION */
