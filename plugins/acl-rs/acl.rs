//! moat's ACL-file plugin in Rust: the same configuration, file grants,
//! syntax and decisions as the Go engine plugins/acl/aclfile (the
//! reference, see its doc.go), in a module of kilobytes. Mosquitto's
//! acl_file plus moat's @-extensions.
//!
//! Build: make bin/plugins/acl.wasm (sdk/rust/README.md has the recipe).
//!
//! Decisions do not depend on rule order (a matching deny wins, else any
//! matching allow whose options permit), so the rules are kept in one array
//! sorted by section, class and key (see "Rule classes") and a query scans
//! only the rules of its section that its topic can match: those starting
//! with a wildcard or attribute, those keyed by its first level, and, when
//! its first level is the username or client id, those starting with %u or
//! %c (keyed by its second level when that is literal). The request is
//! read a word at a time in few calls, because the host meters every loop
//! iteration and call. Nothing is allocated per request.
#![no_std]

#[macro_use]
#[path = "../../sdk/rust/moat.rs"]
mod moat;

use moat::*;

// Action bits, 1 << ABI action as in aclfile.
const PUBLISH: u8 = 1 << 1;
const SUBSCRIBE: u8 = 1 << 2;
const DELIVER: u8 = 1 << 3;
const READ: u8 = DELIVER | SUBSCRIBE;
const WRITE: u8 = PUBLISH;
const READWRITE: u8 = READ | WRITE;

const MAX_LINE: usize = 1 << 20;
const MAX_ERRORS: usize = 20;
const MAX_TOPIC_LEN: usize = 65535;
const MAX_TOPIC_LEVELS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Lit(&'static [u8]),
    Plus,
    Hash,
    Client,
    User,
    Attr(&'static [u8]),
}

// Section groups, in sort order.
const ANON: u8 = 0;
const USER: u8 = 1;
const PATTERN: u8 = 2;

// Rule classes: how a query finds a rule within its section, in sort
// order. The first three are runs scanned whole; the others are keyed by
// one literal level through the group table.
const ANY: u8 = 0; // first level '+', '#' or %{name}: every query scans it
const USER_ANY: u8 = 1; // %u, then no literal: when the topic starts with the username
const CLIENT_ANY: u8 = 2; // %c, then no literal: when the topic starts with the client id
const FIRST: u8 = 3; // literal first level: keyed by it
const USER_SECOND: u8 = 4; // %u/literal: keyed by the literal second level
const CLIENT_SECOND: u8 = 5; // %c/literal: likewise

#[derive(Clone, Copy)]
struct Rule {
    group: u8,
    user: &'static [u8],
    class: u8,
    deny: bool,
    no_retain: bool,
    actions: u8,
    max_qos: u8,
    // Level count, and whether the last level is '#' (which also matches
    // the parent level): a topic needs nlev levels, or nlev-1 or more.
    nlev: u8,
    hash_tail: bool,
    levels: &'static [Level],
}

impl Rule {
    /// Sets the class and level count from the levels.
    fn classify(&mut self) {
        self.class = match self.levels {
            [Level::Lit(_), ..] => FIRST,
            [Level::User, Level::Lit(_), ..] => USER_SECOND,
            [Level::User, ..] => USER_ANY,
            [Level::Client, Level::Lit(_), ..] => CLIENT_SECOND,
            [Level::Client, ..] => CLIENT_ANY,
            _ => ANY,
        };
        // A filter has at most MAX_TOPIC_LEVELS+1 levels (valid_filter).
        self.nlev = self.levels.len() as u8;
        self.hash_tail = self.levels.last() == Some(&Level::Hash);
    }

    /// The literal level a keyed class is keyed by; "" for the others.
    /// Computed, not stored: a rule of the configured file stays 24 bytes.
    fn key(&self) -> &'static [u8] {
        let i = match self.class {
            FIRST => 0,
            USER_SECOND | CLIENT_SECOND => 1,
            _ => return &[],
        };
        match self.levels[i] {
            Level::Lit(s) => s,
            _ => &[],
        }
    }
}

/// The rules of one section, a run of the sorted rule array: the classes
/// ANY, USER_ANY and CLIENT_ANY end at any_end, user_end and client_end;
/// the keyed groups follow.
#[derive(Clone, Copy)]
struct Section {
    id: u32,
    user: &'static [u8],
    start: u32,
    any_end: u32,
    user_end: u32,
    client_end: u32,
    end: u32,
    keyed: u8, // bit 1 << class for each keyed class present
}

/// The rules of one section whose key, for their class, is `key`.
#[derive(Clone, Copy)]
struct Group {
    tag: u32, // group_tag of the section and class
    key: &'static [u8],
    start: u32,
    end: u32,
}

struct Acl {
    rules: &'static [Rule],
    anon: Option<&'static Section>,
    patterns: Option<&'static Section>,
    // Open-addressed hash tables of index+1 (0: empty slot), with a
    // power-of-two size at least twice the entries.
    sections: &'static [Section],
    users: &'static [u32],
    groups: &'static [Group],
    group_index: &'static [u32],
    check_subscribe: bool,
    uses_attrs: bool,
    ignore: bool,
}

// Set by configure before any decision; an instance serves one call at a
// time (sdk/rust/README.md, Memory).
static mut ACL: Acl = Acl {
    rules: &[],
    anon: None,
    patterns: None,
    sections: &[],
    users: &[],
    groups: &[],
    group_index: &[],
    check_subscribe: false,
    uses_attrs: false,
    ignore: false,
};

// ---------------------------------------------------------------------------
// Byte strings a word at a time.
//
// The host meters the guest (runtime/RATIONALE.md, "Stopping runaway
// guests"): every loop iteration and every call runs an epoch check, so a
// byte loop costs several times its own work. The hot path therefore
// reads strings eight bytes per iteration and keeps its helpers inlined.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The bytes s[i..i+8], or the rest of s zero-padded; i < s.len().
#[inline(always)]
fn word(s: &[u8], i: usize) -> u64 {
    let rest = s.len() - i;
    let p = s[i..].as_ptr();
    // SAFETY: every read lies within s[i..], whose length is rest.
    unsafe {
        if rest >= 8 {
            return u64::from_le((p as *const u64).read_unaligned());
        }
        let (mut w, mut k) = (0u64, 0usize);
        if rest & 4 != 0 {
            w = u32::from_le((p as *const u32).read_unaligned()) as u64;
            k = 4;
        }
        if rest & 2 != 0 {
            w |= (u16::from_le((p.add(k) as *const u16).read_unaligned()) as u64) << (8 * k);
            k += 2;
        }
        if rest & 1 != 0 {
            w |= (*p.add(k) as u64) << (8 * k);
        }
        w
    }
}

/// 0x80 in each byte of w that is c, and 0 elsewhere (exact: no borrow
/// crosses bytes).
#[inline(always)]
fn bytes_eq(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * c as u64);
    !((x & LOWS).wrapping_add(LOWS) | x | LOWS)
}

/// a == b, a word at a time.
#[inline(always)]
fn eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    n == 0 || word(a, 0) == word(b, 0)
}

/// A hash of s, a word at a time; slot() mixes it with a table tag.
#[inline(always)]
fn hash(s: &[u8]) -> u64 {
    let mut h = (s.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut i = 0;
    while i < s.len() {
        h = (h ^ word(s, i)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
        i += 8;
    }
    h
}

/// The home slot of a hash under a tag (0 for users, group_tag for
/// groups) in a table of mask+1 slots.
#[inline(always)]
fn slot(h: u64, tag: u64, mask: usize) -> usize {
    let mut x = h ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    (x >> 32) as usize & mask
}

/// A group's section and class in one word (sections are fewer than
/// the file's lines, so far below 2^28).
fn group_tag(section: u32, class: u8) -> u32 {
    (section << 3 | class as u32) + 1
}

fn table_size(n: usize) -> usize {
    (2 * n + 1).next_power_of_two()
}

impl Acl {
    #[inline(always)]
    fn user_section(&self, user: &[u8]) -> Option<&'static Section> {
        if self.users.is_empty() {
            return None;
        }
        let mask = self.users.len() - 1;
        let mut i = slot(hash(user), 0, mask);
        loop {
            let e = self.users[i];
            if e == 0 {
                return None;
            }
            let sec = &self.sections[e as usize - 1];
            if eq(sec.user, user) {
                return Some(sec);
            }
            i = (i + 1) & mask;
        }
    }

    /// The rules of the section's group for class and key, whose hash is h.
    #[inline(always)]
    fn group(&self, section: u32, class: u8, key: &[u8], h: u64) -> &'static [Rule] {
        if self.group_index.is_empty() {
            return &[];
        }
        let mask = self.group_index.len() - 1;
        let tag = group_tag(section, class);
        let mut i = slot(h, tag as u64, mask);
        loop {
            let e = self.group_index[i];
            if e == 0 {
                return &[];
            }
            let g = &self.groups[e as usize - 1];
            if g.tag == tag && eq(g.key, key) {
                return &self.rules[g.start as usize..g.end as usize];
            }
            i = (i + 1) & mask;
        }
    }
}

/// Indexes the sorted rules: sections, the runs of the scanned classes,
/// and groups of a common class and key.
fn index(rules: &'static [Rule], acl: &mut Acl) -> Result<(), Msg> {
    let new_sec = |i: usize| i == 0 || (rules[i].group, rules[i].user) != (rules[i - 1].group, rules[i - 1].user);
    let new_group = |i: usize| {
        rules[i].class >= FIRST
            && (new_sec(i) || (rules[i].class, rules[i].key()) != (rules[i - 1].class, rules[i - 1].key()))
    };
    let (mut nsec, mut ngroups) = (0, 0);
    for i in 0..rules.len() {
        nsec += new_sec(i) as usize;
        ngroups += new_group(i) as usize;
    }
    let empty = Section { id: 0, user: &[], start: 0, any_end: 0, user_end: 0, client_end: 0, end: 0, keyed: 0 };
    let sections = arena::alloc_slice(nsec, empty).ok_or_else(oom)?;
    let no_group = Group { tag: 0, key: &[], start: 0, end: 0 };
    let groups = arena::alloc_slice(ngroups, no_group).ok_or_else(oom)?;
    let (mut s, mut g) = (0usize, 0usize);
    for i in 0..rules.len() {
        let r = &rules[i];
        let at = i as u32;
        if new_sec(i) {
            sections[s] = Section { id: s as u32, user: r.user, start: at, any_end: at, user_end: at, client_end: at, end: at, keyed: 0 };
            s += 1;
        }
        let sec = &mut sections[s - 1];
        sec.end = at + 1;
        // Rules are sorted by class, so each run ends after its last rule
        // or, when it has none, where the previous one ends.
        if r.class <= ANY {
            sec.any_end = at + 1;
        }
        if r.class <= USER_ANY {
            sec.user_end = at + 1;
        }
        if r.class <= CLIENT_ANY {
            sec.client_end = at + 1;
            continue;
        }
        sec.keyed |= 1 << r.class;
        if new_group(i) {
            groups[g] = Group { tag: group_tag(s as u32 - 1, r.class), key: r.key(), start: at, end: at };
            g += 1;
        }
        groups[g - 1].end = at + 1;
    }
    let sections: &'static [Section] = sections;
    for sec in sections {
        match rules[sec.start as usize].group {
            ANON => acl.anon = Some(sec),
            PATTERN => acl.patterns = Some(sec),
            _ => {}
        }
    }
    let users = arena::alloc_slice(table_size(nsec), 0u32).ok_or_else(oom)?;
    let umask = users.len() - 1;
    for (k, sec) in sections.iter().enumerate() {
        if rules[sec.start as usize].group != USER {
            continue;
        }
        let mut i = slot(hash(sec.user), 0, umask);
        while users[i] != 0 {
            i = (i + 1) & umask;
        }
        users[i] = k as u32 + 1;
    }
    let gindex = arena::alloc_slice(table_size(ngroups), 0u32).ok_or_else(oom)?;
    let gmask = gindex.len() - 1;
    for (k, gr) in groups.iter().enumerate() {
        let mut i = slot(hash(gr.key), gr.tag as u64, gmask);
        while gindex[i] != 0 {
            i = (i + 1) & gmask;
        }
        gindex[i] = k as u32 + 1;
    }
    acl.sections = sections;
    acl.users = users;
    acl.groups = groups;
    acl.group_index = gindex;
    Ok(())
}

// ---------------------------------------------------------------------------
// Configuration.

fn oom() -> Msg {
    Msg::from("acl: out of memory")
}

/// Go's encoding/json matches field names case-insensitively; so does this.
fn key_is(k: &json::Str, name: &str) -> bool {
    k.raw().eq_ignore_ascii_case(name.as_bytes()) || k.eq_str(name)
}

fn configure(cfg: &[u8]) -> Result<(), Msg> {
    let root = json::parse(cfg).map_err(|e| moat_msg!("acl: config: {}", e))?;
    if root.kind() != json::Kind::Object {
        return Err(Msg::from("acl: config: want an object"));
    }
    let mut file: &'static str = "acl";
    let mut ignore = false;
    for (k, v) in root.members() {
        if key_is(&k, "file") {
            if v.kind() == json::Kind::Null {
                continue;
            }
            let s = v.as_str().ok_or_else(|| Msg::from("acl: config: file: want a string"))?;
            let s = s.keep().ok_or_else(oom)?;
            // The last "file" counts, as in encoding/json; "" is the default.
            file = if s.is_empty() { "acl" } else { s };
        } else if key_is(&k, "no_match") {
            if v.kind() == json::Kind::Null {
                continue;
            }
            let s = v.as_str().ok_or_else(|| Msg::from("acl: config: no_match: want a string"))?;
            if s.eq_str("") || s.eq_str("deny") {
                ignore = false;
            } else if s.eq_str("ignore") {
                ignore = true;
            } else {
                return Err(moat_msg!(
                    "acl: config: no_match \"{}\": want \"deny\" or \"ignore\"",
                    core::str::from_utf8(s.raw()).unwrap_or("?")
                ));
            }
        } else {
            return Err(moat_msg!(
                "acl: config: json: unknown field \"{}\"",
                core::str::from_utf8(k.raw()).unwrap_or("?")
            ));
        }
    }
    let size = file_size(file).map_err(|e| moat_msg!("acl: file \"{}\": {:?}", file, e))?;
    let buf = arena::alloc(size as usize, 1).ok_or_else(oom)?;
    let mut off = 0;
    while off < buf.len() {
        let n = file_read(file, off as u64, &mut buf[off..]).map_err(|e| moat_msg!("acl: file \"{}\": {:?}", file, e))?;
        if n == 0 {
            break;
        }
        off += n;
    }
    let text: &'static [u8] = &buf[..off];
    let mut acl = parse(text, file)?;
    acl.ignore = ignore;
    unsafe { ACL = acl };
    Ok(())
}

// ---------------------------------------------------------------------------
// Parsing: plugins/acl/aclfile/parse.go, line for line.

struct Parser {
    name: &'static str,
    rules: &'static mut [Rule],
    nrules: usize,
    levels: &'static mut [Level],
    nlevels: usize,
    in_user: bool,
    user: &'static [u8],
    check_subscribe: bool,
    uses_attrs: bool,
    first_subscribe_line: usize, // 0: none
    errors: usize,
    first_error: Option<(usize, Msg)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Vars {
    None,
    Mosquitto,
    Extension,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn trim_right(mut s: &[u8], f: fn(u8) -> bool) -> &[u8] {
    while let Some((&c, rest)) = s.split_last() {
        if !f(c) {
            break;
        }
        s = rest;
    }
    s
}

fn trim_left(mut s: &[u8], f: fn(u8) -> bool) -> &[u8] {
    while let Some((&c, rest)) = s.split_first() {
        if !f(c) {
            break;
        }
        s = rest;
    }
    s
}

fn trim(s: &[u8], f: fn(u8) -> bool) -> &[u8] {
    trim_left(trim_right(s, f), f)
}

fn space_tab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn space(c: u8) -> bool {
    c == b' '
}

fn find(s: &[u8], f: impl Fn(u8) -> bool) -> Option<usize> {
    s.iter().position(|&c| f(c))
}

fn contains(s: &[u8], sub: &[u8]) -> bool {
    s.windows(sub.len()).any(|w| w == sub)
}

/// For messages: the bytes as text, or "?" when they are not UTF-8.
fn show(s: &[u8]) -> &str {
    core::str::from_utf8(s).unwrap_or("?")
}

/// Splits off the next token separated by spaces or tabs.
fn next_token(s: &'static [u8]) -> (&'static [u8], &'static [u8]) {
    let s = trim_left(s, space_tab);
    match find(s, space_tab) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, &[]),
    }
}

fn is_option_key(k: &[u8]) -> bool {
    !k.is_empty() && k.iter().all(|c| c.is_ascii_lowercase())
}

fn valid_attr_name(s: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 64 && s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
}

/// Checks a filter like mosquitto_sub_topic_check; the problem, or None.
fn valid_filter(f: &[u8]) -> Option<&'static str> {
    if f.is_empty() {
        return Some("empty topic");
    }
    if f.len() > MAX_TOPIC_LEN {
        return Some("longer than 65535 bytes");
    }
    if f.iter().filter(|&&c| c == b'/').count() > MAX_TOPIC_LEVELS {
        return Some("more than 200 '/' separators");
    }
    for i in 0..f.len() {
        match f[i] {
            b'+' => {
                if (i > 0 && f[i - 1] != b'/') || (i + 1 < f.len() && f[i + 1] != b'/') {
                    return Some("'+' must be a whole level");
                }
            }
            b'#' => {
                if i > 0 && f[i - 1] != b'/' {
                    return Some("'#' must be a whole level");
                }
                if i + 1 < f.len() {
                    return Some("'#' must be the last level");
                }
            }
            _ => {}
        }
    }
    None
}

impl Parser {
    fn fail(&mut self, line: usize, m: Msg) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((line, m));
        }
    }

    fn line(&mut self, n: usize, raw: &'static [u8]) {
        if raw.contains(&0) {
            return self.fail(n, Msg::from("line contains a NUL byte"));
        }
        let s = trim_left(trim_right(raw, is_space), space_tab);
        if s.is_empty() || s[0] == b'#' {
            return;
        }
        let ext = s[0] == b'@';
        let (keyword, rest): (&'static [u8], &'static [u8]) =
            match find(s, |c| c == b' ' || (ext && c == b'\t')) {
                Some(i) => (&s[..i], &s[i + 1..]),
                None => (s, &[]),
            };
        match keyword {
            b"topic" | b"pattern" => self.mosquitto_rule(n, keyword == b"pattern", rest),
            b"user" => {
                let user = trim(rest, is_space);
                if user.is_empty() {
                    return self.fail(n, Msg::from("missing username"));
                }
                self.in_user = true;
                self.user = user;
            }
            b"@topic" | b"@pattern" => self.extension_rule(n, keyword == b"@pattern", rest),
            b"@subscribe" => {
                let arg = trim(rest, space_tab);
                if arg != b"check" {
                    return self.fail(n, moat_msg!("@subscribe: want \"@subscribe check\", got \"{}\"", show(arg)));
                }
                self.check_subscribe = true;
            }
            _ => self.fail(
                n,
                moat_msg!(
                    "unknown keyword \"{}\" (want topic, pattern, user, @topic, @pattern or @subscribe)",
                    show(keyword)
                ),
            ),
        }
    }

    fn new_rule(&self, pattern: bool) -> Rule {
        let (group, user) = if pattern {
            (PATTERN, &[][..])
        } else if self.in_user {
            (USER, self.user)
        } else {
            (ANON, &[][..])
        };
        Rule { group, user, class: ANY, deny: false, no_retain: false, actions: 0, max_qos: 2, nlev: 0, hash_tail: false, levels: &[] }
    }

    fn mosquitto_rule(&mut self, n: usize, pattern: bool, rest: &'static [u8]) {
        let rest = trim_left(rest, space);
        if rest.is_empty() {
            return self.fail(n, Msg::from("missing topic"));
        }
        let mut r = self.new_rule(pattern);
        r.actions = READWRITE;
        let topic = match find(rest, space) {
            None => rest,
            Some(i) => {
                match &rest[..i] {
                    b"read" => r.actions = READ,
                    b"write" => r.actions = WRITE,
                    b"readwrite" => {}
                    b"deny" => r.deny = true,
                    a => {
                        return self.fail(
                            n,
                            moat_msg!("unknown access \"{}\" (want read, write, readwrite or deny)", show(a)),
                        )
                    }
                }
                trim(&rest[i + 1..], is_space)
            }
        };
        let vars = if pattern { Vars::Mosquitto } else { Vars::None };
        if self.set_filter(n, &mut r, topic, vars) {
            self.add(r);
        }
    }

    fn extension_rule(&mut self, n: usize, pattern: bool, rest: &'static [u8]) {
        let mut r = self.new_rule(pattern);
        let (perm, rest) = next_token(rest);
        match perm {
            b"allow" => {}
            b"deny" => r.deny = true,
            b"" => return self.fail(n, Msg::from("missing permission (want allow or deny)")),
            p => return self.fail(n, moat_msg!("unknown permission \"{}\" (want allow or deny)", show(p))),
        }
        let (actions, mut rest) = next_token(rest);
        if actions.is_empty() {
            return self.fail(
                n,
                Msg::from("missing actions (want publish, subscribe, deliver, read, write or readwrite)"),
            );
        }
        for a in actions.split(|&c| c == b',') {
            match a {
                b"publish" => r.actions |= PUBLISH,
                b"subscribe" => {
                    r.actions |= SUBSCRIBE;
                    if self.first_subscribe_line == 0 {
                        self.first_subscribe_line = n;
                    }
                }
                b"deliver" => r.actions |= DELIVER,
                b"read" => r.actions |= READ,
                b"write" => r.actions |= WRITE,
                b"readwrite" => r.actions |= READWRITE,
                a => {
                    return self.fail(
                        n,
                        moat_msg!(
                            "unknown action \"{}\" (want publish, subscribe, deliver, read, write or readwrite)",
                            show(a)
                        ),
                    )
                }
            }
        }
        let (mut seen_qos, mut seen_retain) = (false, false);
        let topic;
        loop {
            let (tok, after) = next_token(rest);
            if tok == b"--" {
                topic = trim(after, space_tab);
                break;
            }
            let (key, value) = match find(tok, |c| c == b'=') {
                Some(i) if is_option_key(&tok[..i]) => (&tok[..i], &tok[i + 1..]),
                _ => {
                    topic = trim(rest, space_tab);
                    break;
                }
            };
            rest = after;
            if r.deny {
                return self.fail(n, moat_msg!("option \"{}\": options belong to allow rules", show(tok)));
            }
            let seen = match key {
                b"maxqos" => &mut seen_qos,
                b"retain" => &mut seen_retain,
                _ => return self.fail(n, moat_msg!("unknown option \"{}\" (want maxqos or retain)", show(key))),
            };
            if *seen {
                return self.fail(n, moat_msg!("option \"{}\" given twice", show(key)));
            }
            *seen = true;
            if key == b"maxqos" {
                if value.len() != 1 || value[0] < b'0' || value[0] > b'2' {
                    return self.fail(n, moat_msg!("option maxqos=\"{}\": want 0, 1 or 2", show(value)));
                }
                if r.actions & (PUBLISH | SUBSCRIBE) == 0 {
                    return self.fail(
                        n,
                        Msg::from("option maxqos: applies to publish and subscribe, and the rule has neither"),
                    );
                }
                r.max_qos = value[0] - b'0';
            } else {
                match value {
                    b"allow" => {}
                    b"deny" => r.no_retain = true,
                    _ => return self.fail(n, moat_msg!("option retain=\"{}\": want allow or deny", show(value))),
                }
                if r.actions & PUBLISH == 0 {
                    return self.fail(n, Msg::from("option retain: applies to publish, and the rule has none"));
                }
            }
        }
        if topic.is_empty() {
            return self.fail(n, Msg::from("missing topic"));
        }
        let vars = if pattern { Vars::Extension } else { Vars::None };
        if self.set_filter(n, &mut r, topic, vars) {
            self.add(r);
        }
    }

    fn set_filter(&mut self, n: usize, r: &mut Rule, topic: &'static [u8], vars: Vars) -> bool {
        if let Some(m) = valid_filter(topic) {
            self.fail(n, moat_msg!("invalid topic filter \"{}\": {}", show(topic), m));
            return false;
        }
        let start = self.nlevels;
        for l in topic.split(|&c| c == b'/') {
            let lv = match l {
                b"+" => Level::Plus,
                b"#" => Level::Hash,
                b"%c" if vars != Vars::None => Level::Client,
                b"%u" if vars != Vars::None => Level::User,
                _ if vars == Vars::Mosquitto && (contains(l, b"%c") || contains(l, b"%u")) => {
                    self.nlevels = start;
                    self.fail(
                        n,
                        moat_msg!(
                            "invalid topic filter \"{}\": %c and %u must be a whole level (\"{}\")",
                            show(topic),
                            show(l)
                        ),
                    );
                    return false;
                }
                _ if vars == Vars::Extension && l.contains(&b'%') => {
                    let ok = l.len() >= 3 && l.starts_with(b"%{") && l.ends_with(b"}");
                    let name = if ok { &l[2..l.len() - 1] } else { &[][..] };
                    if !ok || !valid_attr_name(name) {
                        self.nlevels = start;
                        self.fail(
                            n,
                            moat_msg!(
                                "invalid topic filter \"{}\": in @pattern a '%' must be a whole level %c, %u or %{{name}} (\"{}\")",
                                show(topic),
                                show(l)
                            ),
                        );
                        return false;
                    }
                    self.uses_attrs = true;
                    Level::Attr(name)
                }
                _ => Level::Lit(l),
            };
            self.levels[self.nlevels] = lv;
            self.nlevels += 1;
        }
        let levels: &'static [Level] = unsafe { core::slice::from_raw_parts(self.levels.as_ptr().add(start), self.nlevels - start) };
        r.levels = levels;
        true
    }

    fn add(&mut self, r: Rule) {
        self.rules[self.nrules] = r;
        self.nrules += 1;
    }
}

fn parse(text: &'static [u8], name: &'static str) -> Result<Acl, Msg> {
    // Upper bounds: a rule per line, a level per '/' plus one per line.
    let lines = text.iter().filter(|&&c| c == b'\n').count() + 1;
    let slashes = text.iter().filter(|&&c| c == b'/').count();
    let empty = Rule {
        group: 0,
        user: &[],
        class: ANY,
        deny: false,
        no_retain: false,
        actions: 0,
        max_qos: 2,
        nlev: 0,
        hash_tail: false,
        levels: &[],
    };
    let mut p = Parser {
        name,
        rules: arena::alloc_slice(lines, empty).ok_or_else(oom)?,
        nrules: 0,
        levels: arena::alloc_slice(lines + slashes, Level::Plus).ok_or_else(oom)?,
        nlevels: 0,
        in_user: false,
        user: &[],
        check_subscribe: false,
        uses_attrs: false,
        first_subscribe_line: 0,
        errors: 0,
        first_error: None,
    };
    // bufio.ScanLines: lines end at '\n', a '\r' before it is dropped, and
    // a last line without '\n' counts unless empty.
    let mut n = 0;
    let mut rest = text;
    while !rest.is_empty() {
        n += 1;
        let (mut line, after) = match find(rest, |c| c == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        if line.len() >= MAX_LINE {
            p.fail(n, moat_msg!("line longer than {} bytes", MAX_LINE));
            break;
        }
        if let Some((&b'\r', l)) = line.split_last() {
            line = l;
        }
        rest = after;
        p.line(n, line);
        if p.errors >= MAX_ERRORS {
            break;
        }
    }
    if !p.check_subscribe && p.first_subscribe_line != 0 {
        let l = p.first_subscribe_line;
        if p.first_error.as_ref().map_or(true, |(e, _)| l < *e) {
            p.first_error = Some((l, Msg::from("rule names subscribe, but the file has no \"@subscribe check\"")));
        }
    }
    if let Some((line, m)) = p.first_error {
        let more = if p.errors > 1 { " (and more errors)" } else { "" };
        return Err(moat_msg!("acl: {}:{}: {}{}", p.name, line, m.as_str(), more));
    }
    let rules = &mut p.rules[..p.nrules];
    for r in rules.iter_mut() {
        r.classify();
    }
    rules.sort_unstable_by(|a, b| (a.group, a.user, a.class, a.key()).cmp(&(b.group, b.user, b.class, b.key())));
    let rules: &'static [Rule] = rules;
    let mut acl = Acl {
        rules,
        anon: None,
        patterns: None,
        sections: &[],
        users: &[],
        groups: &[],
        group_index: &[],
        check_subscribe: p.check_subscribe,
        uses_attrs: p.uses_attrs,
        ignore: false,
    };
    index(rules, &mut acl)?;
    Ok(acl)
}

// ---------------------------------------------------------------------------
// Decisions: plugins/acl/aclfile/acl.go.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    NoMatch,
    Allow,
    Deny,
}

/// Topic levels recorded per request: a filter has at most
/// MAX_TOPIC_LEVELS+1 levels, so a rule never looks past them; a topic with
/// more counts as CAP+1 levels, which only a '#' rule can match.
const CAP: usize = 256;

/// CUTS[i] is where level i of the request's topic starts, and level i
/// ends one byte before CUTS[i+1]. Static rather than on the stack so that
/// a request does not pay for zeroing it; an instance serves one call at a
/// time.
static mut CUTS: [u32; CAP + 1] = [0; CAP + 1];

/// What one pass over the topic learns.
struct Scanned {
    nlev: usize, // level count, CAP+1 for more than CAP
    wild: bool,  // has '+' or '#'
    high: bool,  // has a byte >= 0x80 (UTF-8 to check)
}

/// Scans the topic a word at a time, recording its level starts in CUTS.
fn scan_topic(t: &[u8]) -> Scanned {
    // SAFETY: one call at a time per instance; nothing else borrows CUTS.
    let cuts = unsafe { &mut CUTS };
    cuts[0] = 0;
    let (mut slashes, mut wild, mut high) = (0usize, 0u64, 0u64);
    let mut i = 0;
    while i < t.len() {
        let w = word(t, i);
        high |= w;
        wild |= bytes_eq(w, b'+') | bytes_eq(w, b'#');
        let mut m = bytes_eq(w, b'/');
        while m != 0 {
            slashes += 1;
            if slashes <= CAP {
                cuts[slashes] = (i + (m.trailing_zeros() as usize >> 3) + 1) as u32;
            }
            m &= m - 1;
        }
        i += 8;
    }
    let nlev = slashes + 1;
    if nlev <= CAP {
        cuts[nlev] = t.len() as u32 + 1;
    }
    Scanned { nlev: nlev.min(CAP + 1), wild: wild != 0, high: high & HIGHS != 0 }
}

/// Field id of request b as moat::Request::field reads it (sdk/ABI.md
/// §3), "" when absent; inlined, because every call costs the meter's
/// checks.
#[inline(always)]
fn field(b: &[u8], id: usize) -> &[u8] {
    let d = 16 + 8 * id;
    if b.len() < d + 8 || id >= u16::from_le_bytes([b[6], b[7]]) as usize {
        return &[];
    }
    let off = u32::from_le_bytes([b[d], b[d + 1], b[d + 2], b[d + 3]]) as usize;
    let len = u32::from_le_bytes([b[d + 4], b[d + 5], b[d + 6], b[d + 7]]) as usize;
    if off == 0 {
        return &[];
    }
    match off.checked_add(len) {
        Some(end) if end <= b.len() => &b[off..end],
        _ => &[],
    }
}

/// A client's name field (client id or username) of request b as the
/// SDK's str accessors give it ("" when absent or not UTF-8), and whether
/// it has a wildcard and a '/'.
#[inline(always)]
fn name(b: &[u8], id: usize) -> (&[u8], bool, bool) {
    let s = field(b, id);
    let (mut wild, mut slash, mut high) = (0u64, 0u64, 0u64);
    let mut i = 0;
    while i < s.len() {
        let w = word(s, i);
        high |= w;
        wild |= bytes_eq(w, b'+') | bytes_eq(w, b'#');
        slash |= bytes_eq(w, b'/');
        i += 8;
    }
    if high & HIGHS != 0 && core::str::from_utf8(s).is_err() {
        return (&[], false, false);
    }
    (s, wild != 0, slash != 0)
}

/// One request, with its topic's levels in CUTS.
struct Query<'a> {
    action: Action,
    want: u8,
    cover: bool,
    client_id: &'a [u8],
    username: &'a [u8],
    topic: &'a [u8],
    nlev: usize,
    dollar: bool,
    first: &'a [u8],
    first_hash: u64,
    qos: u8,
    retain: bool,
    attrs: Pairs<'a>,
    client_ok: bool,
    user_ok: bool,
}

impl<'a> Query<'a> {
    /// Level i of the topic; i < nlev and i < CAP.
    #[inline(always)]
    fn level(&self, i: usize) -> &'a [u8] {
        // SAFETY: scan_topic wrote CUTS[..=min(nlev, CAP)] for this topic.
        let cuts = unsafe { &CUTS };
        &self.topic[cuts[i] as usize..cuts[i + 1] as usize - 1]
    }

    fn value(&self, l: &Level) -> Option<&'a [u8]> {
        match l {
            Level::Client if self.client_ok => Some(self.client_id),
            Level::User if self.user_ok => Some(self.username),
            Level::Attr(k) => {
                let v = self.attrs.get_bytes(k)?;
                let (wild, slash) = scan_value(v);
                if v.is_empty() || wild || slash {
                    None
                } else {
                    Some(v)
                }
            }
            _ => None,
        }
    }

    /// Whether the rule's filter matches the topic (or, for a subscribe,
    /// covers the filter), as the trie walk of aclfile decides. Its first
    /// `skip` levels are known to match.
    #[inline(always)]
    fn matches(&self, r: &Rule, skip: usize) -> bool {
        let n = r.nlev as usize;
        if if r.hash_tail { self.nlev + 1 < n } else { self.nlev != n } {
            return false;
        }
        // Now every level before a '#' exists in the topic.
        for i in skip..n {
            let fl = &r.levels[i];
            let root = i == 0;
            if *fl == Level::Hash {
                return !(root && self.dollar);
            }
            let tl = self.level(i);
            if self.cover && tl.len() == 1 {
                if tl[0] == b'#' {
                    return false;
                }
                if tl[0] == b'+' {
                    if *fl == Level::Plus {
                        continue;
                    }
                    return false;
                }
            }
            let ok = match fl {
                Level::Lit(s) => eq(s, tl),
                Level::Plus => !(root && self.dollar),
                _ => !(root && self.dollar) && self.value(fl).map_or(false, |v| eq(v, tl)),
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn permits(&self, r: &Rule) -> bool {
        if self.action != Action::Deliver && self.qos > r.max_qos {
            return false;
        }
        !(self.retain && r.no_retain && self.action == Action::Publish)
    }

    /// Decides within one section. The candidates are the rules any topic
    /// may match, the group of the topic's first level, and, when the
    /// topic starts with the username or client id, the rules that start
    /// with %u or %c; each run with the number of its leading levels known
    /// to match. They are scanned in one loop: a deny wins at once, else
    /// any permitting allow.
    fn section(&self, acl: &Acl, sec: &Section) -> Verdict {
        let rules = acl.rules;
        let mut runs: [(&[Rule], usize); 6] = [(&[], 0); 6];
        runs[0] = (&rules[sec.start as usize..sec.any_end as usize], 0);
        let mut n = 1;
        if sec.keyed & 1 << FIRST != 0 {
            runs[n] = (acl.group(sec.id, FIRST, self.first, self.first_hash), 1);
            n += 1;
        }
        // A %u or %c level matches neither a '$' first level nor (for a
        // subscribe) a wildcard, which a valid name never has.
        if !self.dollar {
            let mut second: Option<(&[u8], u64)> = None;
            for (ok, name, run_start, run_end, class) in [
                (self.user_ok, self.username, sec.any_end, sec.user_end, USER_SECOND),
                (self.client_ok, self.client_id, sec.user_end, sec.client_end, CLIENT_SECOND),
            ] {
                let keyed = sec.keyed & 1 << class != 0;
                if !ok || (run_start == run_end && !keyed) || !eq(name, self.first) {
                    continue;
                }
                runs[n] = (&rules[run_start as usize..run_end as usize], 1);
                n += 1;
                if keyed && self.nlev >= 2 {
                    let (l, h) = *second.get_or_insert_with(|| {
                        let l = self.level(1);
                        (l, hash(l))
                    });
                    runs[n] = (acl.group(sec.id, class, l, h), 2);
                    n += 1;
                }
            }
        }
        let mut v = Verdict::NoMatch;
        for &(run, skip) in &runs[..n] {
            for r in run {
                if r.actions & self.want == 0 || !self.matches(r, skip) {
                    continue;
                }
                if r.deny {
                    return Verdict::Deny;
                }
                if self.permits(r) {
                    v = Verdict::Allow;
                }
            }
        }
        v
    }
}

fn scan_value(s: &[u8]) -> (bool, bool) {
    let (mut wild, mut slash) = (false, false);
    for &c in s {
        match c {
            b'+' | b'#' => wild = true,
            b'/' => slash = true,
            _ => {}
        }
    }
    (wild, slash)
}

fn decide(acl: &Acl, r: &AuthzRequest) -> Verdict {
    if acl.rules.is_empty() {
        // CVE-2018-12550: an empty file must not mean "no restrictions".
        return Verdict::Deny;
    }
    let action = r.action();
    let qos = r.qos();
    if qos > 2 {
        return Verdict::Deny;
    }
    // The topic as AuthzRequest::topic gives it, "" when absent or not
    // UTF-8; "" is neither a valid name nor a valid filter, so absent,
    // empty, overlong and non-UTF-8 topics are all denied here.
    let b = r.bytes();
    let topic = field(b, field::TOPIC);
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Verdict::Deny;
    }
    let t = scan_topic(topic);
    if t.high && core::str::from_utf8(topic).is_err() {
        return Verdict::Deny;
    }
    let want = match action {
        Action::Publish | Action::Deliver => {
            if t.wild {
                return Verdict::Deny; // not a valid name
            }
            if action == Action::Publish {
                PUBLISH
            } else {
                DELIVER
            }
        }
        Action::Subscribe => {
            // Without wildcards, valid_filter only counts the separators.
            if (t.wild || t.nlev > MAX_TOPIC_LEVELS + 1) && valid_filter(topic).is_some() {
                return Verdict::Deny;
            }
            if !acl.check_subscribe {
                return Verdict::Allow;
            }
            SUBSCRIBE
        }
        _ => return Verdict::Deny,
    };
    let (username, u_wild, u_slash) = name(b, field::USERNAME);
    let anonymous = username.is_empty();
    let first = {
        // SAFETY: scan_topic wrote CUTS[1] (CAP > 1).
        let end = unsafe { CUTS[1] } as usize - 1;
        &topic[..end]
    };
    let mut q = Query {
        action,
        want,
        cover: action == Action::Subscribe,
        client_id: &[],
        username,
        topic,
        nlev: t.nlev,
        dollar: topic[0] == b'$',
        first,
        first_hash: hash(first),
        qos,
        retain: r.retain(),
        attrs: if acl.uses_attrs { r.attributes() } else { Pairs::new(&[]) },
        client_ok: false,
        user_ok: false,
    };
    let section = if anonymous { acl.anon } else { acl.user_section(username) };
    if let Some(sec) = section {
        let v = q.section(acl, sec);
        if v != Verdict::NoMatch {
            return v;
        }
    }
    let patterns = match acl.patterns {
        Some(p) => p,
        None => return Verdict::NoMatch,
    };
    // CVE-2017-7650: Mosquitto refuses the whole pattern phase for a client
    // whose id or name has a wildcard.
    let (client_id, c_wild, c_slash) = name(b, field::CLIENT_ID);
    if c_wild || (!anonymous && u_wild) {
        return Verdict::Deny;
    }
    q.client_id = client_id;
    q.client_ok = !client_id.is_empty() && !c_slash;
    q.user_ok = !anonymous && !u_slash;
    q.section(acl, patterns)
}

fn authz(r: &AuthzRequest) -> Authz {
    match r.action() {
        Action::Publish | Action::Subscribe | Action::Deliver => {}
        _ => return Authz::ignore(), // decrypt is the payload policy's business
    }
    let acl = unsafe { &ACL };
    match decide(acl, r) {
        Verdict::Allow => Authz::allow(),
        Verdict::Deny => Authz::deny_with(Reason::NOT_AUTHORIZED),
        Verdict::NoMatch if acl.ignore => Authz::ignore(),
        Verdict::NoMatch => Authz::deny_with(Reason::NOT_AUTHORIZED),
    }
}

moat_plugin!(configure = configure, authz = authz);
