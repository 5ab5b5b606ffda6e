// A module that fails on demand, for sdk/assemblyscript's tests: its authz
// decision reads the topic as an order.
//   "abort"   a failed assert: AssemblyScript's abort, with its message
//   "panic"   panic(): a trap whose message reaches the log
//   "index"   an index out of range, which AssemblyScript turns into an abort
//   "reason"  a deny with a reason below 0x80, which the SDK turns into the
//             default reason rather than a malformed result
//   other     allow
// unless the listener names a check, for the fuzz tests:
//   "json"    allow when the topic is one JSON document (JSONParser)
//   "match"   allow when match(shareGroup, topic, subscribe?, username, clientId)
// Its authn decision answers continue, which the SDK refuses for a request
// without an auth_method.
import {
  Action, AuthnRequest, AuthnResult, AuthzRequest, AuthzResult, JSONParser, match, panic, runAuthn, runAuthz,
} from "../assembly";

export { moat_abi_v1, moat_buffer } from "../assembly";

function authorize(r: AuthzRequest): AuthzResult {
  const topic = r.topic;
  const listener = r.listener;
  if (listener == "json") {
    return new JSONParser().parse(topic) !== null ? AuthzResult.allow() : AuthzResult.deny();
  }
  if (listener == "match") {
    return match(r.shareGroup, topic, r.action == Action.Subscribe, r.username, r.clientId)
      ? AuthzResult.allow() : AuthzResult.deny();
  }
  assert(topic != "abort", "the topic asked for an abort");
  if (topic == "panic") panic("the topic asked for a panic");
  if (topic == "index") {
    const a = new Array<i32>(1);
    return a[topic.length] == 0 ? AuthzResult.allow() : AuthzResult.deny();
  }
  if (topic == "reason") return AuthzResult.deny(0x10);
  return AuthzResult.allow();
}

function authenticate(r: AuthnRequest): AuthnResult {
  return AuthnResult.continueAuth();
}

export function moat_authorize(len: i32): i32 { return runAuthz(len, authorize); }
export function moat_authenticate(len: i32): i32 { return runAuthn(len, authenticate); }
