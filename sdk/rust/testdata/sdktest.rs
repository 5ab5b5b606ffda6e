//! A module that exposes the SDK's pieces to sdk/rust/sdk_test.go, which
//! drives it through the broker's runtime. It is built by that test with
//! the SDK's recipe; it is not an example.
#![no_std]

#[macro_use]
#[path = "../moat.rs"]
mod moat;

use core::fmt::Write;
use moat::*;

fn configure(cfg: &[u8]) -> Result<(), Msg> {
    let root = json::parse(cfg).map_err(|e| moat_msg!("{}", e))?;
    if root.get("panic").and_then(|v| v.as_bool()) == Some(true) {
        panic!("config asked for a panic ({})", 42);
    }
    if let Some(m) = root.get("refuse").and_then(|v| v.as_str()) {
        let mut buf = [0u8; 128];
        return Err(Msg::from(m.decode(&mut buf).unwrap_or("too long")));
    }
    // Keep something in the arena, so that later buffer growth must move.
    if let Some(k) = root.get("keep").and_then(|v| v.as_i64()) {
        arena::alloc(k as usize, 1).ok_or_else(|| Msg::from("out of memory"))?;
    }
    Ok(())
}

// canon writes v in a canonical form: strings decoded and quoted, numbers
// as integers when they are, objects as {k:v,...}.
fn canon(m: &mut Msg, v: json::Value) {
    match v.kind() {
        json::Kind::Null => m.push("null"),
        json::Kind::Bool => m.push(if v.as_bool() == Some(true) { "true" } else { "false" }),
        json::Kind::Number => match v.as_i64() {
            Some(n) => {
                let _ = write!(m, "{}", n);
            }
            None => m.push(core::str::from_utf8(v.text()).unwrap_or("?")),
        },
        json::Kind::String => {
            m.push("\"");
            for c in v.as_str().unwrap().chars() {
                let _ = m.write_char(c);
            }
            m.push("\"");
        }
        json::Kind::Array => {
            m.push("[");
            for (i, x) in v.items().enumerate() {
                if i > 0 {
                    m.push(",");
                }
                canon(m, x);
            }
            m.push("]");
        }
        json::Kind::Object => {
            m.push("{");
            for (i, (k, x)) in v.members().enumerate() {
                if i > 0 {
                    m.push(",");
                }
                for c in k.chars() {
                    let _ = m.write_char(c);
                }
                m.push(":");
                canon(m, x);
            }
            m.push("}");
        }
    }
}

fn hex(m: &mut Msg, b: &[u8]) {
    for x in b {
        let _ = write!(m, "{:02x}", x);
    }
}

trait Push {
    fn push(&mut self, s: &str);
}

impl Push for Msg {
    fn push(&mut self, s: &str) {
        let _ = self.write_str(s);
    }
}

fn authn(r: &AuthnRequest) -> Authn {
    match r.username() {
        // The password is a JSON document: answer its canonical form, or
        // the parse error, as the message.
        "json" => {
            let src = r.password().unwrap_or(&[]);
            match json::parse(src) {
                Ok(v) => {
                    let mut m = Msg::new();
                    canon(&mut m, v);
                    let _ = set_message(m.as_str());
                    Authn::allow()
                }
                Err(e) => {
                    let _ = set_message(moat_msg!("{}", e).as_str());
                    Authn::deny_with(Reason::new(0x99).unwrap())
                }
            }
        }
        "props" => {
            let mut m = Msg::new();
            for (k, v) in r.user_properties() {
                let _ = write!(m, "{}={};", k, v);
            }
            for s in r.cert_sans() {
                let _ = write!(m, "san:{};", s);
            }
            let _ = set_message(m.as_str());
            let _ = add_attribute("superuser", "yes");
            Authn::allow_superuser()
        }
        "enhanced" => match r.continue_auth() {
            Some(c) if r.round() == 0 => {
                let _ = set_auth_state(b"round-1");
                let _ = set_auth_data(r.auth_data().unwrap_or(b""));
                c
            }
            Some(_) => {
                if r.auth_state() == Some(b"round-1") {
                    Authn::allow()
                } else {
                    Authn::deny_with(Reason::BAD_AUTH_METHOD)
                }
            }
            None => Authn::deny_with(Reason::BAD_AUTH_METHOD),
        },
        "panic" => panic!("boom for {}", r.client_id()),
        // Host functions: the message shows what each returned.
        "host" => {
            let pw = r.password().unwrap_or(b"");
            let mut m = Msg::new();
            let mut out = [0u8; 32];
            let st = pbkdf2(Sha::Sha256, pw, b"salt", 1000, &mut out);
            let _ = write!(m, "pbkdf2 {:?} ", st);
            hex(&mut m, &out);
            let st = argon2id(pw, b"saltsalt", 1, 64, 1, &mut out[..16]);
            let _ = write!(m, " argon2id {:?} ", st);
            hex(&mut m, &out[..16]);
            let _ = write!(m, " bcrypt {:?}", bcrypt_compare(r.auth_data().unwrap_or(b""), pw));
            let mut rnd = [0u8; 16];
            let _ = write!(m, " random {:?} {}", random(&mut rnd), rnd.iter().any(|&b| b != 0));
            let _ = write!(m, " time {}", time_now() > 1_600_000_000_000_000_000 && time_monotonic() >= 0);
            let _ = write!(m, " expiry {:?} {:?}", set_expiry(0), set_expiry(time_now() + 1_000_000_000));
            let _ = write!(m, " key {:?}", set_key_id("k"));
            let _ = set_message(m.as_str());
            Authn::allow()
        }
        "file" => {
            let name = core::str::from_utf8(r.password().unwrap_or(b"")).unwrap_or("");
            let mut buf = [0u8; 64];
            let mut m = Msg::new();
            match (file_size(name), file_read(name, 0, &mut buf)) {
                (Ok(n), Ok(k)) => {
                    let _ = write!(m, "{} {}", n, core::str::from_utf8(&buf[..k]).unwrap_or("?"));
                }
                (a, b) => {
                    let _ = write!(m, "{:?} {:?}", a.err(), b.err());
                }
            }
            let _ = set_message(m.as_str());
            Authn::allow()
        }
        _ => Authn::ignore(),
    }
}

// authz: the client's attribute "filter" is matched against the request
// (a subscribe's topic as a filter); "size" answers the request's length.
fn authz(r: &AuthzRequest) -> Authz {
    if r.topic() == "size" {
        let big = r.attributes().get("big").map(|s| s.len()).unwrap_or(0);
        let _ = set_message(moat_msg!("{} {}", r.bytes().len(), big).as_str());
        return Authz::allow();
    }
    match r.attributes().get("filter") {
        Some(f) if Filter::new(f).matches_request(r) => Authz::allow(),
        Some(_) => Authz::deny_with(Reason::new(0x87).unwrap()),
        None => Authz::ignore(),
    }
}

moat_plugin!(configure = configure, authn = authn, authz = authz);
