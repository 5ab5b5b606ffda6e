;; meter_configure: resets the meter's deadline in moat_configure and
;; works there for 8 seconds, then accepts its config. Initialisation has
;; a 5 s deadline: the load must be refused before the 8 s are up.
;; Needs --no-check.
(module
  (import "moat" "time_monotonic" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_configure") (param i32) (result i32)
    (local $end i64)
    (local.set $end (i64.add (call $now) (i64.const 8000000000)))
    (loop $work
      (global.set 1 (i64.const -1))
      (br_if $work (i64.lt_s (call $now) (local.get $end))))
    (i32.const 0))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3))
)
