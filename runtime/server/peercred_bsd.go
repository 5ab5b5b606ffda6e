//go:build darwin || freebsd

package server

import "golang.org/x/sys/unix"

// sockPeerCred reads LOCAL_PEERCRED: the effective uid of the process that
// connected, as the kernel recorded it at connect. The pid is not part of
// it (0: unknown).
func sockPeerCred(fd uintptr) (uid, pid int, err error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, 0, err
	}
	return int(cred.Uid), 0, nil
}
