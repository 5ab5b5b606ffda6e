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
  if ((filter == "#" || filter == "+" || filter.startsWith("#/") || filter.startsWith("+/")) && topic.startsWith("$")) {
    return false;
  }
  let fi = 0;
  let ti = 0;
  let done = false; // the topic has no level left
  for (;;) {
    let fe = filter.indexOf("/", fi);
    const last = fe < 0;
    if (last) fe = filter.length;
    const f = filter.substring(fi, fe);
    if (done) return last && f == "#";
    let te = topic.indexOf("/", ti);
    if (te < 0) {
      te = topic.length;
      done = true;
    }
    const level = topic.substring(ti, te);
    ti = te + 1;
    if (f == "#") return true;
    if (f == "+") {
      if (isFilter && level == "#") return false;
    } else if (f == "%u") {
      if (!isLevelName(username) || level != username) return false;
    } else if (f == "%c") {
      if (!isLevelName(clientId) || level != clientId) return false;
    } else if (level != f) {
      return false;
    }
    if (last) return done;
    fi = fe + 1;
  }
  return false; // not reached
}
