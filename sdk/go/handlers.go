package moat

// handlers are the functions the module's exports call. They are package
// state because a wasm module's exports are package-level functions; they
// are set from init functions, before the host's first call, and never
// change afterwards.
var handlers struct {
	authn   func(*AuthnRequest) AuthnResult
	authz   func(*AuthzRequest) Result
	payload func(*PayloadRequest) PayloadResult
	config  func(cfg []byte) error
}

// HandleAuthn registers the authentication handler, which answers
// moat_authenticate: every CONNECT, and every AUTH round of MQTT 5 enhanced
// authentication. Call it from an init function: a c-shared module never
// runs main. A later call replaces the handler.
//
// The plugin's decisions in moat.toml must list "authn" if and only if the
// module registers this handler: the SDK always exports
// moat_authenticate, and without a handler it answers every request with
// a malformed result, which the broker counts as a plugin error.
func HandleAuthn(h func(*AuthnRequest) AuthnResult) { handlers.authn = h }

// HandleAuthz registers the authorization handler, which answers
// moat_authorize: every publish, subscription and delivery that the
// broker's decision cache does not answer. The rules of HandleAuthn apply
// ("authz" in decisions).
func HandleAuthz(h func(*AuthzRequest) Result) { handlers.authz = h }

// HandlePayload registers the payload handler, which answers moat_payload
// (sdk/ABI.md §4, payload modes). The rules of HandleAuthn apply
// ("payload" in decisions).
func HandlePayload(h func(*PayloadRequest) PayloadResult) { handlers.payload = h }

// HandleConfig registers the configuration handler. The broker calls it
// once per instance, before any decision, with the plugin's
// [plugin.config] table from moat.toml as a JSON object ("{}" when there is
// none). A non-nil error refuses the configuration: the broker does not
// start (or does not reload) and shows the error's message, so make it
// name the offending key. The handler owns cfg.
//
// A module that registers no configuration handler accepts only "{}" and
// refuses any other configuration.
func HandleConfig(h func(cfg []byte) error) { handlers.config = h }
