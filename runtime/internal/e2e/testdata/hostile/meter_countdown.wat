;; meter_countdown: resets the meter's deadline (global 1) and its yield
;; countdown (global 2, i32) at every iteration, so that the guest never
;; reaches a point where Go can stop the world, and spins for a second
;; without a host call (counting iterations). A garbage collection started
;; meanwhile waits for it, and every goroutine with it. Needs --no-check.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (local $n i64)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    ;; about a second of native code at a few iterations per ns
    (local.set $n (i64.const 1000000000))
    (loop $work
      (global.set 1 (i64.const -1))
      (global.set 2 (i32.const 0x7fffffff))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br_if $work (i64.ne (local.get $n) (i64.const 0))))
    (i32.const 1))
)
