//! The reference policy (examples/reference/POLICY.md) with the Rust SDK.
//!
//! Build: make bin/examples/reference-rust.wasm
//! (the rustc command line is in sdk/rust/README.md).
#![no_std]

#[macro_use]
#[path = "../../../sdk/rust/moat.rs"]
mod moat;

use moat::*;

#[derive(Clone, Copy)]
struct User {
    name: &'static str,
    password: &'static str,
    tenant: &'static str,
}

// Set once per instance by configure, before any decision; an instance
// serves one call at a time.
static mut USERS: &[User] = &[];

fn string_member(v: json::Value, key: &str, i: usize) -> Result<&'static str, Msg> {
    let s = v
        .get(key)
        .and_then(|x| x.as_str())
        .ok_or_else(|| moat_msg!("users[{}].{}: want a string", i, key))?;
    s.keep().ok_or_else(|| Msg::from("out of memory"))
}

fn configure(cfg: &[u8]) -> Result<(), Msg> {
    let root = json::parse(cfg).map_err(|e| moat_msg!("config: {}", e))?;
    if root.kind() != json::Kind::Object {
        return Err(Msg::from("config: want an object"));
    }
    for (k, _) in root.members() {
        if !k.eq_str("users") {
            return Err(moat_msg!("config: unknown key \"{}\"", core::str::from_utf8(k.raw()).unwrap_or("?")));
        }
    }
    let users = match root.get("users") {
        Some(u) if u.kind() == json::Kind::Array => u,
        Some(_) => return Err(Msg::from("users: want an array")),
        None => return Ok(()),
    };
    let empty = User { name: "", password: "", tenant: "" };
    let table = arena::alloc_slice(users.items().count(), empty).ok_or_else(|| Msg::from("out of memory"))?;
    for (i, u) in users.items().enumerate() {
        if u.kind() != json::Kind::Object {
            return Err(moat_msg!("users[{}]: want an object", i));
        }
        for (k, _) in u.members() {
            if !(k.eq_str("name") || k.eq_str("password") || k.eq_str("tenant")) {
                return Err(moat_msg!("users[{}]: unknown key \"{}\"", i, core::str::from_utf8(k.raw()).unwrap_or("?")));
            }
        }
        table[i] = User {
            name: string_member(u, "name", i)?,
            password: string_member(u, "password", i)?,
            tenant: string_member(u, "tenant", i)?,
        };
    }
    unsafe { USERS = table };
    Ok(())
}

fn find(name: &str) -> Option<&'static User> {
    unsafe { USERS.iter().find(|u| u.name == name) }
}

fn authn(r: &AuthnRequest) -> Authn {
    let user = match find(r.username()) {
        Some(u) => u,
        None => return Authn::ignore(),
    };
    // No password counts as a wrong one, compared all the same.
    let given = r.password().unwrap_or(&[]);
    if !ct_eq(user.password.as_bytes(), given) || r.password().is_none() {
        let _ = set_message("bad user name or password");
        return Authn::deny();
    }
    let _ = add_attribute("tenant", user.tenant);
    Authn::allow()
}

const RULES: [Filter; 2] = [Filter::new("devices/%u/#"), Filter::new("tenants/%{tenant}/#")];

fn authz(r: &AuthzRequest) -> Authz {
    if RULES.iter().any(|f| f.matches_request(r)) {
        Authz::allow()
    } else {
        Authz::deny()
    }
}

const SECURE: Filter = Filter::new("secure/#");

fn payload(r: &PayloadRequest) -> Payload {
    if SECURE.matches(r.topic()) {
        let _ = set_key_id("default");
        Payload::allow(Mode::AtRest)
    } else {
        Payload::allow(Mode::Plaintext)
    }
}

moat_plugin!(configure = configure, authn = authn, authz = authz, payload = payload);
