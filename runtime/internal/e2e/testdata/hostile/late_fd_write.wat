;; late_fd_write: an authz module that, for an evil client, writes 8
;; iovecs of 8 MiB each (its whole memory, 8 times) to stdout with one WASI
;; fd_write: 64 MiB of debug log in one host call. Then it allows if all
;; was written; that allow comes after the deadline and must not be used.
;; A host that bounds the work (an error, or fewer bytes written) makes
;; the module trap.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 128)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (local $i i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    ;; 8 iovecs {ptr 0, len 8 MiB} at 0x10000
    (loop $iov
      (i32.store (i32.add (i32.const 0x10000) (i32.mul (local.get $i) (i32.const 8))) (i32.const 0))
      (i32.store (i32.add (i32.const 0x10004) (i32.mul (local.get $i) (i32.const 8))) (i32.const 0x800000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $iov (i32.lt_u (local.get $i) (i32.const 8))))
    (if (call $fd_write (i32.const 1) (i32.const 0x10000) (i32.const 8) (i32.const 0x10100))
      (then unreachable))
    (if (i32.ne (i32.load (i32.const 0x10100)) (i32.const 0x4000000))
      (then unreachable))
    (i32.const 1))
)
