// Package passwdfile reads, checks and writes Mosquitto-style password
// files, so that a user moving from Mosquitto or mosquitto-go-auth can bring
// their file unchanged. It is the logic of the passwd plugin and of
// `moat passwd`; it is pure Go and builds for GOOS=wasip1 GOARCH=wasm.
//
// # File syntax
//
// One user per line, "username:hash". Mosquitto's rules: the username and the
// hash are trimmed of blanks, the username ends at the first ':'. Blank lines
// and lines whose first non-blank character is '#' are skipped; a UTF-8 BOM
// and CRLF line endings are tolerated. Anything else is a load error naming
// the file and line, never a silently skipped line (Mosquitto skips lines
// without ':' and entries it cannot decode, which turns a typo into a locked
// out user): "passwd: users.txt:7: unknown hash format "$5$"". A user listed
// twice is an error. An empty file is valid and denies everyone.
//
// # Formats, mixed freely in one file
//
//	$6$<salt>$<hash>                 Mosquitto ≤1.6: ONE SHA-512 over password||salt
//	                                 (not glibc's SHA-crypt), standard base64
//	$7$<iter>$<salt>$<hash>          Mosquitto 2.x: PBKDF2-HMAC-SHA512, 64-byte key,
//	                                 any salt length (2.0 writes 12 bytes, 2.1 64)
//	$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash>
//	                                 PHC string, base64 without padding (libargon2,
//	                                 mosquitto-go-auth, Mosquitto's 2.1 sources)
//	$2a$<cost>$<53 chars>            bcrypt; also $2b$ and $2y$ (not the buggy $2x$)
//	PBKDF2$sha256$<iter>$<salt>$<hash>
//	PBKDF2$sha512$<iter>$<salt>$<hash>
//	                                 mosquitto-go-auth; hash in standard base64, any
//	                                 key length ≥ 16 bytes; salt per Options
//	$scram-sha-256$i=<iter>$<salt>$<StoredKey>$<ServerKey>
//	$scram-sha-512$i=<iter>$<salt>$<StoredKey>$<ServerKey>
//	                                 SCRAM credentials (see package scramauth); they
//	                                 serve the scram plugin and also plain passwords
//
// mosquitto-go-auth's PBKDF2 salt is, by default (hasher_salt_encoding
// base64), the base64 text decoded; with hasher_salt_encoding utf-8, and in
// its releases before that option existed, the salt text itself. The file
// does not say which: Options.GoAuthSaltEncoding does.
//
// # Caps
//
// The parameters of a hash come from the file, and the plugin pays for them
// on every CONNECT in a pooled wasm instance. A file must not be able to make
// one check take minutes or an instance hold gigabytes, so parameters above
// these caps are load errors. Worst cases, measured on a shared 2-core Xeon,
// native and in wasm under wazero (Go's SHA-2 and argon2 are 6 to 50 times
// slower in wasm, which has no SHA or vector instructions):
//
//   - PBKDF2 (both $7$ and go-auth, and SCRAM lines): at most 2,000,000
//     iterations: 2.3 s (SHA-512) native, 15-25 s in wasm. OWASP asks for
//     210,000 (SHA-512) or 600,000 (SHA-256); Mosquitto writes 101 or 1000.
//   - bcrypt: cost at most 15 (2^15 rounds): about 3 s native, 8 s in wasm;
//     10 to 12 are usual.
//   - argon2id: m ≤ 262144 KiB (256 MiB: RFC 9106's second recommendation is
//     64 MiB, Mosquitto 2.1 writes 46 MiB; a wasm instance keeps the memory
//     it grew to, and needs a memory_limit above m), t ≤ 64, p ≤ 16, and
//     m·t ≤ 1,048,576 KiB (1 GiB of block passes: about 1 s native, 6 s in
//     wasm), so large memory and many passes cannot be combined.
//   - salts 1 to 1024 bytes; digests at most 1024 bytes; lines at most 256 KiB.
//
// The plugin's [[plugin]] timeout must cover the file's hashes: Hash's
// argon2id default takes about 35 ms native and 230 ms in wasm, bcrypt cost
// 10 about 100 and 240 ms, a Mosquitto $7$ with 101 iterations 0.13 and
// 0.75 ms. The passwd plugin does not pay the wasm figures: it passes
// Options.Hasher = sdk/go/hostcrypto's, so that PBKDF2, argon2id and
// bcrypt run in the broker at native speed (sdk/ABI.md §6, "Password
// hashing"). The broker caps argon2id at m·t ≤ 262,144 KiB, a quarter of
// the cap above; the plugin computes larger ones inside wasm.
//
// # Timing
//
// Verify compares in constant time (crypto/subtle), and a user who is not in
// the file costs what a user who is costs: the password is checked against
// the most common kind of hash in the file, and the answer thrown away. A
// file mixing costly and cheap hashes still lets an attacker tell users of
// the two kinds apart by timing; keep one format per file.
//
// # Passwords
//
// Passwords are the bytes of the MQTT password field. Mosquitto 2.0 stops at
// a NUL byte (it uses C strings); this package does not, so a password with a
// NUL that Mosquitto accepted by its prefix is refused. bcrypt ignores bytes
// past the 72nd, as every bcrypt does.
package passwdfile
