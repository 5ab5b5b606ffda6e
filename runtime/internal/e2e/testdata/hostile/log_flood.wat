;; log_flood: for an evil client, logs lines of 64 NUL bytes at level
;; info until the deadline stops it: many lines (a NUL is written as four
;; bytes by a text log handler). The broker must log the module's lines at
;; a bounded rate, however fast the module writes them.
(module
  (import "moat" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (loop $flood
      (call $log (i32.const 1) (i32.const 0x8000) (i32.const 64))
      (br $flood))
    (i32.const 1))
)
