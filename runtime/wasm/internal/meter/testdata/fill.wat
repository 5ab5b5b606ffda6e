;; One memory.fill of $len bytes per iteration of a loop of $n, for
;; BenchmarkBulk: what charging bulk instructions by their length costs.
(module
  (memory 2)
  (func (export "fill") (param $n i32) (param $len i32) (result i32)
    (local $i i32)
    (loop $l
      (memory.fill (i32.const 0) (local.get $i) (local.get $len))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))
