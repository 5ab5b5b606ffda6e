// Package aclfile parses Mosquitto acl_file files, plus a few moat
// extensions, and answers authorization questions against them.
//
// It is pure Go with no I/O of its own, so that it builds natively and for
// GOOS=wasip1 GOARCH=wasm: the acl plugin (plugins/acl) reads the file
// through its capability and hands the bytes to [Parse]. A parsed [ACL] is
// immutable and safe for concurrent use; [ACL.Check] allocates nothing and
// never scans the rule list: rules are indexed per section in a trie keyed by
// topic level.
//
// # Mosquitto syntax
//
// Every file that Mosquitto 2.0 loads means the same here, line for line.
// The reference is mosquitto 2.0.11, src/security_default.c (aclfile__parse
// and mosquitto_acl_check_default):
//
//	# a comment: '#' as the first character of the line
//	topic [read|write|readwrite|deny] <topic>
//	user <username>
//	pattern [read|write|readwrite|deny] <topic>
//
// In detail:
//
//   - Lines are split on spaces (not tabs). Trailing white space is ignored;
//     the topic is the rest of the line after the access word, trimmed, so
//     it may contain spaces. The access word is optional and defaults to
//     readwrite; a topic with a space therefore needs one ("topic a b" is
//     an unknown access "a").
//   - topic lines before the first user line apply to anonymous clients (no
//     username in CONNECT); after "user <name>" (the rest of the line,
//     trimmed) they apply to that user. A user named twice gets both
//     blocks. A client whose username has no section gets pattern rules only.
//   - pattern lines apply to every client, wherever they appear. %c is the
//     client id and %u the username; they must be a whole topic level
//     ("devices/%c/#"), as mosquitto.conf(5) requires. A pattern with %u never
//     matches an anonymous client.
//   - read grants delivery (Mosquitto's MOSQ_ACL_READ), write grants publish,
//     readwrite both, deny refuses both. The topic is a filter: + and # work
//     as in subscriptions, and a filter that starts with a wildcard never
//     matches a topic that starts with '$' [MQTT-4.7.2-1].
//   - Evaluation, as in Mosquitto: first the client's section (anonymous or
//     its user's), then the patterns. In each, a matching deny refuses;
//     otherwise a matching grant for the action allows; otherwise the next
//     phase runs. A grant in the client's section therefore wins over a
//     pattern deny. If nothing matched the result is NoMatch, which the
//     plugin turns into a deny as Mosquitto does.
//
// Where this package is stricter than Mosquitto 2.0.11, on purpose:
//
//   - %c or %u inside a level ("foo%c") is a load error. Mosquitto 2.0
//     substitutes it anyway, 2.1 treats it literally, and the manual says
//     it must be the whole level; a file that depends on either reading
//     is refused rather than guessed at.
//   - A substituted value that is empty or contains '+', '#' or '/' makes
//     that pattern not match (CVE-2017-7650: a client id "+" or "a/b" must
//     not reach other clients' topics). Mosquitto 2.0 also refuses, after
//     the section phase, every pattern decision for a client whose username
//     or client id contains '+' or '#'; that is kept. It does not check
//     '/', so a client id "a/b" there matches "pattern clients/%c/#" for the
//     topic "clients/a/b/x", which belongs to client "a"; here it does not.
//   - A substituted first level never matches a topic that starts with '$'
//     (2.1 compares the '%' with the '$' before substituting; 2.0 lets a
//     client id "$x" match "pattern read %c/#" on "$x/y").
//   - A file without any rule denies everything (CVE-2018-12550), and a
//     line with a NUL byte is an error instead of being cut short.
//   - A '#' comment may be indented and lines may start with tabs; Mosquitto
//     rejects both as invalid lines, so no working file changes meaning.
//
// # SUBSCRIBE
//
// Mosquitto's acl_file never restricts SUBSCRIBE: mosquitto_acl_check_default
// returns success for MOSQ_ACL_SUBSCRIBE and MOSQ_ACL_UNSUBSCRIBE
// ("FIXME - implement ACL subscription strings", unchanged from 1.5 to the
// 2.1 development branch; 1.4 disabled its check because topic matching
// "can't cope with checking subscriptions that have wildcards against ACLs
// that have wildcards"). Instead, every message is checked with
// MOSQ_ACL_READ against its concrete topic when it is delivered (subs.c
// subs__send) and for each retained message at subscribe time (retain.c).
// A client subscribed to "#" receives exactly what its read rules allow.
//
// So by default a subscribe is allowed, and deliver does the work. A file
// that contains the line
//
//	@subscribe check
//
// checks subscriptions too: read (and readwrite) then also grants
// subscribe, deny also refuses it, and a subscribe with no matching grant is
// NoMatch. A subscription filter is allowed when the rule's filter covers
// it, that is matches every topic the subscription could match. This is
// what Mosquitto's dynamic-security plugin does (sub_matches_acl in
// libcommon/topic_common.c on the 2.1 branch): "a/#" covers "a", "a/+" and
// "a/b/#"; "a/+" covers "a/b" and "a/+" but not "a/#"; "+" never covers "#".
// A deny refuses a subscription it covers; a subscription that only
// overlaps a deny ("a/#" against "deny a/secret") is allowed, and the
// denied messages are filtered at delivery.
//
// # Extensions
//
// Extension lines start with '@', which Mosquitto rejects as an invalid
// line, so they never occur in a Mosquitto file. Tokens are separated by
// spaces or tabs.
//
//	@topic   allow|deny <actions> [<option>...] [--] <topic>
//	@pattern allow|deny <actions> [<option>...] [--] <topic>
//	@subscribe check
//
// @topic joins the current section (anonymous before the first user line,
// else that user's), @pattern the patterns, exactly like topic and pattern
// lines, and they are evaluated with them. <actions> is a comma-separated
// list of publish, subscribe, deliver, or the Mosquitto words read
// (deliver, and subscribe under "@subscribe check"), write (publish) and
// readwrite. A rule that names subscribe requires "@subscribe check"
// somewhere in the file.
//
// Options restrict an allow rule: a request the options refuse is not
// granted by that rule (another grant may still allow it). A deny rule
// takes no options.
//
//	maxqos=0|1|2       publish and subscribe above this QoS are not granted
//	retain=allow|deny  retain=deny: a publish with the retain flag is not granted
//
// The topic is the rest of the line, trimmed; "--" ends the options when a
// topic itself starts with "word=". In @pattern topics a '%' must start a
// whole-level substitution: %c, %u, or %{name}, the value of the attribute
// that authentication attached to the client (the first one called name).
// Like %c and %u, an attribute that is absent, empty or contains '+', '#'
// or '/' makes the rule not match. For example:
//
//	@subscribe check
//	@pattern allow publish,subscribe,deliver maxqos=1 retain=deny tenants/%{tenant}/%u/#
//	@pattern deny publish tenants/%{tenant}/broadcast
//
// # Errors
//
// [Parse] reports every malformed line, each as a *[SyntaxError] naming the
// file and line: `acl: acl.conf:12: unknown access "rw"`.
package aclfile
