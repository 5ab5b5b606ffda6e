/*
 * A module that fails on demand, for sdk/c's tests: its authz decision
 * reads the topic as an order.
 *   "abort"   abort(): a trap with no message
 *   "panic"   moat_panic: a trap whose message reaches the log
 *   "assert"  a failed MOAT_ASSERT
 *   "reason"  a deny with a reason below 0x80, which the SDK turns into
 *             the default reason rather than a malformed result
 *   other     allow
 * and its authn decision answers continue, which the SDK refuses for a
 * request without an auth_method.
 */
#define MOAT_IMPLEMENTATION
#include "moat.h"

#include <stdlib.h>

static moat_authz_result authorize(const moat_request *r)
{
	moat_bytes topic = moat_topic(r);
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
