// A small JSON reader (RFC 8259) for the plugin's config: parse() builds a
// tree of JSONValue; an error leaves a message and the offset (in UTF-16
// code units of the text) in the parser.

export enum JSONType {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JSONValue {
  type: JSONType = JSONType.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  arr: JSONValue[] = [];
  /** keys in the order of the text; values in obj. */
  keys: string[] = [];
  obj: Map<string, JSONValue> = new Map<string, JSONValue>();

  get isString(): bool { return this.type == JSONType.String; }
  get isArray(): bool { return this.type == JSONType.Array; }
  get isObject(): bool { return this.type == JSONType.Object; }

  /** get is the member key of an object, or null. */
  get(key: string): JSONValue | null {
    return this.type == JSONType.Object && this.obj.has(key) ? this.obj.get(key) : null;
  }
}

/** typeName names a JSON type in messages: "a string", "an object"... */
export function typeName(t: JSONType): string {
  switch (t) {
    case JSONType.Null: return "null";
    case JSONType.Bool: return "a boolean";
    case JSONType.Number: return "a number";
    case JSONType.String: return "a string";
    case JSONType.Array: return "an array";
  }
  return "an object";
}

const maxDepth = 64;

export class JSONParser {
  error: string | null = null;
  offset: i32 = 0;
  private s: string = "";
  private p: i32 = 0;

  /** parse reads one JSON document; null on an error (see error and offset). */
  parse(text: string): JSONValue | null {
    this.s = text;
    this.p = 0;
    this.error = null;
    const v = this.value(0);
    if (v === null) return null;
    this.ws();
    if (this.p != this.s.length) return this.fail("text after the value");
    return v;
  }

  private fail(msg: string): JSONValue | null {
    if (this.error === null) {
      this.error = msg;
      this.offset = this.p;
    }
    return null;
  }

  private ws(): void {
    while (this.p < this.s.length) {
      const c = this.s.charCodeAt(this.p);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.p++;
    }
  }

  private peek(): i32 {
    this.ws();
    return this.p < this.s.length ? this.s.charCodeAt(this.p) : -1;
  }

  private value(depth: i32): JSONValue | null {
    if (depth > maxDepth) return this.fail("nested too deeply");
    const c = this.peek();
    const v = new JSONValue();
    if (c == 0x7b) { // {
      v.type = JSONType.Object;
      this.p++;
      if (this.peek() == 0x7d) { this.p++; return v; }
      for (;;) {
        if (this.peek() != 0x22) return this.fail("expected a key");
        const k = this.string();
        if (k === null) return null;
        if (this.peek() != 0x3a) return this.fail("expected ':'");
        this.p++;
        const m = this.value(depth + 1);
        if (m === null) return null;
        // A repeated key keeps its first place and its last value, as
        // encoding/json, which checked the config, reads it.
        if (!v.obj.has(k)) v.keys.push(k);
        v.obj.set(k, m);
        const d = this.peek();
        this.p++;
        if (d == 0x7d) return v;
        if (d != 0x2c) { this.p--; return this.fail("expected ',' or '}'"); }
      }
    }
    if (c == 0x5b) { // [
      v.type = JSONType.Array;
      this.p++;
      if (this.peek() == 0x5d) { this.p++; return v; }
      for (;;) {
        const e = this.value(depth + 1);
        if (e === null) return null;
        v.arr.push(e);
        const d = this.peek();
        this.p++;
        if (d == 0x5d) return v;
        if (d != 0x2c) { this.p--; return this.fail("expected ',' or ']'"); }
      }
    }
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      v.type = JSONType.String;
      v.str = s;
      return v;
    }
    if (this.word("true")) { v.type = JSONType.Bool; v.bool = true; return v; }
    if (this.word("false")) { v.type = JSONType.Bool; return v; }
    if (this.word("null")) return v;
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number(v);
    return this.fail(c < 0 ? "unexpected end" : "invalid value");
  }

  private word(w: string): bool {
    if (this.s.substr(this.p, w.length) != w) return false;
    this.p += w.length;
    return true;
  }

  private digits(): bool {
    const start = this.p;
    while (this.p < this.s.length) {
      const c = this.s.charCodeAt(this.p);
      if (c < 0x30 || c > 0x39) break;
      this.p++;
    }
    return this.p > start;
  }

  private number(v: JSONValue): JSONValue | null {
    const start = this.p;
    if (this.s.charCodeAt(this.p) == 0x2d) this.p++;
    if (this.p < this.s.length && this.s.charCodeAt(this.p) == 0x30) {
      this.p++;
    } else if (!this.digits()) {
      return this.fail("invalid number");
    }
    if (this.p < this.s.length && this.s.charCodeAt(this.p) == 0x2e) {
      this.p++;
      if (!this.digits()) return this.fail("invalid number");
    }
    if (this.p < this.s.length && (this.s.charCodeAt(this.p) | 0x20) == 0x65) {
      this.p++;
      if (this.p < this.s.length && (this.s.charCodeAt(this.p) == 0x2b || this.s.charCodeAt(this.p) == 0x2d)) this.p++;
      if (!this.digits()) return this.fail("invalid number");
    }
    v.type = JSONType.Number;
    v.num = parseFloat(this.s.substring(start, this.p));
    return v;
  }

  private hex4(): i32 {
    if (this.p + 4 > this.s.length) return -1;
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.s.charCodeAt(this.p + i);
      let h = -1;
      if (c >= 0x30 && c <= 0x39) h = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) h = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) h = c - 0x41 + 10;
      if (h < 0) return -1;
      n = n << 4 | h;
    }
    this.p += 4;
    return n;
  }

  /** string reads a string at the cursor (a '"'), or fails with null. */
  private string(): string | null {
    this.p++;
    let out = "";
    let run = this.p; // start of the text not yet copied to out
    for (;;) {
      if (this.p >= this.s.length) {
        this.fail("unterminated string");
        return null;
      }
      const c = this.s.charCodeAt(this.p);
      if (c == 0x22) {
        out += this.s.substring(run, this.p);
        this.p++;
        return out;
      }
      if (c < 0x20) {
        this.fail("control character in a string");
        return null;
      }
      if (c != 0x5c) {
        this.p++;
        continue;
      }
      out += this.s.substring(run, this.p);
      this.p++;
      const e = this.p < this.s.length ? this.s.charCodeAt(this.p) : -1;
      this.p++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) {
          this.fail("bad \\u escape");
          return null;
        }
        out += String.fromCharCode(u);
      } else {
        this.p--;
        this.fail("bad escape");
        return null;
      }
      run = this.p;
    }
    return null; // not reached
  }
}
