// The host functions (sdk/ABI.md §6), raw and typed. Pointers are into
// this module's memory; the host traps a pointer/length outside it.

import { Level } from "./abi";

@external("moat", "log")
export declare function hostLog(level: i32, ptr: usize, len: i32): void;
@external("moat", "time_now")
export declare function hostTimeNow(): i64;
@external("moat", "time_monotonic")
export declare function hostTimeMonotonic(): i64;
@external("moat", "random")
export declare function hostRandom(ptr: usize, len: i32): i32;
@external("moat", "set_message")
export declare function hostSetMessage(ptr: usize, len: i32): i32;
@external("moat", "add_attribute")
export declare function hostAddAttribute(kptr: usize, klen: i32, vptr: usize, vlen: i32): i32;
@external("moat", "set_expiry")
export declare function hostSetExpiry(unixNs: i64): i32;
@external("moat", "set_auth_data")
export declare function hostSetAuthData(ptr: usize, len: i32): i32;
@external("moat", "set_auth_state")
export declare function hostSetAuthState(ptr: usize, len: i32): i32;
@external("moat", "set_key_id")
export declare function hostSetKeyId(ptr: usize, len: i32): i32;
@external("moat", "payload_read")
export declare function hostPayloadRead(offset: i32, ptr: usize, len: i32): i32;

/** utf8 encodes s as UTF-8, in a buffer the garbage collector owns. */
export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

/** log writes a line to the broker's log, as the plugin's. */
export function log(level: Level, msg: string): void {
  const b = utf8(msg);
  hostLog(<i32>level, changetype<usize>(b), b.byteLength);
}

/** now is the wall clock in Unix nanoseconds. */
export function now(): i64 {
  return hostTimeNow();
}

/** monotonic is a monotonic clock in nanoseconds from an arbitrary origin. */
export function monotonic(): i64 {
  return hostTimeMonotonic();
}

/** random fills b with cryptographically secure random bytes. */
export function random(b: Uint8Array): void {
  let off = 0;
  while (off < b.length) {
    const n = min(b.length - off, 65536);
    hostRandom(b.dataStart + <usize>off, n);
    off += n;
  }
}

/**
 * setMessage sets the decision's human-readable reason (and, in
 * configure, the refusal shown to the operator). The setters return
 * Status.OK, Status.NotAvailable outside their decision, or
 * Status.TooLarge beyond their limit.
 */
export function setMessage(msg: string): i32 {
  const b = utf8(msg);
  return hostSetMessage(changetype<usize>(b), b.byteLength);
}

/** addAttribute attaches key=value to the client (authn allow only). */
export function addAttribute(key: string, value: string): i32 {
  const k = utf8(key);
  const v = utf8(value);
  return hostAddAttribute(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

/** setExpiry disconnects the client at unixNs (authn). */
export function setExpiry(unixNs: i64): i32 {
  return hostSetExpiry(unixNs);
}

export function setAuthData(b: Uint8Array): i32 {
  return hostSetAuthData(b.dataStart, b.length);
}

export function setAuthState(b: Uint8Array): i32 {
  return hostSetAuthState(b.dataStart, b.length);
}

/** setKeyId names the key a payload is encrypted under (payload). */
export function setKeyId(id: string): i32 {
  const b = utf8(id);
  return hostSetKeyId(changetype<usize>(b), b.byteLength);
}

/**
 * panic ends the call as a plugin error carrying msg: it logs
 * "panic: msg" at error level, sets msg as the decision's message and
 * traps. AssemblyScript's abort (a failed assert, an out-of-bounds
 * index, running out of memory) does the same, through moatAbort.
 */
export function panic(msg: string): void {
  log(Level.Error, "panic: " + msg);
  setMessage(msg);
  unreachable();
}

/**
 * moatAbort replaces AssemblyScript's env.abort import (moat refuses
 * imports from "env"): asc is run with
 * --use abort=sdk/assemblyscript/assembly/host/moatAbort, so that an abort
 * reaches the broker's log with its message and place.
 */
let aborting = false;

export function moatAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  // An abort while reporting one (the allocator's own, when memory runs
  // out) traps at once, without the message.
  if (aborting) unreachable();
  aborting = true;
  let s = "abort: " + (message !== null ? message : "(no message)");
  if (fileName !== null) {
    s += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  }
  const b = String.UTF8.encode(s);
  hostLog(<i32>Level.Error, changetype<usize>(b), b.byteLength);
  hostSetMessage(changetype<usize>(b), min(b.byteLength, 1024));
  unreachable();
}
