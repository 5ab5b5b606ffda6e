/*
 * A module that fails on demand, for sdk/c's tests: its authz decision
 * reads the topic as an order.
 *   "abort"   abort(): a trap with no message
 *   "panic"   moat_panic: a trap whose message reaches the log
 *   "assert"  a failed MOAT_ASSERT
 *   "reason"  a deny with a reason below 0x80, which the SDK turns into
 *             the default reason rather than a malformed result
 *   other     allow
 * unless the listener names a check, for the fuzz tests:
 *   "json"    allow when the topic is one JSON document (moat_json_skip)
 *   "match"   allow when moat_match(share_group, topic, subscribe?,
 *             username, client_id)
 * Its authn decision answers continue, which the SDK refuses for a
 * request without an auth_method.
 */
#define MOAT_IMPLEMENTATION
#include "moat.h"

#include <stdlib.h>

static moat_authz_result authorize(const moat_request *r)
{
	moat_bytes topic = moat_topic(r), listener = moat_listener(r);
	if (moat_bytes_is(listener, "json")) {
		moat_json j;
		/* The reader decodes strings in place: in the request buffer,
		 * which the host rewrites for the next call anyway. */
		moat_json_init(&j, (char *)topic.ptr, topic.len);
		return moat_json_skip(&j) && moat_json_end(&j) ? moat_authz_allow() : moat_authz_deny();
	}
	if (moat_bytes_is(listener, "match")) {
		moat_bytes filter = moat_field_or_empty(r, MOAT_FIELD_SHARE_GROUP);
		return moat_match(filter, topic, r->action == MOAT_ACTION_SUBSCRIBE, moat_username(r), moat_client_id(r))
			? moat_authz_allow() : moat_authz_deny();
	}
	if (moat_bytes_is(topic, "abort")) {
		abort();
	}
	if (moat_bytes_is(topic, "panic")) {
		moat_panic("the topic asked for a panic");
	}
	MOAT_ASSERT(!moat_bytes_is(topic, "assert"));
	if (moat_bytes_is(topic, "reason")) {
		return moat_authz_deny_reason(0x10);
	}
	return moat_authz_allow();
}
MOAT_AUTHZ(authorize)

static moat_authn_result authenticate(const moat_request *r)
{
	(void)r;
	return moat_authn_continue();
}
MOAT_AUTHN(authenticate)
