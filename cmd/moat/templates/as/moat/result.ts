// Results (sdk/ABI.md §4): one class per decision, built only by its
// static methods, so that a module cannot return a malformed result: a
// deny reason below 0x80 becomes the default reason, and a payload mode
// outside Mode a deny.

import { Mode, Verdict } from "./abi";

function denyBits(reason: u8): u32 {
  return <u32>Verdict.Deny | (reason >= 0x80 ? <u32>reason << 8 : 0);
}

export class AuthnResult {
  private constructor(readonly bits: u32) {}
  get verdict(): Verdict { return <Verdict>(this.bits & 0xff); }
  static allow(): AuthnResult { return new AuthnResult(Verdict.Allow); }
  /** allowSuperuser admits a client that skips authz. */
  static allowSuperuser(): AuthnResult { return new AuthnResult(<u32>Verdict.Allow | 1 << 16); }
  static deny(reason: u8 = 0): AuthnResult { return new AuthnResult(denyBits(reason)); }
  static ignore(): AuthnResult { return new AuthnResult(Verdict.Ignore); }
  /** continueAuth asks for another round of MQTT 5 enhanced authentication (only with an auth_method). */
  static continueAuth(): AuthnResult { return new AuthnResult(Verdict.Continue); }
}

export class AuthzResult {
  private constructor(readonly bits: u32) {}
  get verdict(): Verdict { return <Verdict>(this.bits & 0xff); }
  static allow(): AuthzResult { return new AuthzResult(Verdict.Allow); }
  static deny(reason: u8 = 0): AuthzResult { return new AuthzResult(denyBits(reason)); }
  static ignore(): AuthzResult { return new AuthzResult(Verdict.Ignore); }
}

export class PayloadResult {
  private constructor(readonly bits: u32) {}
  get verdict(): Verdict { return <Verdict>(this.bits & 0xff); }
  static allow(mode: Mode): PayloadResult {
    if (<u32>mode < <u32>Mode.Plaintext || <u32>mode > <u32>Mode.Reencrypt) return new PayloadResult(Verdict.Deny);
    return new PayloadResult(<u32>Verdict.Allow | <u32>mode << 24);
  }
  static deny(reason: u8 = 0): PayloadResult { return new PayloadResult(denyBits(reason)); }
  static ignore(): PayloadResult { return new PayloadResult(Verdict.Ignore); }
}
