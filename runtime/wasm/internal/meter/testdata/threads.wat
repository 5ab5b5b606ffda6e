;; Threads (atomics on shared memory, atomic.fence) and tail calls
;; (return_call, return_call_indirect).
(module
  (type $t (func (param i32) (result i32)))
  (memory (export "memory") 1 1 shared)
  (table 1 funcref)
  (elem (i32.const 0) $dec)

  ;; dec tail-calls itself n times through the table; without real tail
  ;; calls 100000 frames would overflow the stack.
  (func $dec (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (return_call_indirect (type $t)
        (i32.sub (local.get $n) (i32.const 1)) (i32.const 0)))))

  (func $finish (param $n i32) (result i32)
    (drop (call $dec (local.get $n)))
    (i32.add
      (i32.atomic.load (i32.const 0))
      (memory.atomic.notify (i32.const 0) (i32.const 1))))

  (func (export "count") (param $n i32) (result i32)
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (atomic.fence)
      (drop (i64.atomic.rmw32.cmpxchg_u (i32.const 8) (i64.const 0) (i64.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (return_call $finish (i32.const 100000))))
