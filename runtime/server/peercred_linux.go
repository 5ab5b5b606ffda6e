package server

import "syscall"

// sockPeerCred reads SO_PEERCRED: the credentials of the process that
// connected, as the kernel recorded them at connect.
func sockPeerCred(fd uintptr) (uid, pid int, err error) {
	cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return 0, 0, err
	}
	return int(cred.Uid), int(cred.Pid), nil
}
