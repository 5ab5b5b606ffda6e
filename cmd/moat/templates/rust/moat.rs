//! moat Rust SDK: write a moat ABI v1 policy module (sdk/ABI.md) in
//! `no_std` Rust with no crates.
//!
//! Include this file as a module of your crate root and invoke the
//! `moat_plugin!` macro once:
//!
//! ```ignore
//! #![no_std]
//! #[macro_use]
//! #[path = "path/to/sdk/rust/moat.rs"]
//! mod moat;
//! use moat::*;
//!
//! fn authz(r: &AuthzRequest) -> Authz {
//!     if Filter::new("devices/%u/#").matches_request(r) { Authz::allow() } else { Authz::ignore() }
//! }
//! moat_plugin!(authz = authz);
//! ```
//!
//! and build it with (see sdk/rust/README.md for why each flag):
//!
//! ```text
//! rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
//!   -C panic=abort -C opt-level=s -C link-arg=-zstack-size=65536 -C strip=symbols \
//!   plugin.rs -o plugin.wasm
//! ```
//!
//! What the SDK provides, and why:
//!
//! - `moat_plugin!` generates the exports: `moat_abi_v1`, `moat_buffer`,
//!   `moat_configure` and the decision exports wired to your functions.
//! - Memory: a bump arena over `memory.grow` ([`arena`]). The request buffer
//!   is carved from it and grows on demand; a module keeps its config in it
//!   with [`arena::keep`]. There is no `#[global_allocator]`: with Rust
//!   1.63 a `no_std` crate that uses the `alloc` crate needs the unstable
//!   `#[alloc_error_handler]`, so the SDK does without `alloc`. A policy
//!   module allocates at configure time and reads requests in place, which
//!   is exactly what a bump arena serves well; nothing is ever freed.
//! - Typed request views ([`AuthnRequest`], [`AuthzRequest`],
//!   [`PayloadRequest`]) that read the request in place, with [`Pairs`] and
//!   [`Strings`] iterators for pair and string lists.
//! - Result types ([`Authn`], [`Authz`], [`Payload`]) whose constructors can
//!   only build results the host accepts (§4): a deny reason is a
//!   [`Reason`] (>= 0x80), a mode only goes with a payload allow, the
//!   superuser bit only with an authn allow, and `continue` only comes
//!   from [`AuthnRequest::continue_auth`], which refuses requests without
//!   an auth method.
//! - Safe wrappers of the host functions ([`log`], [`set_message`],
//!   [`add_attribute`], ...): slices in, status out.
//! - A panic handler that logs the panic message at error level and sets it
//!   as the decision's message before trapping, so the operator reads
//!   "panicked at 'index out of bounds...', src/x.rs:3:5" next to the
//!   plugin error instead of only "unreachable".
//! - Topic filters with `%u`, `%c` and `%{attribute}` levels ([`Filter`]),
//!   a small validating JSON reader for the config ([`json`]), and a
//!   constant-time comparison ([`ct_eq`]).
#![allow(dead_code)]

use core::fmt;

// ---------------------------------------------------------------------------
// Host imports (sdk/ABI.md §6). Only the functions a module calls end up in
// its import section, so a module that never reads files needs no grant.

mod host {
    #[link(wasm_import_module = "moat")]
    extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: i32);
        pub fn time_now() -> i64;
        pub fn time_monotonic() -> i64;
        pub fn random(ptr: *mut u8, len: i32) -> i32;
        pub fn set_message(ptr: *const u8, len: i32) -> i32;
        pub fn add_attribute(kptr: *const u8, klen: i32, vptr: *const u8, vlen: i32) -> i32;
        pub fn set_expiry(unix_ns: i64) -> i32;
        pub fn set_auth_data(ptr: *const u8, len: i32) -> i32;
        pub fn set_auth_state(ptr: *const u8, len: i32) -> i32;
        pub fn set_key_id(ptr: *const u8, len: i32) -> i32;
        pub fn payload_read(offset: i32, ptr: *mut u8, len: i32) -> i32;
        pub fn file_size(nptr: *const u8, nlen: i32) -> i64;
        pub fn file_read(nptr: *const u8, nlen: i32, offset: i64, ptr: *mut u8, len: i32) -> i64;
        pub fn pbkdf2(hash: i32, pw: *const u8, pwlen: i32, salt: *const u8, saltlen: i32, iter: i32, out: *mut u8, outlen: i32) -> i32;
        pub fn argon2id(pw: *const u8, pwlen: i32, salt: *const u8, saltlen: i32, time: i32, mem_kib: i32, threads: i32, out: *mut u8, outlen: i32) -> i32;
        pub fn bcrypt_compare(h: *const u8, hlen: i32, pw: *const u8, pwlen: i32) -> i32;
    }
}

/// A host function's failure status (§6): `-1` not available here (wrong
/// decision or phase, capability not granted), `-2` too large or invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    NotAvailable,
    Invalid,
    Other(i64),
}

fn status(r: i64) -> Result<u32, HostError> {
    match r {
        r if r >= 0 => Ok(r as u32),
        -1 => Err(HostError::NotAvailable),
        -2 => Err(HostError::Invalid),
        r => Err(HostError::Other(r)),
    }
}

/// Log levels of the host's `log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Writes one log line (cut by the host at 4096 bytes). Debug lines cost a
/// host call but nothing more unless the broker logs at debug.
pub fn log(level: Level, msg: &str) {
    unsafe { host::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// Wall clock, Unix nanoseconds.
pub fn time_now() -> i64 {
    unsafe { host::time_now() }
}

/// Monotonic nanoseconds from an arbitrary origin.
pub fn time_monotonic() -> i64 {
    unsafe { host::time_monotonic() }
}

/// Fills `buf` (at most 65536 bytes) with cryptographically secure bytes.
pub fn random(buf: &mut [u8]) -> Result<(), HostError> {
    status(unsafe { host::random(buf.as_mut_ptr(), buf.len() as i32) } as i64).map(|_| ())
}

/// Sets the decision's human-readable reason (at most 1024 bytes): the MQTT
/// 5 reason string of a deny, the operator's message of a config refusal.
pub fn set_message(msg: &str) -> Result<(), HostError> {
    status(unsafe { host::set_message(msg.as_ptr(), msg.len() as i32) } as i64).map(|_| ())
}

/// authn: attaches a key/value pair to the client (kept only on allow).
pub fn add_attribute(key: &str, value: &str) -> Result<(), HostError> {
    status(unsafe { host::add_attribute(key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32) } as i64)
        .map(|_| ())
}

/// authn: disconnects the client at `unix_ns`.
pub fn set_expiry(unix_ns: i64) -> Result<(), HostError> {
    status(unsafe { host::set_expiry(unix_ns) } as i64).map(|_| ())
}

/// authn: data for the AUTH packet (continue) or the CONNACK (allow).
pub fn set_auth_data(data: &[u8]) -> Result<(), HostError> {
    status(unsafe { host::set_auth_data(data.as_ptr(), data.len() as i32) } as i64).map(|_| ())
}

/// authn continue: state handed back in the next round's `auth_state`.
pub fn set_auth_state(state: &[u8]) -> Result<(), HostError> {
    status(unsafe { host::set_auth_state(state.as_ptr(), state.len() as i32) } as i64).map(|_| ())
}

/// payload: the key id to seal under (at most 255 bytes).
pub fn set_key_id(id: &str) -> Result<(), HostError> {
    status(unsafe { host::set_key_id(id.as_ptr(), id.len() as i32) } as i64).map(|_| ())
}

/// payload (with `allow_payload = true`): copies payload bytes from
/// `offset` into `buf`; returns the count copied, 0 at the end.
pub fn payload_read(offset: u32, buf: &mut [u8]) -> Result<usize, HostError> {
    status(unsafe { host::payload_read(offset as i32, buf.as_mut_ptr(), buf.len() as i32) } as i64).map(|n| n as usize)
}

/// Size of the granted file `name` (needs a `[plugin.files]` grant; a
/// module that calls this is refused at load without one).
pub fn file_size(name: &str) -> Result<u64, HostError> {
    let r = unsafe { host::file_size(name.as_ptr(), name.len() as i32) };
    if r >= 0 { Ok(r as u64) } else { Err(status(r).unwrap_err()) }
}

/// Reads the granted file `name` at `offset` into `buf`; may return fewer
/// bytes than asked before the end: loop until it returns 0.
pub fn file_read(name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, HostError> {
    let r = unsafe { host::file_read(name.as_ptr(), name.len() as i32, offset as i64, buf.as_mut_ptr(), buf.len() as i32) };
    if r >= 0 { Ok(r as usize) } else { Err(status(r).unwrap_err()) }
}

/// Hash of [`pbkdf2`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sha {
    Sha256 = 1,
    Sha512 = 2,
}

/// PBKDF2-HMAC computed by the host at native speed; fills `out`.
pub fn pbkdf2(hash: Sha, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) -> Result<(), HostError> {
    status(unsafe {
        host::pbkdf2(hash as i32, password.as_ptr(), password.len() as i32, salt.as_ptr(), salt.len() as i32,
            iterations as i32, out.as_mut_ptr(), out.len() as i32)
    } as i64)
    .map(|_| ())
}

/// Argon2id (v0x13) computed by the host; fills `out` with the tag.
pub fn argon2id(password: &[u8], salt: &[u8], time: u32, memory_kib: u32, threads: u32, out: &mut [u8]) -> Result<(), HostError> {
    status(unsafe {
        host::argon2id(password.as_ptr(), password.len() as i32, salt.as_ptr(), salt.len() as i32, time as i32,
            memory_kib as i32, threads as i32, out.as_mut_ptr(), out.len() as i32)
    } as i64)
    .map(|_| ())
}

/// Checks `password` against a bcrypt hash string; true on a match.
pub fn bcrypt_compare(hash: &[u8], password: &[u8]) -> Result<bool, HostError> {
    status(unsafe { host::bcrypt_compare(hash.as_ptr(), hash.len() as i32, password.as_ptr(), password.len() as i32) } as i64)
        .map(|r| r == 1)
}

/// Compares two byte strings in time that depends only on their lengths,
/// not on where they differ: for passwords and tokens.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u32;
    if a.is_empty() {
        // Still touch every byte of b so that an empty stored secret costs
        // what any other does.
        for &y in b {
            diff |= (y as u32) | 0x100;
        }
        return unsafe { core::ptr::read_volatile(&diff) } == 0;
    }
    for (i, &y) in b.iter().enumerate() {
        diff |= (a[i % a.len()] ^ y) as u32;
    }
    (unsafe { core::ptr::read_volatile(&diff) }) == 0
}

// ---------------------------------------------------------------------------
// Memory: one bump arena over memory.grow.

/// The arena: every allocation of the SDK and of the module comes from the
/// top of linear memory, as it is when the arena is first used, upwards.
/// Nothing is freed. The request buffer is the one exception to "never
/// moves": when the host asks for more room than it has, the buffer is
/// extended in place if it is the newest allocation, or else replaced by a
/// new one (the old one is abandoned; since every growth at least doubles,
/// the waste is under the final buffer's size).
///
/// Failure is defined: [`arena::alloc`] returns `None` when memory cannot
/// grow (the plugin's `memory_limit`); `moat_buffer` then logs an error and
/// traps, which the host reports as a plugin error of that call.
pub mod arena {
    use core::arch::wasm32;

    const PAGE: usize = 65536;
    static mut TOP: usize = 0;
    static mut BUF: usize = 0;
    static mut BUF_CAP: usize = 0;

    fn grow_to(end: usize) -> bool {
        let have = wasm32::memory_size(0) * PAGE;
        if end <= have {
            return true;
        }
        let pages = (end - have + PAGE - 1) / PAGE;
        wasm32::memory_grow(0, pages) != usize::MAX
    }

    /// Allocates `size` zeroed bytes aligned to `align` (a power of two),
    /// valid for the life of the instance; `None` when memory cannot grow.
    pub fn alloc(size: usize, align: usize) -> Option<&'static mut [u8]> {
        unsafe {
            if TOP == 0 {
                TOP = wasm32::memory_size(0) * PAGE;
            }
            let start = (TOP + align - 1) & !(align - 1);
            let end = start.checked_add(size)?;
            if !grow_to(end) {
                return None;
            }
            TOP = end;
            // Fresh pages are zero; nothing below TOP is handed out twice.
            Some(core::slice::from_raw_parts_mut(start as *mut u8, size))
        }
    }

    /// Copies `b` into the arena, so that it outlives the request or config
    /// buffer it came from.
    pub fn keep(b: &[u8]) -> Option<&'static [u8]> {
        let d = alloc(b.len(), 1)?;
        d.copy_from_slice(b);
        Some(d)
    }

    /// [`keep`] for strings.
    pub fn keep_str(s: &str) -> Option<&'static str> {
        keep(s.as_bytes()).map(|b| unsafe { core::str::from_utf8_unchecked(b) })
    }

    /// Allocates a slice of `n` copies of `v`.
    pub fn alloc_slice<T: Copy>(n: usize, v: T) -> Option<&'static mut [T]> {
        let bytes = n.checked_mul(core::mem::size_of::<T>())?;
        let b = alloc(bytes, core::mem::align_of::<T>())?;
        let s = unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut T, n) };
        for x in s.iter_mut() {
            *x = v;
        }
        Some(s)
    }

    /// The request buffer for `moat_buffer(size)`: at least `size` bytes,
    /// 0 when memory cannot grow.
    pub(crate) fn buffer(size: usize) -> usize {
        unsafe {
            if size <= BUF_CAP {
                return BUF;
            }
            let mut cap = if BUF_CAP == 0 { 4096 } else { BUF_CAP };
            while cap < size {
                cap = match cap.checked_mul(2) {
                    Some(c) => c,
                    None => return 0,
                };
            }
            if BUF != 0 && BUF + BUF_CAP == TOP {
                if grow_to(BUF + cap) {
                    TOP = BUF + cap;
                    BUF_CAP = cap;
                    return BUF;
                }
                return 0;
            }
            match alloc(cap, 8) {
                Some(b) => {
                    BUF = b.as_mut_ptr() as usize;
                    BUF_CAP = cap;
                    BUF
                }
                None => 0,
            }
        }
    }

    /// The first `len` bytes of the request buffer.
    pub(crate) unsafe fn request(len: usize) -> &'static [u8] {
        let n = if len <= BUF_CAP { len } else { BUF_CAP };
        if BUF == 0 {
            return &[];
        }
        core::slice::from_raw_parts(BUF as *const u8, n)
    }
}

// ---------------------------------------------------------------------------
// Panics.

/// A fixed-capacity string (256 bytes) built with `moat_msg!` or `From<&str>`:
/// messages for config refusals and deny reasons without an allocator.
/// Text beyond the capacity is cut at a character boundary.
pub struct Msg {
    buf: [u8; 256],
    len: usize,
}

impl Msg {
    pub const fn new() -> Msg {
        Msg { buf: [0; 256], len: 0 }
    }
    pub fn format(args: fmt::Arguments) -> Msg {
        let mut m = Msg::new();
        let _ = fmt::write(&mut m, args);
        m
    }
    pub fn as_str(&self) -> &str {
        unsafe { core::str::from_utf8_unchecked(&self.buf[..self.len]) }
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl From<&str> for Msg {
    fn from(s: &str) -> Msg {
        let mut m = Msg::new();
        let _ = fmt::Write::write_str(&mut m, s);
        m
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats a [`Msg`]: `moat_msg!("users[{}].name: want a string", i)`.
#[macro_export]
macro_rules! moat_msg {
    ($($t:tt)*) => { $crate::moat::Msg::format(format_args!($($t)*)) };
}

static mut PANICKING: bool = false;

// The panic handler. Formatting the message pulls core::fmt into the
// module (about 10 KB); a module built with `--cfg moat_terse_panic` logs
// only "panic" and stays near its own size.
#[cfg(not(moat_terse_panic))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    unsafe {
        // A panic inside the formatting of a panic message must not recurse.
        if !PANICKING {
            PANICKING = true;
            let m = Msg::format(format_args!("{}", info));
            log(Level::Error, m.as_str());
            let _ = set_message(m.as_str());
        }
    }
    core::arch::wasm32::unreachable()
}

#[cfg(moat_terse_panic)]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    log(Level::Error, "panic (module built with moat_terse_panic: no message)");
    let _ = set_message("panic");
    core::arch::wasm32::unreachable()
}

// ---------------------------------------------------------------------------
// Requests (§3).

/// Request kinds.
pub const KIND_AUTHN: u8 = 1;
pub const KIND_AUTHZ: u8 = 2;
pub const KIND_PAYLOAD: u8 = 3;

/// Field ids (§3).
pub mod field {
    pub const CLIENT_ID: usize = 0;
    pub const USERNAME: usize = 1;
    pub const PASSWORD: usize = 2;
    pub const REMOTE_ADDR: usize = 3;
    pub const LISTENER: usize = 4;
    pub const TOPIC: usize = 5;
    pub const SHARE_GROUP: usize = 6;
    pub const ATTRIBUTES: usize = 7;
    pub const CERT_CN: usize = 8;
    pub const CERT_SANS: usize = 9;
    pub const CERT_SHA256: usize = 10;
    pub const USER_PROPERTIES: usize = 11;
    pub const AUTH_METHOD: usize = 12;
    pub const AUTH_DATA: usize = 13;
    pub const AUTH_STATE: usize = 14;
    pub const CONTENT_TYPE: usize = 15;
    pub const ENVELOPE_KEY_ID: usize = 16;
    pub const MODE: usize = 17;
}

/// What an authz or payload request asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Publish,
    Subscribe,
    Deliver,
    Decrypt,
    Unknown(u8),
}

/// A request of any kind, read in place from the request buffer. Field
/// accessors return `None` for absent fields and for descriptors that do
/// not lie inside the request, so a request the SDK does not understand is
/// never read out of bounds.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    b: &'a [u8],
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    if i + 2 > b.len() {
        return 0;
    }
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    if i + 4 > b.len() {
        return 0;
    }
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl<'a> Request<'a> {
    /// Wraps a request. The SDK's exports call this; tests may too.
    pub fn new(b: &'a [u8]) -> Request<'a> {
        Request { b }
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }
    fn byte(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }
    pub fn kind(&self) -> u8 {
        self.byte(0)
    }
    pub fn action(&self) -> Action {
        match self.byte(1) {
            0 => Action::None,
            1 => Action::Publish,
            2 => Action::Subscribe,
            3 => Action::Deliver,
            4 => Action::Decrypt,
            n => Action::Unknown(n),
        }
    }
    pub fn qos(&self) -> u8 {
        self.byte(2)
    }
    pub fn retain(&self) -> bool {
        self.byte(3) & 1 != 0
    }
    pub fn superuser(&self) -> bool {
        self.byte(3) & 2 != 0
    }
    pub fn has_cert(&self) -> bool {
        self.byte(3) & 4 != 0
    }
    pub fn has_password(&self) -> bool {
        self.byte(3) & 8 != 0
    }
    /// MQTT protocol level: 3, 4 (3.1.1) or 5.
    pub fn protocol(&self) -> u8 {
        self.byte(4)
    }
    pub fn nfields(&self) -> usize {
        u16_at(self.b, 6) as usize
    }
    /// authn: enhanced-auth round; payload: payload length.
    pub fn number(&self) -> u32 {
        u32_at(self.b, 8)
    }
    /// Field `id` as bytes; `None` when absent.
    pub fn field(&self, id: usize) -> Option<&'a [u8]> {
        if id >= self.nfields() {
            return None;
        }
        let d = 16 + 8 * id;
        let off = u32_at(self.b, d) as usize;
        let len = u32_at(self.b, d + 4) as usize;
        if off == 0 {
            return None;
        }
        self.b.get(off..off.checked_add(len)?)
    }
    /// Field `id` as UTF-8; `None` when absent or not UTF-8.
    pub fn field_str(&self, id: usize) -> Option<&'a str> {
        core::str::from_utf8(self.field(id)?).ok()
    }
    fn str_or_empty(&self, id: usize) -> &'a str {
        self.field_str(id).unwrap_or("")
    }
    pub fn client_id(&self) -> &'a str {
        self.str_or_empty(field::CLIENT_ID)
    }
    pub fn username(&self) -> &'a str {
        self.str_or_empty(field::USERNAME)
    }
    pub fn remote_addr(&self) -> &'a str {
        self.str_or_empty(field::REMOTE_ADDR)
    }
    pub fn listener(&self) -> &'a str {
        self.str_or_empty(field::LISTENER)
    }
    pub fn cert_cn(&self) -> Option<&'a str> {
        self.field_str(field::CERT_CN)
    }
    pub fn cert_sans(&self) -> Strings<'a> {
        Strings::new(self.field(field::CERT_SANS).unwrap_or(&[]))
    }
    pub fn cert_sha256(&self) -> Option<&'a [u8]> {
        self.field(field::CERT_SHA256)
    }
}

/// Iterator over a pair list (§3): `(key, value)` as UTF-8; a malformed
/// list ends the iteration; pairs that are not UTF-8 are skipped.
#[derive(Clone, Copy)]
pub struct Pairs<'a> {
    b: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Pairs<'a> {
    pub fn new(b: &'a [u8]) -> Pairs<'a> {
        Pairs { b, pos: 4, left: u32_at(b, 0) }
    }
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = u32_at(self.b, self.pos) as usize;
        if self.pos + 4 > self.b.len() {
            return None;
        }
        let s = self.b.get(self.pos + 4..(self.pos + 4).checked_add(n)?)?;
        self.pos += 4 + n;
        Some(s)
    }
    /// The value of the first pair with this key; `None` also when that
    /// value is not UTF-8.
    pub fn get(self, key: &str) -> Option<&'a str> {
        core::str::from_utf8(self.get_bytes(key.as_bytes())?).ok()
    }

    /// The value of the first pair with this key, as bytes.
    pub fn get_bytes(mut self, key: &[u8]) -> Option<&'a [u8]> {
        while self.left > 0 {
            self.left -= 1;
            let k = self.chunk()?;
            let v = self.chunk()?;
            if k == key {
                return Some(v);
            }
        }
        None
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            self.left -= 1;
            let (k, v) = match (self.chunk(), self.chunk()) {
                (Some(k), Some(v)) => (k, v),
                _ => {
                    self.left = 0;
                    return None;
                }
            };
            if let (Ok(k), Ok(v)) = (core::str::from_utf8(k), core::str::from_utf8(v)) {
                return Some((k, v));
            }
        }
        None
    }
}

/// Iterator over a string list (§3), like [`Pairs`].
#[derive(Clone, Copy)]
pub struct Strings<'a> {
    p: Pairs<'a>,
}

impl<'a> Strings<'a> {
    pub fn new(b: &'a [u8]) -> Strings<'a> {
        Strings { p: Pairs::new(b) }
    }
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        while self.p.left > 0 {
            self.p.left -= 1;
            match self.p.chunk() {
                Some(s) => {
                    if let Ok(s) = core::str::from_utf8(s) {
                        return Some(s);
                    }
                }
                None => {
                    self.p.left = 0;
                    return None;
                }
            }
        }
        None
    }
}

/// An authentication request (CONNECT or an AUTH round).
#[derive(Clone, Copy)]
pub struct AuthnRequest<'a>(pub Request<'a>);

impl<'a> core::ops::Deref for AuthnRequest<'a> {
    type Target = Request<'a>;
    fn deref(&self) -> &Request<'a> {
        &self.0
    }
}

impl<'a> AuthnRequest<'a> {
    /// The password; `None` when the CONNECT had none.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.0.field(field::PASSWORD)
    }
    pub fn auth_method(&self) -> Option<&'a str> {
        self.0.field_str(field::AUTH_METHOD)
    }
    pub fn auth_data(&self) -> Option<&'a [u8]> {
        self.0.field(field::AUTH_DATA)
    }
    pub fn auth_state(&self) -> Option<&'a [u8]> {
        self.0.field(field::AUTH_STATE)
    }
    /// Enhanced-auth round: 0 for the CONNECT.
    pub fn round(&self) -> u32 {
        self.0.number()
    }
    pub fn user_properties(&self) -> Pairs<'a> {
        Pairs::new(self.0.field(field::USER_PROPERTIES).unwrap_or(&[]))
    }
    /// A `continue` verdict (another AUTH round), available only for a
    /// request with an auth method: elsewhere the host would refuse it.
    pub fn continue_auth(&self) -> Option<Authn> {
        if self.auth_method().is_some() {
            Some(Authn(4))
        } else {
            None
        }
    }
}

/// An authorization request.
#[derive(Clone, Copy)]
pub struct AuthzRequest<'a>(pub Request<'a>);

impl<'a> core::ops::Deref for AuthzRequest<'a> {
    type Target = Request<'a>;
    fn deref(&self) -> &Request<'a> {
        &self.0
    }
}

impl<'a> AuthzRequest<'a> {
    /// A topic name, or the topic filter of a subscribe.
    pub fn topic(&self) -> &'a str {
        self.0.str_or_empty(field::TOPIC)
    }
    pub fn share_group(&self) -> Option<&'a str> {
        self.0.field_str(field::SHARE_GROUP)
    }
    /// What authentication attached to the client.
    pub fn attributes(&self) -> Pairs<'a> {
        Pairs::new(self.0.field(field::ATTRIBUTES).unwrap_or(&[]))
    }
}

/// A payload request.
#[derive(Clone, Copy)]
pub struct PayloadRequest<'a>(pub Request<'a>);

impl<'a> core::ops::Deref for PayloadRequest<'a> {
    type Target = Request<'a>;
    fn deref(&self) -> &Request<'a> {
        &self.0
    }
}

impl<'a> PayloadRequest<'a> {
    pub fn topic(&self) -> &'a str {
        self.0.str_or_empty(field::TOPIC)
    }
    pub fn attributes(&self) -> Pairs<'a> {
        Pairs::new(self.0.field(field::ATTRIBUTES).unwrap_or(&[]))
    }
    pub fn user_properties(&self) -> Pairs<'a> {
        Pairs::new(self.0.field(field::USER_PROPERTIES).unwrap_or(&[]))
    }
    pub fn content_type(&self) -> Option<&'a str> {
        self.0.field_str(field::CONTENT_TYPE)
    }
    pub fn envelope_key_id(&self) -> Option<&'a str> {
        self.0.field_str(field::ENVELOPE_KEY_ID)
    }
    /// deliver: the mode the message was published under.
    pub fn mode(&self) -> Option<Mode> {
        match self.0.field(field::MODE)?.first()? {
            1 => Some(Mode::Plaintext),
            2 => Some(Mode::RequireE2E),
            3 => Some(Mode::AtRest),
            4 => Some(Mode::Reencrypt),
            _ => None,
        }
    }
    /// The payload's length in bytes.
    pub fn payload_len(&self) -> u32 {
        self.0.number()
    }
}

// ---------------------------------------------------------------------------
// Results (§4).

/// An MQTT 5 reason code for a deny: always 0x80 or above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason(u8);

impl Reason {
    pub const UNSPECIFIED: Reason = Reason(0x80);
    pub const BAD_USER_NAME_OR_PASSWORD: Reason = Reason(0x86);
    pub const NOT_AUTHORIZED: Reason = Reason(0x87);
    pub const SERVER_UNAVAILABLE: Reason = Reason(0x88);
    pub const BANNED: Reason = Reason(0x8A);
    pub const BAD_AUTH_METHOD: Reason = Reason(0x8C);
    pub const QUOTA_EXCEEDED: Reason = Reason(0x97);
    pub const PAYLOAD_FORMAT_INVALID: Reason = Reason(0x99);
    /// `None` below 0x80, which is not an error code.
    pub const fn new(code: u8) -> Option<Reason> {
        if code >= 0x80 { Some(Reason(code)) } else { None }
    }
    pub const fn code(self) -> u8 {
        self.0
    }
}

/// A payload mode (§4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plaintext = 1,
    RequireE2E = 2,
    AtRest = 3,
    Reencrypt = 4,
}

/// An authn result. Only its constructors make one, and each makes a result
/// the host accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authn(u32);

impl Authn {
    pub const fn allow() -> Authn {
        Authn(1)
    }
    /// Allow, and let the client skip authz.
    pub const fn allow_superuser() -> Authn {
        Authn(1 | 1 << 16)
    }
    /// Deny with the default reason, 0x86 bad user name or password.
    pub const fn deny() -> Authn {
        Authn(2)
    }
    pub const fn deny_with(r: Reason) -> Authn {
        Authn(2 | (r.0 as u32) << 8)
    }
    pub const fn ignore() -> Authn {
        Authn(3)
    }
    pub const fn bits(self) -> i32 {
        self.0 as i32
    }
}

/// An authz result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authz(u32);

impl Authz {
    pub const fn allow() -> Authz {
        Authz(1)
    }
    /// Deny with the default reason, 0x87 not authorized.
    pub const fn deny() -> Authz {
        Authz(2)
    }
    pub const fn deny_with(r: Reason) -> Authz {
        Authz(2 | (r.0 as u32) << 8)
    }
    pub const fn ignore() -> Authz {
        Authz(3)
    }
    pub const fn bits(self) -> i32 {
        self.0 as i32
    }
}

/// A payload result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload(u32);

impl Payload {
    /// Allow under a mode (publish). With `Mode::AtRest`, name the key with
    /// [`set_key_id`] or leave it to the ring's active key.
    pub const fn allow(m: Mode) -> Payload {
        Payload(1 | (m as u32) << 24)
    }
    /// Allow without a mode: the answer to a deliver request after
    /// [`set_key_id`].
    pub const fn allow_deliver() -> Payload {
        Payload(1)
    }
    pub const fn deny() -> Payload {
        Payload(2)
    }
    pub const fn deny_with(r: Reason) -> Payload {
        Payload(2 | (r.0 as u32) << 8)
    }
    pub const fn ignore() -> Payload {
        Payload(3)
    }
    pub const fn bits(self) -> i32 {
        self.0 as i32
    }
}

// ---------------------------------------------------------------------------
// Exports.

/// Generates the module's exports. Name the functions you implement; the
/// decisions you name are the ones to list in moat.toml's `decisions`.
///
/// ```ignore
/// moat_plugin!(configure = configure, authn = authn, authz = authz, payload = payload);
/// ```
///
/// - `configure: fn(&[u8]) -> Result<(), Msg>` gets the config JSON (parse
///   it with [`json::parse`]; keep what you need with [`arena::keep`]: the
///   buffer is reused by the next request); an `Err` refuses the config
///   with its message.
/// - `authn: fn(&AuthnRequest) -> Authn`, `authz: fn(&AuthzRequest) ->
///   Authz`, `payload: fn(&PayloadRequest) -> Payload`.
#[macro_export]
macro_rules! moat_plugin {
    ($($kind:ident = $f:path),+ $(,)?) => {
        #[no_mangle]
        pub extern "C" fn moat_abi_v1() {}
        #[no_mangle]
        pub extern "C" fn moat_buffer(size: i32) -> i32 {
            $crate::moat::__buffer(size)
        }
        $( $crate::moat_plugin!(@export $kind $f); )+
    };
    (@export configure $f:path) => {
        #[no_mangle]
        pub extern "C" fn moat_configure(len: i32) -> i32 {
            $crate::moat::__configure(len, $f)
        }
    };
    (@export authn $f:path) => {
        #[no_mangle]
        pub extern "C" fn moat_authenticate(len: i32) -> i32 {
            $crate::moat::__authn(len, $f)
        }
    };
    (@export authz $f:path) => {
        #[no_mangle]
        pub extern "C" fn moat_authorize(len: i32) -> i32 {
            $crate::moat::__authz(len, $f)
        }
    };
    (@export payload $f:path) => {
        #[no_mangle]
        pub extern "C" fn moat_payload(len: i32) -> i32 {
            $crate::moat::__payload(len, $f)
        }
    };
}

#[doc(hidden)]
pub fn __buffer(size: i32) -> i32 {
    let p = arena::buffer(size as u32 as usize);
    if p == 0 {
        // No formatting here: this path must not pull in core::fmt.
        let mut digits = [0u8; 10];
        let mut n = size as u32;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut m = [0u8; 96];
        let parts: [&[u8]; 3] = [b"moat_buffer: cannot grow the request buffer to ", &digits[i..], b" bytes (memory_limit)"];
        let mut len = 0;
        for p in parts {
            m[len..len + p.len()].copy_from_slice(p);
            len += p.len();
        }
        log(Level::Error, unsafe { core::str::from_utf8_unchecked(&m[..len]) });
        core::arch::wasm32::unreachable();
    }
    p as i32
}

// The decision functions must be generic over the request's lifetime
// (`fn(&AuthzRequest) -> Authz`): one that asks for AuthzRequest<'static>
// does not coerce, so no part of a request, which the next request
// overwrites, can be kept past the call.
#[doc(hidden)]
pub fn __authn(len: i32, f: for<'a> fn(&AuthnRequest<'a>) -> Authn) -> i32 {
    f(&AuthnRequest(Request::new(unsafe { arena::request(len as u32 as usize) }))).bits()
}

#[doc(hidden)]
pub fn __authz(len: i32, f: for<'a> fn(&AuthzRequest<'a>) -> Authz) -> i32 {
    f(&AuthzRequest(Request::new(unsafe { arena::request(len as u32 as usize) }))).bits()
}

#[doc(hidden)]
pub fn __payload(len: i32, f: for<'a> fn(&PayloadRequest<'a>) -> Payload) -> i32 {
    f(&PayloadRequest(Request::new(unsafe { arena::request(len as u32 as usize) }))).bits()
}

#[doc(hidden)]
pub fn __configure(len: i32, f: fn(&[u8]) -> Result<(), Msg>) -> i32 {
    let cfg = unsafe { arena::request(len as u32 as usize) };
    match f(cfg) {
        Ok(()) => 0,
        Err(m) => {
            let _ = set_message(m.as_str());
            1
        }
    }
}

// ---------------------------------------------------------------------------
// Topic filters.

/// A rule's topic filter with MQTT wildcards and substitution levels: a
/// level `%u` matches the client's username, `%c` its client id, and
/// `%{key}` the value of its attribute `key`. A substituted name never
/// matches when it is empty or contains `/`, `+` or `#`, so a client cannot
/// widen a rule by choosing its name. Substitutions are whole levels only
/// (`a/%u-x` is the literal level "%u-x"). Wildcards at the first level do
/// not match topics beginning with `$` [MQTT-4.7.2-1]. Matching does not
/// allocate.
#[derive(Clone, Copy)]
pub struct Filter<'f> {
    f: &'f str,
}

/// The names a [`Filter`] substitutes.
#[derive(Clone, Copy, Default)]
pub struct Names<'a> {
    pub username: &'a str,
    pub client_id: &'a str,
    pub attributes: Option<Pairs<'a>>,
}

fn name_level_bytes(s: &[u8]) -> bool {
    !s.is_empty() && !s.iter().any(|&c| c == b'/' || c == b'+' || c == b'#')
}

impl<'f> Filter<'f> {
    pub const fn new(f: &'f str) -> Filter<'f> {
        Filter { f }
    }

    /// Plain MQTT matching of a topic name (no substitution).
    pub fn matches(&self, topic: &str) -> bool {
        self.matches_with(topic, false, &Names::default())
    }

    /// Matches the request's topic with the request's client as names: for
    /// a subscribe, the filter must cover the subscription's filter (see
    /// [`Filter::matches_with`]).
    ///
    /// It compares the request's bytes as they are, without checking that
    /// they are UTF-8 (equal bytes are equal strings either way): that
    /// check would cost more than the match.
    pub fn matches_request(&self, r: &AuthzRequest) -> bool {
        let q = &r.0;
        self.matches_bytes(
            q.field(field::TOPIC).unwrap_or(b""),
            r.action() == Action::Subscribe,
            q.field(field::USERNAME).unwrap_or(b""),
            q.field(field::CLIENT_ID).unwrap_or(b""),
            Some(r.attributes()),
        )
    }

    /// Matches `topic`, a topic name, or when `is_filter` a subscription's
    /// filter, which matches only if every topic it can match is matched
    /// by this filter (`a/#` covers `a/+/b`; `a/+` does not cover `a/#`).
    pub fn matches_with(&self, topic: &str, is_filter: bool, n: &Names) -> bool {
        self.matches_bytes(topic.as_bytes(), is_filter, n.username.as_bytes(), n.client_id.as_bytes(), n.attributes)
    }

    fn matches_bytes(&self, topic: &[u8], is_filter: bool, username: &[u8], client_id: &[u8], attrs: Option<Pairs>) -> bool {
        // Byte slices and a hand-written cut: str::split and find cost
        // several times more in a metered wasm guest.
        let mut filter = Some(self.f.as_bytes());
        if let (Some(&w), Some(&b'$')) = (self.f.as_bytes().first(), topic.first()) {
            if (w == b'#' || w == b'+') && (self.f.len() == 1 || self.f.as_bytes()[1] == b'/') {
                return false;
            }
        }
        let mut rest = Some(topic);
        while let Some(fs) = filter {
            let (f, fnext) = cut(fs);
            filter = fnext;
            let level = match rest {
                Some(r) => {
                    let (l, next) = cut(r);
                    rest = next;
                    l
                }
                // "a/#" matches "a" too: "#" includes the parent level.
                None => return f == b"#" && filter.is_none(),
            };
            match f {
                b"#" => return true,
                b"+" => {
                    if is_filter && level == b"#" {
                        return false;
                    }
                }
                b"%u" => {
                    if !name_level_bytes(username) || level != username {
                        return false;
                    }
                }
                b"%c" => {
                    if !name_level_bytes(client_id) || level != client_id {
                        return false;
                    }
                }
                _ if f.len() > 3 && f[0] == b'%' && f[1] == b'{' && f[f.len() - 1] == b'}' => {
                    let key = &f[2..f.len() - 1];
                    let v = attrs.and_then(|a| a.get_bytes(key)).unwrap_or(b"");
                    if !name_level_bytes(v) || level != v {
                        return false;
                    }
                }
                _ => {
                    if level != f {
                        return false;
                    }
                }
            }
        }
        rest.is_none()
    }
}

// cut splits s at its first '/': the level before it, and what follows it
// (None when there is no '/').
fn cut(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'/' {
            return (&s[..i], Some(&s[i + 1..]));
        }
        i += 1;
    }
    (s, None)
}

// ---------------------------------------------------------------------------
// JSON.

/// A small JSON reader for the config (RFC 8259): [`parse`] validates a
/// whole document once, then [`Value`]s are read in place without
/// allocating. Strings are returned raw ([`Str`]) and decoded on demand
/// into a caller's buffer or the arena. Nesting is limited to 64 levels.
pub mod json {
    use core::fmt;

    /// A syntax error at byte `offset` of the document.
    #[derive(Clone, Copy, Debug)]
    pub struct Error {
        pub offset: usize,
        pub msg: &'static str,
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "invalid JSON at byte {}: {}", self.offset, self.msg)
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        Null,
        Bool,
        Number,
        String,
        Array,
        Object,
    }

    /// A value of a validated document: its text, starting at its first byte.
    #[derive(Clone, Copy)]
    pub struct Value<'a> {
        s: &'a [u8],
    }

    /// A JSON string's raw contents, between its quotes, escapes undecoded.
    #[derive(Clone, Copy)]
    pub struct Str<'a> {
        raw: &'a [u8],
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
    }

    fn err<T>(i: usize, msg: &'static str) -> Result<T, Error> {
        Err(Error { offset: i, msg })
    }

    impl<'a> P<'a> {
        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn lit(&mut self, w: &[u8]) -> Result<(), Error> {
            if self.s.len() >= self.i + w.len() && &self.s[self.i..self.i + w.len()] == w {
                self.i += w.len();
                Ok(())
            } else {
                err(self.i, "invalid literal")
            }
        }
        fn value(&mut self, depth: u32) -> Result<(), Error> {
            if depth > 64 {
                return err(self.i, "nested too deeply");
            }
            self.ws();
            match self.peek() {
                None => err(self.i, "unexpected end"),
                Some(b'n') => self.lit(b"null"),
                Some(b't') => self.lit(b"true"),
                Some(b'f') => self.lit(b"false"),
                Some(b'"') => self.string(),
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.value(depth + 1)?;
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return err(self.i, "want ',' or ']'"),
                        }
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.ws();
                        if self.peek() != Some(b'"') {
                            return err(self.i, "want a string key");
                        }
                        self.string()?;
                        self.ws();
                        if self.peek() != Some(b':') {
                            return err(self.i, "want ':'");
                        }
                        self.i += 1;
                        self.value(depth + 1)?;
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return err(self.i, "want ',' or '}'"),
                        }
                    }
                }
                Some(b'-') | Some(b'0'..=b'9') => self.number(),
                Some(_) => err(self.i, "unexpected character"),
            }
        }
        fn digits(&mut self) -> usize {
            let st = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            self.i - st
        }
        fn number(&mut self) -> Result<(), Error> {
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            if self.peek() == Some(b'0') {
                self.i += 1;
            } else if self.digits() == 0 {
                return err(self.i, "invalid number");
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return err(self.i, "invalid number");
                }
            }
            if matches!(self.peek(), Some(b'e') | Some(b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+') | Some(b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return err(self.i, "invalid number");
                }
            }
            Ok(())
        }
        fn string(&mut self) -> Result<(), Error> {
            let start = self.i;
            self.i += 1;
            loop {
                match self.peek() {
                    None => return err(start, "unterminated string"),
                    Some(b'"') => {
                        self.i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        self.i += 1;
                        match self.peek() {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                            Some(b'u') => {
                                self.i += 1;
                                for _ in 0..4 {
                                    if !matches!(self.peek(), Some(b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F')) {
                                        return err(self.i, "invalid \\u escape");
                                    }
                                    self.i += 1;
                                }
                            }
                            _ => return err(self.i, "invalid escape"),
                        }
                    }
                    Some(c) if c < 0x20 => return err(self.i, "control character in string"),
                    Some(_) => self.i += 1,
                }
            }
            if core::str::from_utf8(&self.s[start..self.i]).is_err() {
                return err(start, "string is not UTF-8");
            }
            Ok(())
        }
    }

    /// Validates `src` as one JSON value and returns it.
    pub fn parse(src: &[u8]) -> Result<Value<'_>, Error> {
        let mut p = P { s: src, i: 0 };
        p.value(0)?;
        p.ws();
        if p.i != src.len() {
            return err(p.i, "data after the value");
        }
        let mut q = P { s: src, i: 0 };
        q.ws();
        Ok(Value { s: &src[q.i..] })
    }

    // skip returns the length of the (valid) value at the start of s.
    fn skip(s: &[u8]) -> usize {
        let mut p = P { s, i: 0 };
        let _ = p.value(0);
        p.i
    }

    fn skip_ws(s: &[u8]) -> &[u8] {
        let mut i = 0;
        while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        &s[i..]
    }

    impl<'a> Value<'a> {
        pub fn kind(&self) -> Kind {
            match self.s.first() {
                Some(b'n') => Kind::Null,
                Some(b't') | Some(b'f') => Kind::Bool,
                Some(b'"') => Kind::String,
                Some(b'[') => Kind::Array,
                Some(b'{') => Kind::Object,
                _ => Kind::Number,
            }
        }
        /// The value's JSON text.
        pub fn text(&self) -> &'a [u8] {
            &self.s[..skip(self.s)]
        }
        pub fn as_str(&self) -> Option<Str<'a>> {
            if self.kind() != Kind::String {
                return None;
            }
            let n = skip(self.s);
            Some(Str { raw: &self.s[1..n - 1] })
        }
        pub fn as_bool(&self) -> Option<bool> {
            match self.s.first() {
                Some(b't') => Some(true),
                Some(b'f') => Some(false),
                _ => None,
            }
        }
        /// An integer number; `None` for fractions, exponents and overflow.
        pub fn as_i64(&self) -> Option<i64> {
            if self.kind() != Kind::Number {
                return None;
            }
            let t = &self.s[..skip(self.s)];
            let (neg, d) = if t[0] == b'-' { (true, &t[1..]) } else { (false, t) };
            let mut v: i64 = 0;
            for &c in d {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
            }
            Some(if neg { -v } else { v })
        }
        /// The elements of an array (none for other kinds).
        pub fn items(&self) -> Items<'a> {
            Items { s: if self.kind() == Kind::Array { &self.s[1..] } else { b"]" }, first: true }
        }
        /// The members of an object (none for other kinds).
        pub fn members(&self) -> Members<'a> {
            Members { s: if self.kind() == Kind::Object { &self.s[1..] } else { b"}" }, first: true }
        }
        /// The value of the first member called `key`.
        pub fn get(&self, key: &str) -> Option<Value<'a>> {
            self.members().find(|(k, _)| k.eq_str(key)).map(|(_, v)| v)
        }
    }

    /// Iterator over an array's elements.
    pub struct Items<'a> {
        s: &'a [u8],
        first: bool,
    }

    impl<'a> Iterator for Items<'a> {
        type Item = Value<'a>;
        fn next(&mut self) -> Option<Value<'a>> {
            let mut s = skip_ws(self.s);
            if s.first() == Some(&b']') || s.is_empty() {
                return None;
            }
            if !self.first {
                s = skip_ws(&s[1..]); // ','
            }
            self.first = false;
            let n = skip(s);
            let v = Value { s };
            self.s = &s[n..];
            Some(v)
        }
    }

    /// Iterator over an object's members.
    pub struct Members<'a> {
        s: &'a [u8],
        first: bool,
    }

    impl<'a> Iterator for Members<'a> {
        type Item = (Str<'a>, Value<'a>);
        fn next(&mut self) -> Option<Self::Item> {
            let mut s = skip_ws(self.s);
            if s.first() == Some(&b'}') || s.is_empty() {
                return None;
            }
            if !self.first {
                s = skip_ws(&s[1..]);
            }
            self.first = false;
            let kn = skip(s);
            let key = Str { raw: &s[1..kn - 1] };
            s = skip_ws(&s[kn..]);
            s = skip_ws(&s[1..]); // ':'
            let vn = skip(s);
            let v = Value { s };
            self.s = &s[vn..];
            Some((key, v))
        }
    }

    fn hex(b: &[u8]) -> u32 {
        let mut v = 0;
        for &c in b {
            v = v * 16
                + match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    _ => c - b'A' + 10,
                } as u32;
        }
        v
    }

    impl<'a> Str<'a> {
        /// The raw text between the quotes.
        pub fn raw(&self) -> &'a [u8] {
            self.raw
        }
        /// Decoded characters, one at a time. Unpaired surrogates decode as
        /// U+FFFD.
        pub fn chars(&self) -> Chars<'a> {
            Chars { s: self.raw }
        }
        /// Whether the decoded string equals `s`.
        pub fn eq_str(&self, s: &str) -> bool {
            if !self.raw.contains(&b'\\') {
                return self.raw == s.as_bytes();
            }
            let mut a = self.chars();
            let mut b = s.chars();
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return true,
                    (x, y) if x == y => continue,
                    _ => return false,
                }
            }
        }
        /// Decodes into `out`; `None` when it does not fit.
        pub fn decode<'b>(&self, out: &'b mut [u8]) -> Option<&'b str> {
            let mut n = 0;
            for c in self.chars() {
                let l = c.len_utf8();
                if n + l > out.len() {
                    return None;
                }
                c.encode_utf8(&mut out[n..n + l]);
                n += l;
            }
            Some(unsafe { core::str::from_utf8_unchecked(&out[..n]) })
        }
        /// Decodes into the arena (see [`super::arena`]).
        pub fn keep(&self) -> Option<&'static str> {
            let n: usize = self.chars().map(|c| c.len_utf8()).sum();
            let out = super::arena::alloc(n, 1)?;
            let s = self.decode(out)?;
            Some(unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(s.as_ptr(), s.len())) })
        }
    }

    /// Iterator over a [`Str`]'s decoded characters.
    pub struct Chars<'a> {
        s: &'a [u8],
    }

    impl<'a> Iterator for Chars<'a> {
        type Item = char;
        fn next(&mut self) -> Option<char> {
            let s = self.s;
            if s.is_empty() {
                return None;
            }
            if s[0] != b'\\' {
                // Validated UTF-8: decode one character.
                let l = match s[0] {
                    0x00..=0x7f => 1,
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                let c = core::str::from_utf8(&s[..l]).ok().and_then(|t| t.chars().next()).unwrap_or('\u{fffd}');
                self.s = &s[l..];
                return Some(c);
            }
            let (c, l) = match s[1] {
                b'b' => ('\u{8}', 2),
                b'f' => ('\u{c}', 2),
                b'n' => ('\n', 2),
                b'r' => ('\r', 2),
                b't' => ('\t', 2),
                b'u' => {
                    let hi = hex(&s[2..6]);
                    if (0xd800..0xdc00).contains(&hi) && s.len() >= 12 && s[6] == b'\\' && s[7] == b'u' {
                        let lo = hex(&s[8..12]);
                        if (0xdc00..0xe000).contains(&lo) {
                            let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                            (char::from_u32(c).unwrap_or('\u{fffd}'), 12)
                        } else {
                            ('\u{fffd}', 6)
                        }
                    } else {
                        (char::from_u32(hi).unwrap_or('\u{fffd}'), 6)
                    }
                }
                c => (c as char, 2),
            };
            self.s = &s[l..];
            Some(c)
        }
    }
}
