;; logflood: floods the log. moat_authorize with a topic starting 'f'
;; logs 20,000 warn lines of 64 bytes, each half NULs; 'o' logs one line
;; and writes 8 KiB of NULs and a newline to stdout; any other byte allows
;; quietly.
(module
  (import "moat" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; "flood" and 27 NULs, then 32 'x': a line that slog would escape
  (data (i32.const 0x2000) "flood\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
  (data (i32.const 0x3000) "after the flood")
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 4096))
      (then (i32.const 1024))
      (else (i32.const 0))))
  (func $first (param $id i32) (result i32)
    (i32.load8_u (i32.add (i32.const 1024) (i32.load (i32.add (i32.const 1040) (i32.shl (local.get $id) (i32.const 3)))))))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (local $c i32) (local $i i32)
    (local.set $c (call $first (i32.const 5)))
    (if (i32.eq (local.get $c) (i32.const 0x66)) ;; 'f'
      (then
        (loop $flood
          (call $log (i32.const 2) (i32.const 0x2000) (i32.const 64))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $flood (i32.lt_u (local.get $i) (i32.const 20000))))))
    (if (i32.eq (local.get $c) (i32.const 0x6f)) ;; 'o'
      (then
        (call $log (i32.const 2) (i32.const 0x3000) (i32.const 15))
        ;; one stdout write: 8 KiB of NULs at 0x4000, then "\n"
        (i32.store (i32.const 0x100) (i32.const 0x4000))
        (i32.store (i32.const 0x104) (i32.const 0x2001))
        (i32.store8 (i32.const 0x6000) (i32.const 10))
        (drop (call $fd_write (i32.const 1) (i32.const 0x100) (i32.const 1) (i32.const 0x108)))))
    (i32.const 1))
)
