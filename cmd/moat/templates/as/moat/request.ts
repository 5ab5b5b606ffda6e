// Requests (sdk/ABI.md §3), read in place from the module's buffer.

import { Action, Field, Flag, Kind, Mode } from "./abi";
import { hostPayloadRead } from "./host";

/** A key/value pair of a pair list: attributes, user properties. */
export class Pair {
  constructor(public key: string, public value: string) {}
}

/**
 * Request is the part every request kind shares: the header and the
 * descriptor table, checked when the request arrives (every field lies
 * inside it). Strings are decoded from UTF-8 when asked for; the raw
 * bytes of a field are valid only during the call (fieldPtr, fieldLen).
 */
export class Request {
  /** Where the request starts in memory, and its length. */
  ptr: usize = 0;
  len: u32 = 0;
  kind: Kind = Kind.Authn;
  action: Action = Action.None;
  qos: u8 = 0;
  flags: u8 = 0;
  /** MQTT protocol level of the client: 3, 4 (3.1.1) or 5. */
  protocol: u8 = 0;
  nfields: u16 = 0;
  /** authn: the enhanced-authentication round; payload: the payload length. */
  number: u32 = 0;

  /** open reads the header at ptr; false when the request breaks §3 or is of another kind. */
  open(ptr: usize, len: u32, kind: Kind): bool {
    if (len < 16) return false;
    this.ptr = ptr;
    this.len = len;
    this.kind = <Kind>load<u8>(ptr);
    this.action = <Action>load<u8>(ptr, 1);
    this.qos = load<u8>(ptr, 2);
    this.flags = load<u8>(ptr, 3);
    this.protocol = load<u8>(ptr, 4);
    this.nfields = load<u16>(ptr, 6);
    this.number = load<u32>(ptr, 8);
    if (this.kind != kind || load<u32>(ptr, 12) != len || <u32>16 + <u32>8 * <u32>this.nfields > len) return false;
    for (let i: u32 = 0; i < <u32>this.nfields; i++) {
      const off = load<u32>(ptr + 16 + 8 * i);
      const n = load<u32>(ptr + 20 + 8 * i);
      if (off != 0 && (off > len || n > len - off)) return false;
    }
    return true;
  }

  /** has tells whether the request carries field id. */
  has(id: i32): bool {
    return id >= 0 && id < <i32>this.nfields && load<u32>(this.ptr + 16 + 8 * <usize>id) != 0;
  }

  /** fieldPtr and fieldLen locate field id in memory, during the call (0, 0 when absent). */
  fieldPtr(id: i32): usize {
    return this.has(id) ? this.ptr + <usize>load<u32>(this.ptr + 16 + 8 * <usize>id) : 0;
  }

  fieldLen(id: i32): u32 {
    return this.has(id) ? load<u32>(this.ptr + 20 + 8 * <usize>id) : 0;
  }

  /** string decodes field id as UTF-8; "" when absent. */
  string(id: i32): string {
    if (!this.has(id)) return "";
    return String.UTF8.decodeUnsafe(this.fieldPtr(id), this.fieldLen(id));
  }

  /** bytes copies field id; null when absent. */
  bytes(id: i32): Uint8Array | null {
    if (!this.has(id)) return null;
    const n = this.fieldLen(id);
    const b = new Uint8Array(n);
    memory.copy(b.dataStart, this.fieldPtr(id), n);
    return b;
  }

  /** fieldEquals compares field id with s without decoding it. */
  fieldEquals(id: i32, s: string): bool {
    const b = String.UTF8.encode(s);
    const n = this.fieldLen(id);
    return this.has(id) && <u32>b.byteLength == n && memory.compare(this.fieldPtr(id), changetype<usize>(b), n) == 0;
  }

  /** pairs decodes a pair list field (attributes, user properties); empty when absent. */
  pairs(id: i32): Pair[] {
    const out = new Array<Pair>();
    if (!this.has(id)) return out;
    let p = this.fieldPtr(id);
    const end = p + this.fieldLen(id);
    if (end - p < 4) return out;
    let count = load<u32>(p);
    p += 4;
    while (count > 0) {
      if (end - p < 4) break;
      const kl = load<u32>(p);
      if (end - p - 4 < kl) break;
      const k = p + 4;
      p = k + kl;
      if (end - p < 4) break;
      const vl = load<u32>(p);
      if (end - p - 4 < vl) break;
      const v = p + 4;
      p = v + vl;
      out.push(new Pair(String.UTF8.decodeUnsafe(k, kl), String.UTF8.decodeUnsafe(v, vl)));
      count--;
    }
    return out;
  }

  /** strings decodes a string list field (cert_sans); empty when absent. */
  strings(id: i32): string[] {
    const out = new Array<string>();
    if (!this.has(id)) return out;
    let p = this.fieldPtr(id);
    const end = p + this.fieldLen(id);
    if (end - p < 4) return out;
    let count = load<u32>(p);
    p += 4;
    while (count > 0) {
      if (end - p < 4) break;
      const n = load<u32>(p);
      if (end - p - 4 < n) break;
      out.push(String.UTF8.decodeUnsafe(p + 4, n));
      p += 4 + n;
      count--;
    }
    return out;
  }

  get clientId(): string { return this.string(Field.ClientId); }
  get username(): string { return this.string(Field.Username); }
  get remoteAddr(): string { return this.string(Field.RemoteAddr); }
  get listener(): string { return this.string(Field.Listener); }
  get certCN(): string { return this.string(Field.CertCN); }
  get certSANs(): string[] { return this.strings(Field.CertSANs); }
  get hasCert(): bool { return (this.flags & Flag.Cert) != 0; }
  get retain(): bool { return (this.flags & Flag.Retain) != 0; }
  get superuser(): bool { return (this.flags & Flag.Superuser) != 0; }
}

/** AuthnRequest is a CONNECT, or a round of MQTT 5 enhanced authentication. */
export class AuthnRequest extends Request {
  /** password is null when the client sent no password field. */
  get password(): Uint8Array | null { return this.bytes(Field.Password); }
  /** passwordEquals compares the password with secret in time that depends only on the password's length. */
  passwordEquals(secret: Uint8Array): bool {
    if (!this.has(Field.Password)) return false;
    const p = this.fieldPtr(Field.Password);
    const n = this.fieldLen(Field.Password);
    const sl = <u32>secret.length;
    if (sl == 0) return n == 0;
    let diff: u32 = n ^ sl;
    for (let i: u32 = 0; i < n; i++) {
      diff |= <u32>(load<u8>(p + i) ^ secret[i % sl]);
    }
    return diff == 0;
  }
  get round(): u32 { return this.number; }
  get authMethod(): string { return this.string(Field.AuthMethod); }
  get hasAuthMethod(): bool { return this.has(Field.AuthMethod); }
  get authData(): Uint8Array | null { return this.bytes(Field.AuthData); }
  get authState(): Uint8Array | null { return this.bytes(Field.AuthState); }
  get userProperties(): Pair[] { return this.pairs(Field.UserProperties); }
}

/** AuthzRequest asks whether the client may do action on topic. */
export class AuthzRequest extends Request {
  /** topic is a topic name, or a filter for Action.Subscribe (without $share/<group>/). */
  get topic(): string { return this.string(Field.Topic); }
  get shareGroup(): string { return this.string(Field.ShareGroup); }
  /** attributes are what authentication attached to the client. */
  get attributes(): Pair[] { return this.pairs(Field.Attributes); }
  /** attribute is the value of the first attribute called key, or null. It decodes only that value. */
  attribute(key: string): string | null {
    if (!this.has(Field.Attributes)) return null;
    const k = String.UTF8.encode(key);
    const kl = <usize>k.byteLength;
    let p = this.fieldPtr(Field.Attributes);
    const end = p + this.fieldLen(Field.Attributes);
    if (end - p < 4) return null;
    let count = load<u32>(p);
    p += 4;
    while (count > 0) {
      if (end - p < 4) break;
      const nl = <usize>load<u32>(p);
      if (end - p - 4 < nl) break;
      const name = p + 4;
      p = name + nl;
      if (end - p < 4) break;
      const vl = <usize>load<u32>(p);
      if (end - p - 4 < vl) break;
      const value = p + 4;
      p = value + vl;
      if (nl == kl && memory.compare(name, changetype<usize>(k), kl) == 0) {
        return String.UTF8.decodeUnsafe(value, vl);
      }
      count--;
    }
    return null;
  }
  get isSubscribe(): bool { return this.action == Action.Subscribe; }
}

/** PayloadRequest asks what happens to a message's payload. */
export class PayloadRequest extends AuthzRequest {
  get payloadLength(): u32 { return this.number; }
  get contentType(): string { return this.string(Field.ContentType); }
  get envelopeKeyId(): string { return this.string(Field.EnvelopeKeyId); }
  get userProperties(): Pair[] { return this.pairs(Field.UserProperties); }
  /** publishedMode is the mode of the message being delivered (Action.Deliver); 0 otherwise. */
  get publishedMode(): Mode {
    return this.fieldLen(Field.Mode) == 1 ? <Mode>load<u8>(this.fieldPtr(Field.Mode)) : <Mode>0;
  }
  /** readPayload copies payload bytes from offset (allow_payload only); the count, 0 at the end, -1 when not granted. */
  readPayload(offset: i32, into: Uint8Array): i32 {
    return hostPayloadRead(offset, into.dataStart, into.length);
  }
}
