// The exports every module has, and the runners its decision exports call.

import { Field, Kind, Level, Verdict } from "./abi";
import { hostSetMessage, log, panic } from "./host";
import { AuthnRequest, AuthzRequest, PayloadRequest } from "./request";
import { AuthnResult, AuthzResult, PayloadResult } from "./result";

/** The declaration: its presence says the module speaks moat ABI v1. */
export function moat_abi_v1(): void {}

// The buffer starts as 4 KiB of static memory; a larger one is taken
// with memory.grow, outside the heap: AssemblyScript's allocator traps
// with no message when memory runs out, and a failed memory.grow can be
// reported. The allocator adds only pages it grew itself, so it never
// hands these out. A replaced buffer is not reused; growth doubles, so
// what is left behind is at most the size of the buffer in use.
let buffer: usize = memory.data(4096, 16);
let bufferSize: u32 = 4096;

/**
 * moat_buffer returns a buffer of at least size bytes. The host asks only
 * when it needs more room than it was given, so the old content is never
 * needed. When memory cannot grow (the plugin's memory_limit) it logs
 * "moat_buffer: out of memory for N bytes" and traps: a plugin error,
 * never a pointer the host would write over.
 */
export function moat_buffer(size: i32): usize {
  if (size < 0) panic("moat_buffer: negative size");
  if (<u32>size <= bufferSize) return buffer;
  // The allocator must own its memory before this takes pages: its first
  // allocation claims every page there is.
  heap.free(heap.alloc(16));
  let pages = (<u64>size + 0xffff) >> 16;
  const doubled = (<u64>bufferSize * 2 + 0xffff) >> 16;
  if (doubled > pages) pages = doubled;
  let before = memory.grow(<i32>pages);
  if (before < 0) {
    pages = (<u64>size + 0xffff) >> 16;
    before = memory.grow(<i32>pages);
  }
  if (before < 0) {
    panic("moat_buffer: out of memory for " + size.toString() + " bytes (see the plugin's memory_limit)");
  }
  buffer = <usize>before << 16;
  bufferSize = <u32>(pages << 16);
  return buffer;
}

/** fail reports a request or result the module cannot serve, and returns
 * 0, a malformed result: the host counts a plugin error. */
function fail(what: string): i32 {
  log(Level.Error, what);
  const b = String.UTF8.encode(what);
  hostSetMessage(changetype<usize>(b), b.byteLength);
  return 0;
}

// With --runtime minimal (the SDK's asconfig.json) the collector runs
// only when called: here, after a decision, when nothing on the stack
// refers to the heap (collecting inside a handler would free what its
// locals hold); every 64 decisions, and after any that made memory grow,
// so that garbage never holds more than the heap's high-water mark. The
// incremental runtime collects on its own, at about twice the cost per
// decision (BenchmarkReference).
let sinceCollect = 0;
let pagesAtCollect: i32 = 0;

function afterDecision(): void {
  if (ASC_RUNTIME == 1 && (++sinceCollect >= 64 || memory.size() != pagesAtCollect)) {
    sinceCollect = 0;
    __collect();
    pagesAtCollect = memory.size();
  }
}

const authnRequest = new AuthnRequest();
const authzRequest = new AuthzRequest();
const payloadRequest = new PayloadRequest();

/**
 * runAuthn runs an authentication handler; a module's export is
 *
 *     export function moat_authenticate(len: i32): i32 { return runAuthn(len, authenticate); }
 *
 * and likewise runAuthz (moat_authorize), runPayload (moat_payload) and
 * runConfigure (moat_configure). The request object is reused by the next
 * call: keep what it returns (strings, arrays), not the request.
 */
export function runAuthn(len: i32, fn: (r: AuthnRequest) => AuthnResult): i32 {
  const r = authnRequest;
  if (len < 0 || <u32>len > bufferSize || !r.open(buffer, <u32>len, Kind.Authn)) {
    return fail("moat_authenticate: the request breaks ABI v1 §3");
  }
  const bits = fn(r).bits;
  afterDecision();
  if ((bits & 0xff) == <u32>Verdict.Continue && !r.has(Field.AuthMethod)) {
    return fail("moat_authenticate: continue for a request without an auth_method");
  }
  return <i32>bits;
}

export function runAuthz(len: i32, fn: (r: AuthzRequest) => AuthzResult): i32 {
  const r = authzRequest;
  if (len < 0 || <u32>len > bufferSize || !r.open(buffer, <u32>len, Kind.Authz)) {
    return fail("moat_authorize: the request breaks ABI v1 §3");
  }
  const bits = fn(r).bits;
  afterDecision();
  return <i32>bits;
}

export function runPayload(len: i32, fn: (r: PayloadRequest) => PayloadResult): i32 {
  const r = payloadRequest;
  if (len < 0 || <u32>len > bufferSize || !r.open(buffer, <u32>len, Kind.Payload)) {
    return fail("moat_payload: the request breaks ABI v1 §3");
  }
  const bits = fn(r).bits;
  afterDecision();
  return <i32>bits;
}

/**
 * runConfigure hands the config (JSON text, decoded from UTF-8) to fn,
 * which returns null to accept it or the reason to refuse it, shown to the
 * operator: `wasm: plugin "x": config refused (...): <reason>`.
 */
export function runConfigure(len: i32, fn: (json: string) => string | null): i32 {
  if (len < 0 || <u32>len > bufferSize) return fail("moat_configure: the config is larger than the buffer");
  const refusal = fn(String.UTF8.decodeUnsafe(buffer, <usize>len));
  if (refusal === null) {
    if (ASC_RUNTIME == 1) __collect(); // the config's tree is garbage now
    return 0;
  }
  const b = String.UTF8.encode(refusal);
  hostSetMessage(changetype<usize>(b), min(b.byteLength, 1024));
  return 1;
}
