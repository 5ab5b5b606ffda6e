;; Writes a line to stdout through WASI and fills bytes with random_get.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (data (i32.const 8192) "hello from wasi\n")
  (func (export "moat_authorize") (param i32) (result i32)
    ;; iovec at 8256: {ptr 8192, len 16}
    (i32.store (i32.const 8256) (i32.const 8192))
    (i32.store (i32.const 8260) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 8256) (i32.const 1) (i32.const 8264)))
    (if (call $random_get (i32.const 8300) (i32.const 16)) (then unreachable))
    (i32.const 1)))
