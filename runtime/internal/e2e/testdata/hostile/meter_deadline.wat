;; meter_deadline: resets the meter's deadline global. The module declares
;; no globals, so index 1 is the deadline the host's meter appends (after
;; its epoch, index 0); setting it to the maximum turns the deadline off.
;; It then works for a second (by the host's monotonic clock) and allows:
;; the allow must not be used. Needs wat2wasm --no-check: it is invalid
;; as written, which is the point.
(module
  (import "moat" "time_monotonic" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (local $end i64)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (global.set 1 (i64.const -1))
    (local.set $end (i64.add (call $now) (i64.const 1000000000)))
    (loop $work
      (global.set 1 (i64.const -1))
      (br_if $work (i64.lt_s (call $now) (local.get $end))))
    (i32.const 1))
)
