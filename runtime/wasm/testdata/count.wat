;; count(n) loops n times: for BenchmarkGuestLoop, the cost of the
;; preemption check per loop iteration.
(module (func (export "count") (param $n i32) (result i32)
  (loop $l
    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
    (br_if $l (local.get $n)))
  (local.get $n)))
