;; late_init: an initialiser whose host calls run past the init deadline in
;; straight-line code: eight 16 MiB random_get calls in _initialize.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 272)
  (func (export "moat_abi_v1"))
  (func (export "_initialize")
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000)))
    (drop (call $random_get (i32.const 0x100000) (i32.const 0x1000000))))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
)
