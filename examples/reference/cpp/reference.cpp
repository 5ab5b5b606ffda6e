// The reference policy in C++, on the C SDK's header (sdk/c/moat.h), the
// same policy as in every SDK's language:
//
// config:  {"users":[{"name":"alice","password":"alice-pw","tenant":"acme"}, ...]}
// authn:   a listed user with the right password is allowed, with the
//          attribute tenant = the user's tenant; a listed user with a wrong
//          (or no) password is denied, "bad user name or password"; anyone
//          else is ignored (left to the next plugin).
// authz:   every action is allowed on devices/{username}/# and on
//          tenants/{tenant attribute}/#; everything else is denied. A
//          subscription is allowed only when one of them covers its filter.
// payload: messages on secure/# are kept at rest encrypted under key id
//          "default"; others are plaintext (whatever the action).
//
// examples/reference/POLICY.md has the details; examples/reference/cases.toml
// is the conformance suite every language's build passes.
//
// It uses no C++ standard library (wasi-libc has none; Debian's
// libc++-dev-wasm32 adds one) and no exceptions. Build (see sdk/c/README.md):
//     clang++ --target=wasm32-wasi -mexec-model=reactor -O2 -fno-exceptions \
//         -fno-rtti -nostdlib++ -Isdk/c -Wl,--strip-debug \
//         -o bin/examples/reference-cpp.wasm examples/reference/cpp/reference.cpp
#define MOAT_IMPLEMENTATION
#include "moat.h"

#include <stdlib.h>

namespace {

struct User {
	moat_bytes name;
	moat_bytes password;
	moat_bytes tenant;
};

// Users is the table of one instance: configure runs once per instance.
class Users {
public:
	const User *find(moat_bytes name) const
	{
		for (uint32_t i = 0; i < n_; i++) {
			if (moat_bytes_equal(users_[i].name, name)) {
				return &users_[i];
			}
		}
		return nullptr;
	}

	void add(const User &u)
	{
		if (n_ == cap_) {
			cap_ = cap_ ? 2 * cap_ : 8;
			void *grown = realloc(users_, cap_ * sizeof(User));
			if (grown == nullptr) {
				moat_panic("reference: out of memory for the users");
			}
			users_ = static_cast<User *>(grown);
		}
		users_[n_++] = User{moat_bytes_dup(u.name), moat_bytes_dup(u.password), moat_bytes_dup(u.tenant)};
	}

	void clear()
	{
		for (uint32_t i = 0; i < n_; i++) {
			moat_bytes_free(users_[i].name);
			moat_bytes_free(users_[i].password);
			moat_bytes_free(users_[i].tenant);
		}
		n_ = 0;
	}

	uint32_t size() const { return n_; }

private:
	User *users_ = nullptr;
	uint32_t n_ = 0;
	uint32_t cap_ = 0;
};

Users users;

// Message builds a refusal: "reference: config: " and the parts given.
class Message {
public:
	Message() { t_.len = 0; add("reference: config: "); }
	Message &add(const char *s) { moat_text_str(&t_, s); return *this; }
	Message &add(moat_bytes b) { moat_text_bytes(&t_, b); return *this; }
	Message &add(uint64_t v) { moat_text_uint(&t_, v); return *this; }
	Message &user(uint32_t i) { return add("users[").add(uint64_t(i)).add("]"); }
	Message &at(const moat_json &j) { return add(j.err).add(" at byte ").add(uint64_t(j.err_at)); }
	int refuse() const { moat_set_message_text(&t_); return 1; }

private:
	moat_text t_;
};

// configure reads the users; an unknown key, or a missing name, password
// or tenant, refuses the config. Of two users of one name, the first wins.
int configure(char *text, size_t len)
{
	users.clear();
	moat_json j;
	moat_bytes key;
	moat_json_init(&j, text, len);
	if (!moat_json_object(&j)) {
		return Message().add("the config: ").at(j).refuse();
	}
	while (moat_json_member(&j, &key)) {
		if (!moat_bytes_is(key, "users")) {
			return Message().add("unknown key \"").add(key).add("\"").refuse();
		}
		if (!moat_json_array(&j)) {
			return Message().add("users: ").at(j).refuse();
		}
		while (moat_json_element(&j)) {
			const uint32_t i = users.size();
			User u{};
			bool has_name = false, has_password = false, has_tenant = false;
			if (!moat_json_object(&j)) {
				return Message().user(i).add(": ").at(j).refuse();
			}
			while (moat_json_member(&j, &key)) {
				moat_bytes *field;
				if (moat_bytes_is(key, "name")) {
					field = &u.name;
					has_name = true;
				} else if (moat_bytes_is(key, "password")) {
					field = &u.password;
					has_password = true;
				} else if (moat_bytes_is(key, "tenant")) {
					field = &u.tenant;
					has_tenant = true;
				} else {
					return Message().user(i).add(": unknown key \"").add(key).add("\"").refuse();
				}
				if (!moat_json_string(&j, field)) {
					return Message().user(i).add(".").add(key).add(": ").at(j).refuse();
				}
			}
			if (j.err != nullptr) {
				return Message().user(i).add(": ").at(j).refuse();
			}
			if (!has_name || u.name.len == 0) {
				return Message().user(i).add(".name: missing or empty").refuse();
			}
			if (!has_password) {
				return Message().user(i).add(".password: missing").refuse();
			}
			if (!has_tenant) {
				return Message().user(i).add(".tenant: missing").refuse();
			}
			if (users.find(u.name) == nullptr) { // the first user of a name wins
				users.add(u);
			}
		}
		if (j.err != nullptr) {
			return Message().add("users: ").at(j).refuse();
		}
	}
	if (!moat_json_end(&j)) {
		return Message().add("the config: ").at(j).refuse();
	}
	return 0;
}

moat_authn_result authenticate(const moat_request *r)
{
	const User *u = users.find(moat_username(r));
	if (u == nullptr) {
		return moat_authn_ignore();
	}
	moat_bytes password;
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

// tenant_filter builds "tenants/<tenant>/#"; attributes total at most
// 4096 bytes, so any tenant fits.
template <size_t N>
moat_bytes tenant_filter(char (&buf)[N], moat_bytes tenant)
{
	static_assert(N >= MOAT_MAX_ATTRIBUTE_BYTES + 10, "room for any tenant");
	constexpr char prefix[] = "tenants/";
	constexpr size_t plen = sizeof prefix - 1;
	__builtin_memcpy(buf, prefix, plen);
	__builtin_memcpy(buf + plen, tenant.ptr, tenant.len);
	__builtin_memcpy(buf + plen + tenant.len, "/#", 2);
	return moat_bytes_of(buf, plen + tenant.len + 2);
}

char filter_buf[MOAT_MAX_ATTRIBUTE_BYTES + 16];

moat_authz_result authorize(const moat_request *r)
{
	const bool sub = r->action == MOAT_ACTION_SUBSCRIBE;
	const moat_bytes topic = moat_topic(r), user = moat_username(r), client = moat_client_id(r);
	if (moat_match(moat_str("devices/%u/#"), topic, sub, user, client)) {
		return moat_authz_allow();
	}
	moat_bytes tenant;
	if (moat_attribute(r, moat_str("tenant"), &tenant) && moat_level_name(tenant) &&
	    tenant.len <= MOAT_MAX_ATTRIBUTE_BYTES &&
	    moat_match(tenant_filter(filter_buf, tenant), topic, sub, user, client)) {
		return moat_authz_allow();
	}
	return moat_authz_deny();
}

moat_payload_result payload(const moat_request *r)
{
	if (moat_match(moat_str("secure/#"), moat_topic(r), false, moat_username(r), moat_client_id(r))) {
		moat_set_key_id(moat_str("default"));
		return moat_payload_allow(MOAT_MODE_AT_REST);
	}
	return moat_payload_allow(MOAT_MODE_PLAINTEXT);
}

} // namespace

MOAT_CONFIGURE(configure)
MOAT_AUTHN(authenticate)
MOAT_AUTHZ(authorize)
MOAT_PAYLOAD(payload)
