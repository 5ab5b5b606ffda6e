;; log_flood: for an evil client, logs 4096-byte lines of NUL bytes at
;; level info until the deadline stops it. The broker's log must not grow
;; with it beyond a rate limit.
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
      (call $log (i32.const 1) (i32.const 0x8000) (i32.const 4096))
      (br $flood))
    (i32.const 1))
)
