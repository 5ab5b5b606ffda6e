package wasm

// Constants of moat ABI v1, mirroring sdk/ABI.md. The spec is the contract;
// these names exist so that the host code says what the spec says, and a
// test (abi_test.go) keeps the two from drifting. Section numbers refer to
// sdk/ABI.md.

// ABIVersion is the one version of the ABI this host speaks (§1).
const ABIVersion = 1

// Exports a module provides (§1).
const (
	// ExportMemory is the linear memory every pointer refers to. Required.
	ExportMemory = "memory"
	// ExportABIVersion declares the ABI, type () -> (). Required; never called.
	ExportABIVersion = "moat_abi_v1"
	// ExportABIPrefix starts every version declaration, so that a module
	// speaking another version is told so rather than "missing export".
	ExportABIPrefix = "moat_abi_v"
	// ExportBuffer is moat_buffer(size i32) -> i32: a pointer to at least
	// size writable bytes owned by the guest, valid until the next call (§2).
	// Required.
	ExportBuffer = "moat_buffer"
	// ExportAuthenticate, ExportAuthorize and ExportPayload are the decision
	// exports, each (len i32) -> i32. At least one is required.
	ExportAuthenticate = "moat_authenticate"
	ExportAuthorize    = "moat_authorize"
	ExportPayload      = "moat_payload"
	// ExportConfigure is moat_configure(len i32) -> i32, optional: receives
	// the plugin config as JSON; non-zero refuses it (§5).
	ExportConfigure = "moat_configure"
	// ExportInitialize is the WASI reactor initialiser () -> (), optional,
	// called once per instance before anything else but the start function.
	ExportInitialize = "_initialize"
)

// Decision names as written in moat.toml's decisions = [...].
const (
	DecisionAuthn   = "authn"
	DecisionAuthz   = "authz"
	DecisionPayload = "payload"
)

// Request kinds, byte 0 of a request (§3).
const (
	KindAuthn   = 1
	KindAuthz   = 2
	KindPayload = 3
)

// Request header layout (§3): a 16-byte header, then nfields descriptors of
// 8 bytes (u32 offset from the start of the request, u32 length), then the
// field data. A descriptor with offset 0 is an absent field.
const (
	HeaderSize     = 16
	DescriptorSize = 8

	offKind     = 0
	offAction   = 1
	offQoS      = 2
	offFlags    = 3
	offProtocol = 4
	offNFields  = 6
	offNumber   = 8
	offTotal    = 12
)

// Request flags, byte 3 of the header (§3).
const (
	FlagRetain    = 1 << 0
	FlagSuperuser = 1 << 1
	FlagCert      = 1 << 2
	FlagPassword  = 1 << 3
)

// Field ids (§3). Each kind carries the descriptors of ids 0 up to the
// highest id defined for it; see fieldCount.
const (
	FieldClientID       = 0
	FieldUsername       = 1
	FieldPassword       = 2
	FieldRemoteAddr     = 3
	FieldListener       = 4
	FieldTopic          = 5
	FieldShareGroup     = 6
	FieldAttributes     = 7
	FieldCertCN         = 8
	FieldCertSANs       = 9
	FieldCertSHA256     = 10
	FieldUserProperties = 11
	FieldAuthMethod     = 12
	FieldAuthData       = 13
	FieldAuthState      = 14
	FieldContentType    = 15
	FieldEnvelopeKeyID  = 16
	FieldMode           = 17
)

// fieldCount is nfields per kind: one more than the highest field id the
// kind defines (§3), so a guest can index the descriptor of any field of its
// kind without checking nfields first.
var fieldCount = [...]uint16{
	KindAuthn:   FieldAuthState + 1,
	KindAuthz:   FieldCertSHA256 + 1,
	KindPayload: FieldMode + 1,
}

// Result packing of a decision's i32 (§4).
const (
	ResultVerdictMask  = 0x0000_00ff
	ResultReasonShift  = 8
	ResultReasonMask   = 0x0000_ff00
	ResultSuperuser    = 1 << 16
	ResultModeShift    = 24
	ResultModeMask     = 0xff00_0000
	ResultReservedMask = 0x00fe_0000 // bits 17-23: must be 0
)

// Verdicts, result bits 0-7 (§4); the same values as policy.Verdict.
const (
	VerdictAllow    = 1
	VerdictDeny     = 2
	VerdictIgnore   = 3
	VerdictContinue = 4
)

// Payload modes, result bits 24-31 of a payload decision (§4).
const (
	ModePlaintext  = 1
	ModeRequireE2E = 2
	ModeAtRest     = 3
	ModeReencrypt  = 4
)

// Host functions, imported from module HostModule (§6).
const (
	HostModule = "moat"
	// WASIModule is the only other module a guest may import from.
	WASIModule = "wasi_snapshot_preview1"

	HostLog           = "log"            // (level i32, ptr i32, len i32) -> ()
	HostTimeNow       = "time_now"       // () -> i64, Unix nanoseconds
	HostTimeMonotonic = "time_monotonic" // () -> i64
	HostRandom        = "random"         // (ptr, len) -> i32
	HostSetMessage    = "set_message"    // (ptr, len) -> i32
	HostAddAttribute  = "add_attribute"  // (kptr, klen, vptr, vlen) -> i32
	HostSetExpiry     = "set_expiry"     // (unix_ns i64) -> i32
	HostSetAuthData   = "set_auth_data"  // (ptr, len) -> i32
	HostSetAuthState  = "set_auth_state" // (ptr, len) -> i32
	HostSetKeyID      = "set_key_id"     // (ptr, len) -> i32
	HostPayloadRead   = "payload_read"   // (offset, ptr, len) -> i32
	HostFileSize      = "file_size"      // (name_ptr, name_len) -> i64; needs [plugin.files]
	HostFileRead      = "file_read"      // (name_ptr, name_len, offset i64, ptr, len) -> i64; needs [plugin.files]

	// Password hashing, always available; limits in hostcrypto.go.
	HostPBKDF2        = "pbkdf2"         // (hash, pw_ptr, pw_len, salt_ptr, salt_len, iterations, out_ptr, out_len) -> i32
	HostArgon2id      = "argon2id"       // (pw_ptr, pw_len, salt_ptr, salt_len, time, memory_kib, threads, out_ptr, out_len) -> i32
	HostBcryptCompare = "bcrypt_compare" // (hash_ptr, hash_len, pw_ptr, pw_len) -> i32: 1 match, 0 mismatch
)

// Status codes host functions return (§6). Success is 0 or a byte count.
const (
	StatusUnavailable = -1 // wrong decision or phase, or capability not granted
	StatusTooLarge    = -2 // too large, or an invalid argument
	StatusIOError     = -3 // file capability: the host could not read the file
)

// Guest log levels, the first argument of log (§6).
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Limits of the host functions (§6).
const (
	MaxMessage       = 1024  // set_message
	MaxAttributes    = 64    // add_attribute: pairs
	MaxAttributeSize = 4096  // add_attribute: key and value bytes in all
	MaxAuthData      = 65535 // set_auth_data, set_auth_state
	MaxKeyID         = 255   // set_key_id
	MaxRandom        = 65536 // random, per call
	MaxFileRead      = 1 << 20
	// MaxLogLine bounds one guest log line; longer lines are cut.
	MaxLogLine = 4096
)

// InitialBuffer is the size the host asks of moat_buffer after
// initialisation (§2).
const InitialBuffer = 4096
