// Constants of moat ABI v1 (sdk/ABI.md §3, §4, §6).

/** What a request asks: header byte 0. */
export enum Kind {
  Authn = 1,
  Authz = 2,
  Payload = 3,
}

/** What a client does: authz and payload requests; 0 in authn requests. */
export enum Action {
  None = 0,
  Publish = 1,
  Subscribe = 2,
  Deliver = 3,
  Decrypt = 4,
}

/** A decision's verdict: result bits 0-7. */
export enum Verdict {
  Allow = 1,
  Deny = 2,
  Ignore = 3,
  Continue = 4,
}

/** What the host does with a payload: result bits 24-31 of a payload allow. */
export enum Mode {
  Plaintext = 1,
  RequireE2E = 2,
  AtRest = 3,
  Reencrypt = 4,
}

/** Log levels of log(). */
export enum Level {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/** Request header flags (byte 3). */
export namespace Flag {
  export const Retain: u8 = 1;
  export const Superuser: u8 = 2;
  export const Cert: u8 = 4;
  export const Password: u8 = 8;
}

/** Field ids of the request's descriptor table. */
export namespace Field {
  export const ClientId = 0;
  export const Username = 1;
  export const Password = 2;
  export const RemoteAddr = 3;
  export const Listener = 4;
  export const Topic = 5;
  export const ShareGroup = 6;
  export const Attributes = 7;
  export const CertCN = 8;
  export const CertSANs = 9;
  export const CertSHA256 = 10;
  export const UserProperties = 11;
  export const AuthMethod = 12;
  export const AuthData = 13;
  export const AuthState = 14;
  export const ContentType = 15;
  export const EnvelopeKeyId = 16;
  export const Mode = 17;
}

/** MQTT 5 reason codes a deny may carry. 0 is the default: 0x86 for authn, 0x87 otherwise. */
export namespace Reason {
  export const Default: u8 = 0;
  export const Unspecified: u8 = 0x80;
  export const BadUsernameOrPassword: u8 = 0x86;
  export const NotAuthorized: u8 = 0x87;
  export const ServerBusy: u8 = 0x89;
  export const Banned: u8 = 0x8a;
  export const BadAuthMethod: u8 = 0x8c;
  export const TopicNameInvalid: u8 = 0x90;
  export const QuotaExceeded: u8 = 0x97;
  export const PayloadFormatInvalid: u8 = 0x99;
}

/** Host function status codes. */
export namespace Status {
  export const OK = 0;
  export const NotAvailable = -1;
  export const TooLarge = -2;
}
