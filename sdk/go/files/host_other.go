//go:build !wasip1

package files

// Outside wasm no file is granted: ReadFile returns ErrNotGranted, so that
// a plugin's native tests see the same error as a module without grants.

func hostFileSize(string) int64 { return statusNotGranted }

func hostFileRead(string, int64, []byte) int64 { return statusNotGranted }
