// Topic filters with %u and %c.

/** isLevelName tells whether name can stand for one topic level: not empty, no '/', '+' or '#'. */
export function isLevelName(name: string): bool {
  if (name.length == 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c == 0x2f || c == 0x2b || c == 0x23) return false;
  }
  return true;
}

/**
 * match tells whether the rule filter matches topic: a topic name
 * (publish, deliver, payload), or, when isFilter, a subscription's filter,
 * which the rule matches only if it matches every topic the subscription
 * can ("a/#" covers "a/+/b"; "a/+" does not cover "a/#").
 *
 * A rule level that is exactly "%u" or "%c" matches the level equal to the
 * username or client id; never when that name is empty or contains '/',
 * '+' or '#', so a client cannot widen a rule by its choice of name.
 * Wildcards at the first level do not match topics that start with '$'
 * [MQTT-4.7.2-1]. "a/#" matches "a" too. The same semantics as moat.h's
 * moat_match and the other SDKs.
 */
export function match(filter: string, topic: string, isFilter: bool, username: string = "", clientId: string = ""): bool {
  // Levels are compared in place: a decision allocates nothing here.
  const fl = filter.length;
  const tl = topic.length;
  if (fl > 0 && tl > 0 && topic.charCodeAt(0) == 0x24) { // '$'
    const c = filter.charCodeAt(0);
    if ((c == 0x23 || c == 0x2b) && (fl == 1 || filter.charCodeAt(1) == 0x2f)) return false;
  }
  let fi = 0;
  let ti = 0;
  let done = false; // the topic has no level left
  for (;;) {
    // The rule level [fs, fi), and whether it is the last.
    const fs = fi;
    while (fi < fl && filter.charCodeAt(fi) != 0x2f) fi++;
    const last = fi >= fl;
    const n = fi - fs;
    const f0 = n > 0 ? filter.charCodeAt(fs) : 0;
    if (done) return last && n == 1 && f0 == 0x23;
    const ts = ti;
    while (ti < tl && topic.charCodeAt(ti) != 0x2f) ti++;
    const tn = ti - ts;
    if (ti >= tl) done = true;
    else ti++;
    if (n == 1 && f0 == 0x23) return true; // '#'
    if (n == 1 && f0 == 0x2b) { // '+'
      if (isFilter && tn == 1 && topic.charCodeAt(ts) == 0x23) return false;
    } else if (n == 2 && f0 == 0x25 && filter.charCodeAt(fs + 1) == 0x75) { // %u
      if (!isLevelName(username) || !same(topic, ts, tn, username, 0, username.length)) return false;
    } else if (n == 2 && f0 == 0x25 && filter.charCodeAt(fs + 1) == 0x63) { // %c
      if (!isLevelName(clientId) || !same(topic, ts, tn, clientId, 0, clientId.length)) return false;
    } else if (!same(topic, ts, tn, filter, fs, n)) {
      return false;
    }
    if (last) return done;
    fi++; // past the '/'
  }
  return false; // not reached
}

// same compares a[as, as+an) with b[bs, bs+bn).
function same(a: string, as: i32, an: i32, b: string, bs: i32, bn: i32): bool {
  if (an != bn) return false;
  for (let i = 0; i < an; i++) {
    if (a.charCodeAt(as + i) != b.charCodeAt(bs + i)) return false;
  }
  return true;
}
