//go:build wasip1

package files

import "unsafe"

//go:wasmimport moat file_size
func fileSize(namePtr unsafe.Pointer, nameLen int32) int64

//go:wasmimport moat file_read
func fileRead(namePtr unsafe.Pointer, nameLen int32, offset int64, ptr unsafe.Pointer, n int32) int64

func hostFileSize(name string) int64 {
	return fileSize(unsafe.Pointer(unsafe.StringData(name)), int32(len(name)))
}

func hostFileRead(name string, offset int64, p []byte) int64 {
	return fileRead(unsafe.Pointer(unsafe.StringData(name)), int32(len(name)),
		offset, unsafe.Pointer(unsafe.SliceData(p)), int32(min(len(p), 1<<30)))
}
