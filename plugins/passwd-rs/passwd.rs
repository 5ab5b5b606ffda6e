//! moat's password-file plugin in Rust: the same configuration, file grant,
//! formats and decisions as plugins/passwd, whose engine
//! plugins/passwd/passwdfile is the reference this module is checked
//! against (passwd_test.go), in a module of kilobytes.
//!
//! Formats: Mosquitto $6$ (one SHA-512 pass, computed here) and $7$
//! (PBKDF2-HMAC-SHA512), argon2id PHC, bcrypt $2a/$2b/$2y,
//! mosquitto-go-auth PBKDF2$sha256|sha512, SCRAM credential lines (a plain
//! password is checked as StoredKey = H(HMAC(SaltedPassword, "Client
//! Key"))). PBKDF2, Argon2id and bcrypt run in the host (sdk/ABI.md §6);
//! SHA-256, SHA-512 and HMAC are here.
//!
//! Build: make bin/plugins/passwd.wasm (sdk/rust/README.md has the recipe).
#![no_std]

#[macro_use]
#[path = "../../sdk/rust/moat.rs"]
mod moat;

use moat::*;

// Caps of plugins/passwd/passwdfile/hash.go.
const MAX_PBKDF2_ITER: u64 = 2_000_000;
const MAX_BCRYPT_COST: u64 = 15;
const MAX_ARGON2_MEMORY: u64 = 256 * 1024;
const MAX_ARGON2_TIME: u64 = 64;
const MAX_ARGON2_PAR: u64 = 16;
const MAX_ARGON2_WORK: u64 = 1024 * 1024;
const MAX_SALT: usize = 1024;
const MAX_DIGEST: usize = 1024;
const MIN_GOAUTH_KEY: usize = 16;
const MAX_LINE: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sha512,
    MosqPbkdf2,
    Argon2id,
    Bcrypt,
    GoAuthPbkdf2,
    Scram,
}

#[derive(Clone, Copy)]
struct Entry {
    kind: Kind,
    user: &'static [u8],
    line: u32,
    text: &'static [u8],
    salt: &'static [u8],
    sum: &'static [u8],
    iter: u32,
    mem: u32,
    par: u32,
    sha512: bool, // PBKDF2's and SCRAM's hash
}

impl Entry {
    fn cost_eq(&self, o: &Entry) -> bool {
        self.kind == o.kind && self.iter == o.iter && self.mem == o.mem && self.par == o.par && self.sum.len() == o.sum.len()
    }

    /// Checks password; the cost depends only on the entry's parameters. A
    /// host refusing the parameters is a refusal.
    fn verify(&self, password: &[u8]) -> bool {
        let mut got = [0u8; MAX_DIGEST];
        let n = self.sum.len();
        let ok = match self.kind {
            Kind::Sha512 => {
                let mut h = Sha512::new();
                h.update(password);
                h.update(self.salt);
                got[..64].copy_from_slice(&h.finish());
                true
            }
            Kind::MosqPbkdf2 | Kind::GoAuthPbkdf2 => {
                let alg = if self.sha512 { Sha::Sha512 } else { Sha::Sha256 };
                pbkdf2(alg, password, self.salt, self.iter, &mut got[..n]).is_ok()
            }
            Kind::Argon2id => match argon2id(password, self.salt, self.iter, self.mem, self.par, &mut got[..n]) {
                Ok(()) => true,
                Err(HostError::Invalid) => guest_argon2id(password, self.salt, self.iter, self.mem, self.par, &mut got[..n]),
                Err(_) => false,
            },
            Kind::Bcrypt => return bcrypt_compare(self.text, password) == Ok(true),
            Kind::Scram => {
                let size = if self.sha512 { 64 } else { 32 };
                let mut sp = [0u8; 64];
                let alg = if self.sha512 { Sha::Sha512 } else { Sha::Sha256 };
                if pbkdf2(alg, password, self.salt, self.iter, &mut sp[..size]).is_ok() {
                    if self.sha512 {
                        let ck = hmac_sha512(&sp[..size], b"Client Key");
                        let mut h = Sha512::new();
                        h.update(&ck);
                        got[..64].copy_from_slice(&h.finish());
                    } else {
                        let ck = hmac_sha256(&sp[..size], b"Client Key");
                        let mut h = Sha256::new();
                        h.update(&ck);
                        got[..32].copy_from_slice(&h.finish());
                    }
                    true
                } else {
                    false
                }
            }
        };
        ok & ct_eq(&got[..n], self.sum)
    }
}

struct File {
    sorted: &'static [Entry], // by user
    dummy: Entry,
    superusers: &'static [&'static str],
}

/// What an unknown user is checked against in an empty file: what
/// `moat passwd` writes by default (argon2id m=19 MiB, t=2, p=1).
const DEFAULT_DUMMY: Entry = Entry {
    kind: Kind::Argon2id,
    user: b"",
    line: 0,
    text: b"",
    salt: &[0; 16],
    sum: &[0; 32],
    iter: 2,
    mem: 19 * 1024,
    par: 1,
    sha512: false,
};

static mut FILE: File = File { sorted: &[], dummy: DEFAULT_DUMMY, superusers: &[] };

impl File {
    fn find(&self, user: &[u8]) -> Option<&Entry> {
        self.sorted.binary_search_by(|e| e.user.cmp(user)).ok().map(|i| &self.sorted[i])
    }
}

// ---------------------------------------------------------------------------
// Configuration.

fn oom() -> Msg {
    Msg::from("passwd: out of memory")
}

fn key_is(k: &json::Str, name: &str) -> bool {
    k.raw().eq_ignore_ascii_case(name.as_bytes()) || k.eq_str(name)
}

fn configure(cfg: &[u8]) -> Result<(), Msg> {
    let root = json::parse(cfg).map_err(|e| moat_msg!("passwd: config: {}", e))?;
    if root.kind() != json::Kind::Object && root.kind() != json::Kind::Null {
        return Err(Msg::from("passwd: config: want an object"));
    }
    let mut file: &'static str = "";
    let mut enc: &'static str = "";
    let mut supers: &'static [&'static str] = &[];
    for (k, v) in root.members() {
        if key_is(&k, "file") || key_is(&k, "goauth_salt_encoding") {
            if v.kind() == json::Kind::Null {
                continue;
            }
            let s = v.as_str().ok_or_else(|| moat_msg!("passwd: config: {}: want a string", core::str::from_utf8(k.raw()).unwrap_or("?")))?;
            let s = s.keep().ok_or_else(oom)?;
            if key_is(&k, "file") {
                file = s;
            } else {
                enc = s;
            }
        } else if key_is(&k, "superusers") {
            if v.kind() == json::Kind::Null {
                supers = &[];
                continue;
            }
            if v.kind() != json::Kind::Array {
                return Err(Msg::from("passwd: config: superusers: want an array of strings"));
            }
            let n = v.items().count();
            let list = arena::alloc_slice::<&'static str>(n, "").ok_or_else(oom)?;
            for (i, it) in v.items().enumerate() {
                if it.kind() == json::Kind::Null {
                    continue; // "" as in encoding/json, refused below
                }
                let s = it.as_str().ok_or_else(|| Msg::from("passwd: config: superusers: want an array of strings"))?;
                list[i] = s.keep().ok_or_else(oom)?;
            }
            supers = list;
        } else {
            return Err(moat_msg!("passwd: config: json: unknown field \"{}\"", core::str::from_utf8(k.raw()).unwrap_or("?")));
        }
    }
    if file.is_empty() {
        file = "passwords";
    }
    for (i, u) in supers.iter().enumerate() {
        if u.is_empty() {
            return Err(moat_msg!("passwd: config: superusers[{}] is empty", i));
        }
    }
    let size = file_size(file).map_err(|e| moat_msg!("passwd: file \"{}\": {:?}", file, e))?;
    let buf = arena::alloc(size as usize, 1).ok_or_else(oom)?;
    let mut off = 0;
    while off < buf.len() {
        let n = file_read(file, off as u64, &mut buf[off..]).map_err(|e| moat_msg!("passwd: file \"{}\": {:?}", file, e))?;
        if n == 0 {
            break;
        }
        off += n;
    }
    let utf8 = match enc {
        "" | "base64" => false,
        "utf-8" => true,
        _ => return Err(moat_msg!("passwd: go-auth salt encoding \"{}\": want \"base64\" or \"utf-8\"", enc)),
    };
    let mut f = parse(&buf[..off], file, utf8)?;
    f.superusers = supers;
    unsafe { FILE = f };
    Ok(())
}

// ---------------------------------------------------------------------------
// Parsing: plugins/passwd/passwdfile/file.go and hash.go.

/// Go's unicode.IsSpace.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// The next character of b and its length, or None for invalid UTF-8 at
/// the start.
fn first_char(b: &[u8]) -> Option<(char, usize)> {
    let n = match b.first()? {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    let s = core::str::from_utf8(b.get(..n)?).ok()?;
    s.chars().next().map(|c| (c, n))
}

fn last_char(b: &[u8]) -> Option<(char, usize)> {
    for n in 1..=4.min(b.len()) {
        if let Ok(s) = core::str::from_utf8(&b[b.len() - n..]) {
            return s.chars().next().map(|c| (c, n));
        }
    }
    None
}

/// Go's strings.TrimSpace.
fn trim(mut b: &[u8]) -> &[u8] {
    while let Some((c, n)) = first_char(b) {
        if !is_space(c) {
            break;
        }
        b = &b[n..];
    }
    while let Some((c, n)) = last_char(b) {
        if !is_space(c) {
            break;
        }
        b = &b[..b.len() - n];
    }
    b
}

/// Formats bytes as Go's %q does for the strings of error messages:
/// quotes, escapes for control characters and invalid UTF-8.
struct Q<'a>(&'a [u8]);

impl core::fmt::Display for Q<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        use core::fmt::Write;
        f.write_char('"')?;
        let mut b = self.0;
        while !b.is_empty() {
            let (c, n) = match first_char(b) {
                Some(x) => x,
                None => {
                    write!(f, "\\x{:02x}", b[0])?;
                    b = &b[1..];
                    continue;
                }
            };
            b = &b[n..];
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\u{7}' => f.write_str("\\a")?,
                '\u{8}' => f.write_str("\\b")?,
                '\u{c}' => f.write_str("\\f")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\u{b}' => f.write_str("\\v")?,
                c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
                c if (0x80..0xa0).contains(&(c as u32)) || c == '\u{ad}' || c == '\u{feff}' => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

fn show(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("?")
}

type Res<T> = Result<T, Msg>;

fn parse(text: &'static [u8], name: &str, utf8_salt: bool) -> Res<File> {
    let nlines = text.iter().filter(|&&c| c == b'\n').count() + 1;
    let entries = arena::alloc_slice(nlines, DEFAULT_DUMMY).ok_or_else(oom)?;
    let mut count = 0;
    let mut rest = text;
    let mut n = 0u32;
    let mut fail: Option<(u32, &'static [u8], Msg)> = None;
    while !rest.is_empty() {
        n += 1;
        let (mut raw, next) = match rest.iter().position(|&c| c == b'\n') {
            Some(i) => {
                if i + 1 > MAX_LINE {
                    return Err(moat_msg!("passwd: {}:{}: line longer than {} bytes", name, n, MAX_LINE));
                }
                (&rest[..i], &rest[i + 1..])
            }
            None => {
                // bufio.Scanner fails once its buffer is full without a
                // newline, even at the end of the file.
                if rest.len() >= MAX_LINE {
                    return Err(moat_msg!("passwd: {}:{}: line longer than {} bytes", name, n, MAX_LINE));
                }
                (rest, &rest[rest.len()..])
            }
        };
        rest = next;
        while let Some(b'\r') = raw.last() {
            raw = &raw[..raw.len() - 1];
        }
        if n == 1 && raw.starts_with("\u{feff}".as_bytes()) {
            raw = &raw[3..];
        }
        let t = trim(raw);
        if t.is_empty() || t[0] == b'#' {
            continue;
        }
        let colon = match t.iter().position(|&c| c == b':') {
            Some(i) => i,
            None => {
                fail = Some((n, b"", Msg::from("no ':' between username and hash")));
                break;
            }
        };
        let u = trim(&t[..colon]);
        let v = trim(&t[colon + 1..]);
        if u.is_empty() {
            fail = Some((n, b"", Msg::from("empty username")));
            break;
        }
        if v.is_empty() {
            fail = Some((n, b"", moat_msg!("user {} has no hash", Q(u))));
            break;
        }
        if let Err(m) = check_username(u) {
            fail = Some((n, b"", m));
            break;
        }
        match parse_hash(v, utf8_salt) {
            Ok(mut e) => {
                e.user = u;
                e.line = n;
                entries[count] = e;
                count += 1;
            }
            Err(m) => {
                fail = Some((n, u, m));
                break;
            }
        }
    }
    let entries = &mut entries[..count];
    // The dummy: the first entry in file order of the most common cost.
    // Classes of equal cost, each as (first entry, count): files have few.
    let mut dummy = DEFAULT_DUMMY;
    if fail.is_none() && count > 0 {
        let classes = arena::alloc_slice(count, (0usize, 0usize)).ok_or_else(oom)?;
        let mut k = 0;
        for (i, e) in entries.iter().enumerate() {
            match classes[..k].iter().position(|&(f, _)| entries[f].cost_eq(e)) {
                Some(c) => classes[c].1 += 1,
                None => {
                    classes[k] = (i, 1);
                    k += 1;
                }
            }
        }
        let mut best = 0;
        for &(f, c) in classes[..k].iter() {
            if c > best {
                best = c;
                dummy = entries[f];
            }
        }
    }
    entries.sort_unstable_by(|a, b| a.user.cmp(b.user).then(a.line.cmp(&b.line)));
    // Duplicates: the error is at the first line that repeats a user, as
    // the Go engine meets it reading in order.
    let mut dup: Option<(u32, &[u8])> = None;
    for w in entries.windows(2) {
        if w[0].user == w[1].user && dup.map_or(true, |(l, _)| w[1].line < l) {
            dup = Some((w[1].line, w[1].user));
        }
    }
    if let Some((l, u)) = dup {
        return Err(moat_msg!("passwd: {}:{}: user {} listed twice", name, l, Q(u)));
    }
    if let Some((l, u, m)) = fail {
        if !u.is_empty() && entries.binary_search_by(|e| e.user.cmp(u)).is_ok() {
            return Err(moat_msg!("passwd: {}:{}: user {} listed twice", name, l, Q(u)));
        }
        return Err(moat_msg!("passwd: {}:{}: {}", name, l, m.as_str()));
    }
    Ok(File { sorted: entries, dummy, superusers: &[] })
}

fn check_username(u: &[u8]) -> Res<()> {
    let s = core::str::from_utf8(u).map_err(|_| Msg::from("username is not UTF-8"))?;
    if s.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return Err(moat_msg!("username {} contains a control character", Q(s.as_bytes())));
    }
    if u.len() > 65535 {
        return Err(Msg::from("username longer than 65535 bytes"));
    }
    Ok(())
}

fn known_foreign(id: &[u8]) -> bool {
    matches!(id, b"1" | b"2" | b"2x" | b"3" | b"5" | b"y" | b"gy" | b"md5" | b"sha1" | b"apr1" | b"argon2i" | b"argon2d"
        | b"scrypt" | b"pbkdf2" | b"pbkdf2-sha1" | b"pbkdf2-sha256" | b"pbkdf2-sha512" | b"scram-sha-1" | b"bcrypt-sha256")
}

fn err_unknown(s: &[u8]) -> Msg {
    if s.starts_with(b"$") {
        if let Some(i) = s[1..].iter().position(|&c| c == b'$') {
            let id = &s[1..1 + i];
            if known_foreign(id) {
                return moat_msg!("unknown hash format \"${}$\"", show(id));
            }
        }
    }
    Msg::from("unrecognized hash (value not shown; if it is a plaintext password, hash the file with moat passwd -U)")
}

fn parse_hash(s: &'static [u8], utf8_salt: bool) -> Res<Entry> {
    let mut e = DEFAULT_DUMMY;
    e.text = s;
    (e.iter, e.mem, e.par) = (0, 0, 0);
    if s.starts_with(b"$6$") {
        let glibc = "$6$ hash looks like glibc's SHA-crypt, not Mosquitto's $6$ (one SHA-512 pass): not supported";
        let p = split::<3>(&s[3..]);
        if p.parts[0].starts_with(b"rounds=") {
            return Err(Msg::from(glibc));
        }
        if p.n != 2 {
            return Err(Msg::from("$6$ hash: want $6$<salt>$<hash>"));
        }
        e.kind = Kind::Sha512;
        e.salt = decode_salt("$6$", p.parts[0])?;
        e.sum = match decode_digest("$6$", p.parts[1], 64, 64) {
            Ok(d) => d,
            Err(_) if p.parts[1].len() == 86 => return Err(Msg::from(glibc)),
            Err(m) => return Err(m),
        };
        return Ok(e);
    }
    if s.starts_with(b"$7$") {
        let p = split::<4>(&s[3..]);
        if p.n != 3 {
            return Err(Msg::from("$7$ hash: want $7$<iterations>$<salt>$<hash>"));
        }
        e.kind = Kind::MosqPbkdf2;
        e.sha512 = true;
        e.iter = count("$7$ hash: iteration count", p.parts[0], 1, MAX_PBKDF2_ITER)? as u32;
        e.salt = decode_salt("$7$", p.parts[1])?;
        e.sum = decode_digest("$7$", p.parts[2], 64, 64)?;
        return Ok(e);
    }
    if s.starts_with(b"$argon2id$") {
        let old = "$argon2id hash without v=19: Argon2 version 1.0 is not supported";
        let p = split::<7>(s);
        if p.n == 5 && p.parts[2].starts_with(b"m=") {
            return Err(Msg::from(old));
        }
        if p.n != 6 {
            return Err(Msg::from("argon2id hash: want $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>"));
        }
        if p.parts[2] != b"v=19" {
            if p.parts[2].starts_with(b"m=") {
                return Err(Msg::from(old));
            }
            return Err(Msg::from("argon2id hash: version must be v=19"));
        }
        let mut ps = [&b""[..]; 4];
        let mut k = 0;
        for x in p.parts[3].split(|&c| c == b',') {
            if k < 4 {
                ps[k] = x;
            }
            k += 1;
        }
        if k != 3 || !ps[0].starts_with(b"m=") || !ps[1].starts_with(b"t=") || !ps[2].starts_with(b"p=") {
            return Err(Msg::from("argon2id hash: parameters must be m=<KiB>,t=<passes>,p=<lanes>"));
        }
        let par = count("argon2id hash: p", &ps[2][2..], 1, MAX_ARGON2_PAR)?;
        let m = count("argon2id hash: m", &ps[0][2..], 8 * par, MAX_ARGON2_MEMORY)?;
        let t = count("argon2id hash: t", &ps[1][2..], 1, MAX_ARGON2_TIME)?;
        if m * t > MAX_ARGON2_WORK {
            return Err(moat_msg!("argon2id hash: m·t = {} KiB above the cap of {}", m * t, MAX_ARGON2_WORK));
        }
        e.kind = Kind::Argon2id;
        e.salt = decode_salt("argon2id", p.parts[4])?;
        e.sum = decode_digest("argon2id", p.parts[5], 4, MAX_DIGEST)?;
        e.iter = t as u32;
        e.mem = m as u32;
        e.par = par as u32;
        return Ok(e);
    }
    if s.starts_with(b"$2a$") || s.starts_with(b"$2b$") || s.starts_with(b"$2y$") {
        if s.len() != 60 || s[6] != b'$' {
            return Err(Msg::from("bcrypt hash: want $2b$<two-digit cost>$<53 characters>"));
        }
        let cost = count("bcrypt hash: cost", &s[4..6], 4, 31)?;
        if cost > MAX_BCRYPT_COST {
            return Err(moat_msg!("bcrypt hash: cost {} above the cap of {}", cost, MAX_BCRYPT_COST));
        }
        if s[7..].iter().any(|&c| !(c.is_ascii_alphanumeric() || c == b'.' || c == b'/')) {
            return Err(Msg::from("bcrypt hash: salt and hash must be bcrypt base64"));
        }
        e.kind = Kind::Bcrypt;
        e.salt = b"";
        e.sum = b"";
        e.iter = cost as u32;
        e.mem = 0;
        e.par = 0;
        return Ok(e);
    }
    if s.starts_with(b"PBKDF2$") {
        let p = split::<6>(s);
        if p.n != 5 {
            return Err(Msg::from("PBKDF2 hash: want PBKDF2$sha256|sha512$<iterations>$<salt>$<hash>"));
        }
        e.sha512 = match p.parts[1] {
            b"sha256" => false,
            b"sha512" => true,
            _ => return Err(Msg::from("PBKDF2 hash: algorithm must be sha256 or sha512")),
        };
        e.kind = Kind::GoAuthPbkdf2;
        e.iter = count("PBKDF2 hash: iteration count", p.parts[2], 1, MAX_PBKDF2_ITER)? as u32;
        e.salt = if utf8_salt {
            if p.parts[3].is_empty() || p.parts[3].len() > MAX_SALT {
                return Err(moat_msg!("PBKDF2 hash: salt must be 1 to {} bytes", MAX_SALT));
            }
            p.parts[3]
        } else {
            decode_salt("PBKDF2", p.parts[3])?
        };
        e.sum = decode_digest("PBKDF2", p.parts[4], MIN_GOAUTH_KEY, MAX_DIGEST)?;
        e.mem = 0;
        e.par = 0;
        return Ok(e);
    }
    let (name, size) = if s.starts_with(b"$scram-sha-256$") {
        ("SCRAM-SHA-256", 32)
    } else if s.starts_with(b"$scram-sha-512$") {
        ("SCRAM-SHA-512", 64)
    } else if s.starts_with(b"$argon2id") {
        return Err(Msg::from("$argon2id hash without v=19: Argon2 version 1.0 is not supported"));
    } else {
        return Err(err_unknown(s));
    };
    let prefix = &s[..15];
    let p = split::<5>(&s[15..]);
    if p.n != 4 {
        return Err(moat_msg!("scram: {} credentials: want {}i=<iterations>$<salt>$<StoredKey>$<ServerKey>", name, show(prefix)));
    }
    if !p.parts[0].starts_with(b"i=") {
        return Err(moat_msg!("scram: {} credentials: iteration field must start with \"i=\"", name));
    }
    let it = &p.parts[0][2..];
    let iter = if it.is_empty() || it.len() > 9 || !it.iter().all(u8::is_ascii_digit) {
        0
    } else {
        it.iter().fold(0u64, |a, &c| a * 10 + (c - b'0') as u64)
    };
    if iter < 1 || iter > MAX_PBKDF2_ITER {
        return Err(moat_msg!("scram: {} credentials: iteration count must be 1 to {}", name, MAX_PBKDF2_ITER));
    }
    let salt = match b64(p.parts[1], true) {
        Some(b) if !b.is_empty() && b.len() <= MAX_SALT => b,
        _ => return Err(moat_msg!("scram: {} credentials: salt must be 1 to {} bytes of base64", name, MAX_SALT)),
    };
    let stored = match b64(p.parts[2], true) {
        Some(b) if b.len() == size => b,
        _ => return Err(moat_msg!("scram: {} credentials: StoredKey must be {} bytes of base64", name, size)),
    };
    match b64(p.parts[3], true) {
        Some(b) if b.len() == size => {}
        _ => return Err(moat_msg!("scram: {} credentials: ServerKey must be {} bytes of base64", name, size)),
    }
    e.kind = Kind::Scram;
    e.sha512 = size == 64;
    e.iter = iter as u32;
    e.salt = salt;
    e.sum = stored;
    e.mem = 0;
    e.par = 0;
    Ok(e)
}

/// Up to N-1 '$'-separated parts of s; n counts them all (N when more).
struct Parts<const N: usize> {
    parts: [&'static [u8]; N],
    n: usize,
}

fn split<const N: usize>(s: &'static [u8]) -> Parts<N> {
    let mut p = Parts { parts: [&b""[..]; N], n: 0 };
    for x in s.split(|&c| c == b'$') {
        if p.n < N {
            p.parts[p.n] = x;
        }
        p.n += 1;
    }
    p
}

/// An unsigned decimal in [lo, hi], as passwdfile's parseCount (digits
/// only, then strconv.Atoi).
fn count(what: &str, s: &[u8], lo: u64, hi: u64) -> Res<u64> {
    if !s.iter().all(u8::is_ascii_digit) {
        return Err(moat_msg!("{} is not a number", what));
    }
    let mut n: u64 = 0;
    let mut over = s.is_empty();
    for &c in s {
        n = match n.checked_mul(10).and_then(|x| x.checked_add((c - b'0') as u64)) {
            Some(x) if x <= i64::MAX as u64 => x,
            _ => {
                over = true;
                0
            }
        };
    }
    if over || n < lo || n > hi {
        return Err(moat_msg!("{} must be {} to {}", what, lo, hi));
    }
    Ok(n)
}

/// Go's base64: StdEncoding when s ends with '=', else RawStdEncoding;
/// CR and LF are skipped; strict refuses nonzero trailing bits. The result
/// is in the arena.
fn b64(s: &[u8], strict: bool) -> Option<&'static [u8]> {
    let out = arena::alloc(s.len() / 4 * 3 + 3, 1)?;
    let padded = s.last() == Some(&b'=');
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    let mut chars = 0;
    let mut pad = 0;
    for &c in s {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        if c == b'=' {
            if !padded {
                return None;
            }
            pad += 1;
            chars += 1;
            continue;
        }
        if pad > 0 {
            return None;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        chars += 1;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    let data = chars - pad;
    if padded {
        if chars % 4 != 0 || pad > 2 || (pad == 1 && data % 4 != 3) || (pad == 2 && data % 4 != 2) {
            return None;
        }
    } else if data % 4 == 1 {
        return None;
    }
    if strict && acc != 0 {
        return None;
    }
    Some(&out[..n])
}

fn decode_salt(format: &str, s: &[u8]) -> Res<&'static [u8]> {
    match b64(s, false) {
        Some(b) if !b.is_empty() && b.len() <= MAX_SALT => Ok(b),
        _ => Err(moat_msg!("{} hash: salt must be 1 to {} bytes of base64", format, MAX_SALT)),
    }
}

fn decode_digest(format: &str, s: &[u8], lo: usize, hi: usize) -> Res<&'static [u8]> {
    match b64(s, false) {
        Some(b) if b.len() >= lo && b.len() <= hi => Ok(b),
        _ if lo == hi => Err(moat_msg!("{} hash: digest must be {} bytes of base64", format, lo)),
        _ => Err(moat_msg!("{} hash: digest must be {} to {} bytes of base64", format, lo, hi)),
    }
}

// ---------------------------------------------------------------------------
// SHA-256, SHA-512 (FIPS 180-4) and HMAC (RFC 2104).

const K256: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const K512: [u64; 80] = [
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538, 0x59f111f1b605d019,
    0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65, 0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
    0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b, 0xa2bfe8a14cf10364, 0xa81a664bbc423001,
    0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c, 0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
];

struct Sha256 {
    h: [u32; 8],
    buf: [u8; 64],
    n: usize,
    len: u64,
}

impl Sha256 {
    fn new() -> Sha256 {
        Sha256 {
            h: [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
            buf: [0; 64],
            n: 0,
            len: 0,
        }
    }
    fn block(h: &mut [u32; 8], b: &[u8]) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K256[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & bb) ^ (a & c) ^ (bb & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = bb;
            bb = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, bb, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    fn update(&mut self, mut d: &[u8]) {
        self.len += d.len() as u64;
        while !d.is_empty() {
            let k = (64 - self.n).min(d.len());
            self.buf[self.n..self.n + k].copy_from_slice(&d[..k]);
            self.n += k;
            d = &d[k..];
            if self.n == 64 {
                Self::block(&mut self.h, &self.buf);
                self.n = 0;
            }
        }
    }
    fn finish(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let pad = if self.n < 56 { 56 - self.n } else { 120 - self.n };
        let mut p = [0u8; 72];
        p[0] = 0x80;
        p[pad..pad + 8].copy_from_slice(&bits.to_be_bytes());
        self.update(&p[..pad + 8]);
        let mut out = [0u8; 32];
        for i in 0..8 {
            out[4 * i..4 * i + 4].copy_from_slice(&self.h[i].to_be_bytes());
        }
        out
    }
}

struct Sha512 {
    h: [u64; 8],
    buf: [u8; 128],
    n: usize,
    len: u64,
}

impl Sha512 {
    fn new() -> Sha512 {
        Sha512 {
            h: [
                0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1, 0x510e527fade682d1,
                0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
            ],
            buf: [0; 128],
            n: 0,
            len: 0,
        }
    }
    fn block(h: &mut [u64; 8], b: &[u8]) {
        let mut w = [0u64; 80];
        for i in 0..16 {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[8 * i..8 * i + 8]);
            w[i] = u64::from_be_bytes(x);
        }
        for i in 16..80 {
            let s0 = w[i - 15].rotate_right(1) ^ w[i - 15].rotate_right(8) ^ (w[i - 15] >> 7);
            let s1 = w[i - 2].rotate_right(19) ^ w[i - 2].rotate_right(61) ^ (w[i - 2] >> 6);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..80 {
            let s1 = e.rotate_right(14) ^ e.rotate_right(18) ^ e.rotate_right(41);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K512[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(28) ^ a.rotate_right(34) ^ a.rotate_right(39);
            let maj = (a & bb) ^ (a & c) ^ (bb & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = bb;
            bb = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, bb, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    fn update(&mut self, mut d: &[u8]) {
        self.len += d.len() as u64;
        while !d.is_empty() {
            let k = (128 - self.n).min(d.len());
            self.buf[self.n..self.n + k].copy_from_slice(&d[..k]);
            self.n += k;
            d = &d[k..];
            if self.n == 128 {
                Self::block(&mut self.h, &self.buf);
                self.n = 0;
            }
        }
    }
    fn finish(mut self) -> [u8; 64] {
        // Messages here are far below 2^61 bytes: the high 64 bits of the
        // 128-bit length are zero.
        let bits = self.len.wrapping_mul(8);
        let pad = if self.n < 112 { 112 - self.n } else { 240 - self.n };
        let mut p = [0u8; 256];
        p[0] = 0x80;
        p[pad + 8..pad + 16].copy_from_slice(&bits.to_be_bytes());
        self.update(&p[..pad + 16]);
        let mut out = [0u8; 64];
        for i in 0..8 {
            out[8 * i..8 * i + 8].copy_from_slice(&self.h[i].to_be_bytes());
        }
        out
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        let mut h = Sha256::new();
        h.update(key);
        k[..32].copy_from_slice(&h.finish());
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut h = Sha256::new();
    h.update(&ipad);
    h.update(msg);
    let inner = h.finish();
    let mut h = Sha256::new();
    h.update(&opad);
    h.update(&inner);
    h.finish()
}

fn hmac_sha512(key: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut k = [0u8; 128];
    if key.len() > 128 {
        let mut h = Sha512::new();
        h.update(key);
        k[..64].copy_from_slice(&h.finish());
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 128];
    let mut opad = [0x5cu8; 128];
    for i in 0..128 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut h = Sha512::new();
    h.update(&ipad);
    h.update(msg);
    let inner = h.finish();
    let mut h = Sha512::new();
    h.update(&opad);
    h.update(&inner);
    h.finish()
}

// ---------------------------------------------------------------------------
// Decisions.

/// Answers a CONNECT with a username and password, as plugins/passwd:
/// enhanced authentication, anonymous clients and unknown users are
/// ignored (an unknown user still costs one check against the dummy, so
/// the time of the answer does not tell who is in the file).
fn authn(r: &AuthnRequest) -> Authn {
    if r.auth_method().map_or(false, |m| !m.is_empty()) || r.username().is_empty() {
        return Authn::ignore();
    }
    let f = unsafe { &FILE };
    let user = r.username().as_bytes();
    let pw = r.password().unwrap_or(&[]);
    match f.find(user) {
        None => {
            f.dummy.verify(pw);
            Authn::ignore()
        }
        Some(e) if e.verify(pw) => {
            if f.superusers.iter().any(|s| s.as_bytes() == user) {
                Authn::allow_superuser()
            } else {
                Authn::allow()
            }
        }
        Some(_) => Authn::deny_with(Reason::BAD_USER_NAME_OR_PASSWORD),
    }
}

moat_plugin!(configure = configure, authn = authn);

// ---------------------------------------------------------------------------
// Argon2id (RFC 9106, version 0x13) inside the module, for the lines the
// host refuses (m·t above 256 MiB-passes, which the broker cannot
// interrupt): as plugins/passwd, which falls back to golang.org/x/crypto
// in the guest, these are computed here under the plugin's timeout and
// memory_limit. The work memory is taken from the arena once, at the
// largest m such a line of the file needs, and reused.

const B2_IV: [u64; 8] = [
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
];

const SIGMA: [[usize; 16]; 12] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
];

/// BLAKE2b (RFC 7693) without a key, digest of `outlen` bytes.
struct Blake2b {
    h: [u64; 8],
    buf: [u8; 128],
    n: usize,
    t: u128,
    outlen: usize,
}

impl Blake2b {
    fn new(outlen: usize) -> Blake2b {
        let mut h = B2_IV;
        h[0] ^= 0x0101_0000 ^ outlen as u64;
        Blake2b { h, buf: [0; 128], n: 0, t: 0, outlen }
    }
    fn compress(&mut self, last: bool) {
        let mut m = [0u64; 16];
        for i in 0..16 {
            let mut x = [0u8; 8];
            x.copy_from_slice(&self.buf[8 * i..8 * i + 8]);
            m[i] = u64::from_le_bytes(x);
        }
        let mut v = [0u64; 16];
        v[..8].copy_from_slice(&self.h);
        v[8..].copy_from_slice(&B2_IV);
        v[12] ^= self.t as u64;
        v[13] ^= (self.t >> 64) as u64;
        if last {
            v[14] = !v[14];
        }
        for s in SIGMA.iter() {
            let mut g = |a: usize, b: usize, c: usize, d: usize, x: u64, y: u64| {
                v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
                v[d] = (v[d] ^ v[a]).rotate_right(32);
                v[c] = v[c].wrapping_add(v[d]);
                v[b] = (v[b] ^ v[c]).rotate_right(24);
                v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
                v[d] = (v[d] ^ v[a]).rotate_right(16);
                v[c] = v[c].wrapping_add(v[d]);
                v[b] = (v[b] ^ v[c]).rotate_right(63);
            };
            g(0, 4, 8, 12, m[s[0]], m[s[1]]);
            g(1, 5, 9, 13, m[s[2]], m[s[3]]);
            g(2, 6, 10, 14, m[s[4]], m[s[5]]);
            g(3, 7, 11, 15, m[s[6]], m[s[7]]);
            g(0, 5, 10, 15, m[s[8]], m[s[9]]);
            g(1, 6, 11, 12, m[s[10]], m[s[11]]);
            g(2, 7, 8, 13, m[s[12]], m[s[13]]);
            g(3, 4, 9, 14, m[s[14]], m[s[15]]);
        }
        for i in 0..8 {
            self.h[i] ^= v[i] ^ v[i + 8];
        }
    }
    fn update(&mut self, mut d: &[u8]) {
        while !d.is_empty() {
            if self.n == 128 {
                self.t += 128;
                self.compress(false);
                self.n = 0;
            }
            let k = (128 - self.n).min(d.len());
            self.buf[self.n..self.n + k].copy_from_slice(&d[..k]);
            self.n += k;
            d = &d[k..];
        }
    }
    fn finish(mut self, out: &mut [u8]) {
        self.t += self.n as u128;
        for b in self.buf[self.n..].iter_mut() {
            *b = 0;
        }
        self.compress(true);
        let mut full = [0u8; 64];
        for i in 0..8 {
            full[8 * i..8 * i + 8].copy_from_slice(&self.h[i].to_le_bytes());
        }
        out.copy_from_slice(&full[..self.outlen]);
    }
}

/// H' of RFC 9106 §3.3: a hash of any length.
fn hprime(out: &mut [u8], parts: &[&[u8]]) {
    let t = out.len();
    let mut h = Blake2b::new(t.min(64));
    h.update(&(t as u32).to_le_bytes());
    for p in parts {
        h.update(p);
    }
    if t <= 64 {
        h.finish(out);
        return;
    }
    let mut v = [0u8; 64];
    h.finish(&mut v);
    out[..32].copy_from_slice(&v[..32]);
    let mut o = 32;
    while t - o > 64 {
        let mut h = Blake2b::new(64);
        h.update(&v);
        h.finish(&mut v);
        out[o..o + 32].copy_from_slice(&v[..32]);
        o += 32;
    }
    let mut h = Blake2b::new(t - o);
    h.update(&v);
    h.finish(&mut out[o..]);
}

type Block = [u64; 128];

#[inline(always)]
fn bla(v: &mut Block, a: usize, b: usize, c: usize, d: usize) {
    let m = |x: u64, y: u64| 2u64.wrapping_mul((x as u32 as u64) * (y as u32 as u64));
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(m(v[a], v[b]));
    v[d] = (v[d] ^ v[a]).rotate_right(32);
    v[c] = v[c].wrapping_add(v[d]).wrapping_add(m(v[c], v[d]));
    v[b] = (v[b] ^ v[c]).rotate_right(24);
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(m(v[a], v[b]));
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = v[c].wrapping_add(v[d]).wrapping_add(m(v[c], v[d]));
    v[b] = (v[b] ^ v[c]).rotate_right(63);
}

/// The permutation P on 16 words given by their indexes in t.
fn perm(t: &mut Block, i: [usize; 16]) {
    bla(t, i[0], i[4], i[8], i[12]);
    bla(t, i[1], i[5], i[9], i[13]);
    bla(t, i[2], i[6], i[10], i[14]);
    bla(t, i[3], i[7], i[11], i[15]);
    bla(t, i[0], i[5], i[10], i[15]);
    bla(t, i[1], i[6], i[11], i[12]);
    bla(t, i[2], i[7], i[8], i[13]);
    bla(t, i[3], i[4], i[9], i[14]);
}

/// out ^= G(x, y) when xor, else out = G(x, y).
fn compress_g(out: &mut Block, x: &Block, y: &Block, xor: bool) {
    let mut r = [0u64; 128];
    for i in 0..128 {
        r[i] = x[i] ^ y[i];
    }
    let mut t = r;
    for k in (0..128).step_by(16) {
        perm(&mut t, [k, k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7, k + 8, k + 9, k + 10, k + 11, k + 12, k + 13, k + 14, k + 15]);
    }
    for i in (0..16).step_by(2) {
        perm(&mut t, [i, i + 1, 16 + i, 17 + i, 32 + i, 33 + i, 48 + i, 49 + i, 64 + i, 65 + i, 80 + i, 81 + i, 96 + i, 97 + i, 112 + i, 113 + i]);
    }
    for i in 0..128 {
        let z = r[i] ^ t[i];
        out[i] = if xor { out[i] ^ z } else { z };
    }
}

static mut WORK: &mut [Block] = &mut [];

/// The blocks an argon2id line of m KiB with p lanes works on.
fn argon2_blocks(m: u32, p: u32) -> usize {
    let mm = m / (4 * p) * (4 * p);
    mm.max(8 * p) as usize
}

fn guest_argon2id(pw: &[u8], salt: &[u8], time: u32, mem: u32, lanes: u32, out: &mut [u8]) -> bool {
    let memory = argon2_blocks(mem, lanes);
    let b: &mut [Block] = unsafe {
        if WORK.len() < memory {
            match arena::alloc(memory * 1024, 8) {
                Some(x) => WORK = core::slice::from_raw_parts_mut(x.as_mut_ptr() as *mut Block, memory),
                None => return false,
            }
        }
        &mut WORK[..memory]
    };
    let mut h0 = [0u8; 72];
    {
        let mut h = Blake2b::new(64);
        for x in [lanes, out.len() as u32, mem, time, 0x13, 2] {
            h.update(&x.to_le_bytes());
        }
        h.update(&(pw.len() as u32).to_le_bytes());
        h.update(pw);
        h.update(&(salt.len() as u32).to_le_bytes());
        h.update(salt);
        h.update(&[0u8; 8]);
        h.finish(&mut h0[..64]);
    }
    let lane_len = (memory as u32 / lanes) as usize;
    let seg = lane_len / 4;
    let mut bytes = [0u8; 1024];
    for l in 0..lanes as usize {
        for k in 0..2u32 {
            h0[64..68].copy_from_slice(&k.to_le_bytes());
            h0[68..72].copy_from_slice(&(l as u32).to_le_bytes());
            hprime(&mut bytes, &[&h0]);
            let blk = &mut b[l * lane_len + k as usize];
            for i in 0..128 {
                let mut x = [0u8; 8];
                x.copy_from_slice(&bytes[8 * i..8 * i + 8]);
                blk[i] = u64::from_le_bytes(x);
            }
        }
    }
    let zero = [0u64; 128];
    for n in 0..time {
        for slice in 0..4u32 {
            for lane in 0..lanes {
                let indep = n == 0 && slice < 2;
                let mut input = [0u64; 128];
                let mut addr = [0u64; 128];
                if indep {
                    input[0] = n as u64;
                    input[1] = lane as u64;
                    input[2] = slice as u64;
                    input[3] = memory as u64;
                    input[4] = time as u64;
                    input[5] = 2;
                }
                let mut index = 0usize;
                if n == 0 && slice == 0 {
                    index = 2;
                    input[6] += 1;
                    let mut a = [0u64; 128];
                    compress_g(&mut a, &input, &zero, false);
                    compress_g(&mut addr, &a, &zero, false);
                }
                let mut offset = lane as usize * lane_len + slice as usize * seg + index;
                while index < seg {
                    let mut prev = offset - 1;
                    if index == 0 && slice == 0 {
                        prev += lane_len;
                    }
                    let rand = if indep {
                        if index % 128 == 0 {
                            input[6] += 1;
                            let mut a = [0u64; 128];
                            compress_g(&mut a, &input, &zero, false);
                            compress_g(&mut addr, &a, &zero, false);
                        }
                        addr[index % 128]
                    } else {
                        b[prev][0]
                    };
                    let mut ref_lane = ((rand >> 32) % lanes as u64) as u32;
                    if n == 0 && slice == 0 {
                        ref_lane = lane;
                    }
                    let (mut m, mut s) = (3 * seg as u64, (((slice + 1) % 4) as usize * seg) as u64);
                    if lane == ref_lane {
                        m += index as u64;
                    }
                    if n == 0 {
                        m = slice as u64 * seg as u64;
                        s = 0;
                        if slice == 0 || lane == ref_lane {
                            m += index as u64;
                        }
                    }
                    if index == 0 || lane == ref_lane {
                        m -= 1;
                    }
                    let mut p = rand & 0xffff_ffff;
                    p = (p * p) >> 32;
                    p = (p * m) >> 32;
                    let r = ref_lane as usize * lane_len + ((s + m - (p + 1)) % lane_len as u64) as usize;
                    // prev and r are never offset (RFC 9106 §3.4). The first
                    // pass writes: the reused work memory is not zero.
                    let base = b.as_mut_ptr();
                    unsafe { compress_g(&mut *base.add(offset), &*base.add(prev), &*base.add(r), n != 0) };
                    index += 1;
                    offset += 1;
                }
            }
        }
    }
    let mut last = b[memory - 1];
    for lane in 0..lanes as usize - 1 {
        let blk = &b[lane * lane_len + lane_len - 1];
        for i in 0..128 {
            last[i] ^= blk[i];
        }
    }
    for i in 0..128 {
        bytes[8 * i..8 * i + 8].copy_from_slice(&last[i].to_le_bytes());
    }
    hprime(out, &[&bytes]);
    true
}
