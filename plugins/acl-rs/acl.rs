//! moat's ACL-file plugin in Rust: the same configuration, file grants,
//! syntax and decisions as the Go engine plugins/acl/aclfile (the
//! reference, see its doc.go), in a module of kilobytes. Mosquitto's
//! acl_file plus moat's @-extensions.
//!
//! Build: make bin/plugins/acl.wasm (sdk/rust/README.md has the recipe).
//!
//! Decisions do not depend on rule order (a matching deny wins, else any
//! matching allow whose options permit), so the rules are kept in one array
//! sorted by (section, first filter level) and a query scans only the
//! rules of its section whose first level is its topic's first level or a
//! wildcard or substitution. Nothing is allocated per request.
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

#[derive(Clone, Copy)]
struct Rule {
    group: u8,
    user: &'static [u8],
    deny: bool,
    no_retain: bool,
    actions: u8,
    max_qos: u8,
    levels: &'static [Level],
}

impl Rule {
    /// The first level as a sort key: wildcards and substitutions (None)
    /// sort before literals.
    fn first(&self) -> Option<&'static [u8]> {
        match self.levels.first() {
            Some(Level::Lit(s)) => Some(s),
            _ => None,
        }
    }
}

/// The rules of one section, a run of the sorted rule array: first those
/// whose first level is a wildcard or substitution, up to `generic`.
#[derive(Clone, Copy)]
struct Section {
    id: u32,
    user: &'static [u8],
    start: u32,
    generic: u32,
    end: u32,
}

/// The rules of one section whose first level is the literal `key`.
#[derive(Clone, Copy)]
struct Group {
    section: u32,
    key: &'static [u8],
    start: u32,
    end: u32,
}

struct Acl {
    rules: &'static [Rule],
    anon: Option<Section>,
    patterns: Option<Section>,
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

/// FNV-1a over a section number and a key.
fn hash(section: u32, key: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ section;
    h = h.wrapping_mul(0x0100_0193);
    for &c in key {
        h ^= c as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn table_size(n: usize) -> usize {
    (2 * n + 1).next_power_of_two()
}

impl Acl {
    fn user_section(&self, user: &[u8]) -> Option<Section> {
        let mask = self.users.len().wrapping_sub(1);
        if self.users.is_empty() {
            return None;
        }
        let mut i = hash(0, user) as usize & mask;
        loop {
            let e = self.users[i];
            if e == 0 {
                return None;
            }
            let sec = self.sections[e as usize - 1];
            if sec.user == user {
                return Some(sec);
            }
            i = (i + 1) & mask;
        }
    }

    fn group(&self, section: u32, key: &[u8]) -> &'static [Rule] {
        if self.group_index.is_empty() {
            return &[];
        }
        let mask = self.group_index.len() - 1;
        let mut i = hash(section, key) as usize & mask;
        loop {
            let e = self.group_index[i];
            if e == 0 {
                return &[];
            }
            let g = self.groups[e as usize - 1];
            if g.section == section && g.key == key {
                return &self.rules[g.start as usize..g.end as usize];
            }
            i = (i + 1) & mask;
        }
    }
}

/// Indexes the sorted rules: sections, and runs of a common first level.
fn index(rules: &'static [Rule], acl: &mut Acl) -> Result<(), Msg> {
    // Count sections and groups.
    let (mut nsec, mut ngroups) = (0, 0);
    for i in 0..rules.len() {
        let new_sec = i == 0 || (rules[i].group, rules[i].user) != (rules[i - 1].group, rules[i - 1].user);
        if new_sec {
            nsec += 1;
        }
        if rules[i].first().is_some() && (new_sec || rules[i].first() != rules[i - 1].first()) {
            ngroups += 1;
        }
    }
    let empty = Section { id: 0, user: &[], start: 0, generic: 0, end: 0 };
    let sections = arena::alloc_slice(nsec, empty).ok_or_else(oom)?;
    let groups = arena::alloc_slice(ngroups, Group { section: 0, key: &[], start: 0, end: 0 }).ok_or_else(oom)?;
    let (mut s, mut g) = (0usize, 0usize);
    for i in 0..rules.len() {
        let r = &rules[i];
        let new_sec = i == 0 || (r.group, r.user) != (rules[i - 1].group, rules[i - 1].user);
        if new_sec {
            sections[s] = Section { id: s as u32, user: r.user, start: i as u32, generic: i as u32, end: i as u32 };
            s += 1;
        }
        let sec = &mut sections[s - 1];
        sec.end = i as u32 + 1;
        match r.first() {
            None => sec.generic = i as u32 + 1,
            Some(k) => {
                if new_sec || rules[i - 1].first() != Some(k) {
                    groups[g] = Group { section: s as u32 - 1, key: k, start: i as u32, end: i as u32 };
                    g += 1;
                }
                groups[g - 1].end = i as u32 + 1;
            }
        }
    }
    for sec in sections.iter() {
        let r = &rules[sec.start as usize];
        match r.group {
            ANON => acl.anon = Some(*sec),
            PATTERN => acl.patterns = Some(*sec),
            _ => {}
        }
    }
    let users = arena::alloc_slice(table_size(nsec), 0u32).ok_or_else(oom)?;
    let umask = users.len() - 1;
    for (k, sec) in sections.iter().enumerate() {
        if rules[sec.start as usize].group != USER {
            continue;
        }
        let mut i = hash(0, sec.user) as usize & umask;
        while users[i] != 0 {
            i = (i + 1) & umask;
        }
        users[i] = k as u32 + 1;
    }
    let gindex = arena::alloc_slice(table_size(ngroups), 0u32).ok_or_else(oom)?;
    let gmask = gindex.len() - 1;
    for (k, gr) in groups.iter().enumerate() {
        let mut i = hash(gr.section, gr.key) as usize & gmask;
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

fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|&c| c == b'+' || c == b'#')
}

fn valid_name(t: &[u8]) -> bool {
    !t.is_empty() && t.len() <= MAX_TOPIC_LEN && !has_wildcard(t)
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
        Rule { group, user, deny: false, no_retain: false, actions: 0, max_qos: 2, levels: &[] }
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
    let empty = Rule { group: 0, user: &[], deny: false, no_retain: false, actions: 0, max_qos: 2, levels: &[] };
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
    rules.sort_unstable_by(|a, b| (a.group, a.user, a.first()).cmp(&(b.group, b.user, b.first())));
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

struct Query<'a> {
    action: Action,
    want: u8,
    cover: bool,
    client_id: &'a [u8],
    username: &'a [u8],
    topic: &'a [u8],
    qos: u8,
    retain: bool,
    attrs: Pairs<'a>,
    client_ok: bool,
    user_ok: bool,
}

impl<'a> Query<'a> {
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
    /// covers the filter), as the trie walk of aclfile decides.
    fn matches(&self, levels: &[Level]) -> bool {
        let dollar = self.topic.first() == Some(&b'$');
        let mut rest: Option<&[u8]> = Some(self.topic);
        for (i, fl) in levels.iter().enumerate() {
            let root = i == 0;
            if *fl == Level::Hash {
                return !(root && dollar);
            }
            let t = match rest {
                Some(t) => t,
                None => return false,
            };
            let (tl, next) = match find(t, |c| c == b'/') {
                Some(j) => (&t[..j], Some(&t[j + 1..])),
                None => (t, None),
            };
            rest = next;
            if self.cover {
                if tl == b"#" {
                    return false;
                }
                if tl == b"+" {
                    if *fl == Level::Plus {
                        continue;
                    }
                    return false;
                }
            }
            let ok = match fl {
                Level::Lit(s) => *s == tl,
                Level::Plus => !(root && dollar),
                _ => !(root && dollar) && self.value(fl) == Some(tl),
            };
            if !ok {
                return false;
            }
        }
        rest.is_none()
    }

    fn permits(&self, r: &Rule) -> bool {
        if self.action != Action::Deliver && self.qos > r.max_qos {
            return false;
        }
        !(self.retain && r.no_retain && self.action == Action::Publish)
    }

    /// Scans the rules: a deny wins at once, else any permitting allow.
    fn run(&self, rules: &[Rule], v: &mut Verdict) -> bool {
        for r in rules {
            if r.actions & self.want == 0 || !self.matches(r.levels) {
                continue;
            }
            if r.deny {
                *v = Verdict::Deny;
                return true;
            }
            if self.permits(r) {
                *v = Verdict::Allow;
            }
        }
        false
    }

    /// Decides within one section: rules with a wildcard or substituted
    /// first level, then those whose literal first level is the topic's.
    fn section(&self, acl: &Acl, sec: Section) -> Verdict {
        let mut v = Verdict::NoMatch;
        if self.run(&acl.rules[sec.start as usize..sec.generic as usize], &mut v) {
            return v;
        }
        if sec.generic == sec.end {
            return v;
        }
        let first = match find(self.topic, |c| c == b'/') {
            Some(j) => &self.topic[..j],
            None => self.topic,
        };
        if self.cover && (first == b"+" || first == b"#") {
            return v; // a literal never covers a wildcard
        }
        self.run(acl.group(sec.id, first), &mut v);
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
    let topic = r.topic().as_bytes();
    let qos = r.qos();
    if qos > 2 {
        return Verdict::Deny;
    }
    let want = match action {
        Action::Publish | Action::Deliver => {
            if !valid_name(topic) {
                return Verdict::Deny;
            }
            if action == Action::Publish {
                PUBLISH
            } else {
                DELIVER
            }
        }
        Action::Subscribe => {
            if valid_filter(topic).is_some() {
                return Verdict::Deny;
            }
            if !acl.check_subscribe {
                return Verdict::Allow;
            }
            SUBSCRIBE
        }
        _ => return Verdict::Deny,
    };
    let username = r.username().as_bytes();
    let anonymous = username.is_empty();
    let mut q = Query {
        action,
        want,
        cover: action == Action::Subscribe,
        client_id: r.client_id().as_bytes(),
        username,
        topic,
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
    let (c_wild, c_slash) = scan_value(q.client_id);
    let (u_wild, u_slash) = if anonymous { (false, true) } else { scan_value(username) };
    if c_wild || u_wild {
        return Verdict::Deny;
    }
    q.client_ok = !q.client_id.is_empty() && !c_slash;
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
