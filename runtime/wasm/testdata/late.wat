;; late: host calls that carry a decision past its deadline. moat_authorize
;; dispatches on the first byte of the topic; any other byte allows at once.
;; On a host that uses what returns late, each of these is an allow that
;; arrives long after a 50 ms timeout.
(module
  (import "moat" "argon2id" (func $argon2id (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  ;; 16 MiB of scratch at 1 MiB, the iovec table at 64 KiB.
  (memory (export "memory") 320)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 4096))
      (then (i32.const 1024))
      (else (i32.const 0))))
  (func $first (param $id i32) (result i32)
    (i32.load8_u (i32.add (i32.const 1024) (i32.load (i32.add (i32.const 1040) (i32.shl (local.get $id) (i32.const 3)))))))
  ;; sixteen 16 MiB random_get calls in straight-line code: no loop header
  ;; for the meter to check at.
  (func $random16
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000))))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (local $c i32) (local $i i32)
    (local.set $c (call $first (i32.const 5)))
    ;; 'a': argon2id with m = 64 MiB, t = 4 (about 0.3 s natively)
    (if (i32.eq (local.get $c) (i32.const 0x61))
      (then
        (drop (call $argon2id (i32.const 0x100) (i32.const 8) (i32.const 0x200) (i32.const 16)
          (i32.const 4) (i32.const 65536) (i32.const 1) (i32.const 0x300) (i32.const 32)))
        (return (i32.const 1))))
    ;; 'r': 16 x 16 MiB of random_get
    (if (i32.eq (local.get $c) (i32.const 0x72))
      (then (call $random16) (return (i32.const 1))))
    ;; 'w': one fd_write to stdout of 300 iovecs of 16 MiB each (4.7 GiB)
    (if (i32.eq (local.get $c) (i32.const 0x77))
      (then
        (loop $fill
          (i32.store (i32.add (i32.const 0x10000) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0x100000))
          (i32.store (i32.add (i32.const 0x10004) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0x1000000))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $i) (i32.const 300))))
        (drop (call $fd_write (i32.const 1) (i32.const 0x10000) (i32.const 300) (i32.const 0x20)))
        (return (i32.const 1))))
    (i32.const 1))
)
