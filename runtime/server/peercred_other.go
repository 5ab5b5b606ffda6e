//go:build !linux && !darwin && !freebsd

package server

import "errors"

// sockPeerCred is not implemented here, so the admin socket refuses every
// request (it cannot tell the broker's user from another): use [admin]
// http with a token_file on this platform.
func sockPeerCred(uintptr) (uid, pid int, err error) {
	return 0, 0, errors.New("peer credentials are not supported on this platform")
}
