//go:build !linux

package server

import "errors"

// sockPeerCred is not implemented here: the admin socket then relies on
// its file mode (0600) alone, and audit records carry no peer uid.
func sockPeerCred(uintptr) (uid, pid int, err error) {
	return 0, 0, errors.New("server: peer credentials are not supported on this platform")
}
