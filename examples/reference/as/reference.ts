// The reference policy in AssemblyScript, the same in every SDK's language:
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
// Build (see sdk/assemblyscript/README.md): make bin/examples/reference-as.wasm

import {
  Action, AuthnRequest, AuthnResult, AuthzRequest, AuthzResult, JSONParser, Mode,
  PayloadRequest, PayloadResult, Status, addAttribute, isLevelName, match, runAuthn, runAuthz,
  runConfigure, runPayload, setKeyId, setMessage, typeName,
} from "../../../sdk/assemblyscript/assembly";

export { moat_abi_v1, moat_buffer } from "../../../sdk/assemblyscript/assembly";

class User {
  constructor(public password: Uint8Array, public tenant: string) {}
}

// The users of this instance: configure runs once per instance.
let users = new Map<string, User>();

function configError(path: string, what: string): string {
  return "reference: config: " + path + ": " + what;
}

// configure reads the users; an unknown key, or a missing name, password
// or tenant, refuses the config. Of two users of one name, the first wins.
function configure(json: string): string | null {
  const p = new JSONParser();
  const root = p.parse(json);
  if (root === null) return configError("the config", p.error! + " at offset " + p.offset.toString());
  if (!root.isObject) return configError("the config", "expected an object, got " + typeName(root.type));
  const next = new Map<string, User>();
  for (let i = 0; i < root.keys.length; i++) {
    if (root.keys[i] != "users") return "reference: config: unknown key \"" + root.keys[i] + "\"";
  }
  const list = root.get("users");
  if (list !== null) {
    if (!list.isArray) return configError("users", "expected an array, got " + typeName(list.type));
    for (let i = 0; i < list.arr.length; i++) {
      const at = "users[" + i.toString() + "]";
      const u = list.arr[i];
      if (!u.isObject) return configError(at, "expected an object, got " + typeName(u.type));
      for (let k = 0; k < u.keys.length; k++) {
        const key = u.keys[k];
        if (key != "name" && key != "password" && key != "tenant") return configError(at, "unknown key \"" + key + "\"");
        const v = u.get(key)!;
        if (!v.isString) return configError(at + "." + key, "expected a string, got " + typeName(v.type));
      }
      const name = u.get("name");
      const password = u.get("password");
      const tenant = u.get("tenant");
      if (name === null || name.str.length == 0) return configError(at + ".name", "missing or empty");
      if (password === null) return configError(at + ".password", "missing");
      if (tenant === null) return configError(at + ".tenant", "missing");
      if (next.has(name.str)) continue; // the first user of a name wins
      next.set(name.str, new User(Uint8Array.wrap(String.UTF8.encode(password.str)), tenant.str));
    }
  }
  users = next;
  return null;
}

function authenticate(r: AuthnRequest): AuthnResult {
  const name = r.username;
  if (!users.has(name)) return AuthnResult.ignore();
  const u = users.get(name);
  if (!r.passwordEquals(u.password)) {
    setMessage("bad user name or password");
    return AuthnResult.deny();
  }
  if (addAttribute("tenant", u.tenant) != Status.OK) {
    setMessage("reference: the tenant attribute is too large");
    return AuthnResult.deny();
  }
  return AuthnResult.allow();
}

function authorize(r: AuthzRequest): AuthzResult {
  const sub = r.action == Action.Subscribe;
  const topic = r.topic;
  if (match("devices/%u/#", topic, sub, r.username, r.clientId)) return AuthzResult.allow();
  const tenant = r.attribute("tenant");
  if (tenant !== null && isLevelName(tenant) && match("tenants/" + tenant + "/#", topic, sub)) {
    return AuthzResult.allow();
  }
  return AuthzResult.deny();
}

function payload(r: PayloadRequest): PayloadResult {
  if (match("secure/#", r.topic, false)) {
    setKeyId("default");
    return PayloadResult.allow(Mode.AtRest);
  }
  return PayloadResult.allow(Mode.Plaintext);
}

export function moat_configure(len: i32): i32 { return runConfigure(len, configure); }
export function moat_authenticate(len: i32): i32 { return runAuthn(len, authenticate); }
export function moat_authorize(len: i32): i32 { return runAuthz(len, authorize); }
export function moat_payload(len: i32): i32 { return runPayload(len, payload); }
