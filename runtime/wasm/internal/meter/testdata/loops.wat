;; Loops, recursion and branches across the inserted checks.
(module
  (global $calls (mut i32) (i32.const 0))
  (memory (export "memory") 1)

  ;; spin never returns: only preemption stops it.
  (func (export "spin")
    (loop $l (br $l)))

  ;; sum returns 1 + 2 + ... + n.
  (func (export "sum") (param $n i64) (result i64)
    (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next)))
    (local.get $acc))

  ;; fac recurses n times; calls counts the calls.
  (func $fac (export "fac") (param $n i64) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i64) (i64.le_u (local.get $n) (i64.const 1))
      (then (i64.const 1))
      (else (i64.mul (local.get $n)
        (call $fac (i64.sub (local.get $n) (i64.const 1)))))))

  (func (export "calls") (result i32) (global.get $calls))

  ;; nested walks a triangle of an n x m grid: the inner loop leaves for the
  ;; next row with a br to the outer loop, across the inner loop's check.
  (func (export "nested") (param $n i32) (param $m i32) (result i32)
    (local $i i32) (local $j i32) (local $acc i32)
    (block $outer_done
      (loop $outer
        (br_if $outer_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $inner_done
          (loop $inner
            (if (i32.gt_u (local.get $j) (local.get $i))
              (then
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $outer)))
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $m)))
            (local.set $acc (i32.add (local.get $acc)
              (call $classify (i32.add (local.get $i) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $acc))

  ;; classify maps x mod 5 to 10, 20, 30, 40, 40 with br_table.
  (func $classify (export "classify") (param $x i32) (result i32)
    (block $d
      (block $c
        (block $b
          (block $a
            (br_table $a $b $c $d (i32.rem_u (local.get $x) (i32.const 5))))
          (return (i32.const 10)))
        (return (i32.const 20)))
      (return (i32.const 30)))
    (i32.const 40))

  ;; collatz counts the steps from x to 1; br_table inside the loop either
  ;; continues the loop (a backward branch to its check) or leaves it.
  (func (export "collatz") (param $x i32) (result i32)
    (local $steps i32)
    (if (i32.le_u (local.get $x) (i32.const 1))
      (then (return (i32.const 0))))
    (block $exit
      (loop $again
        (if (i32.and (local.get $x) (i32.const 1))
          (then (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 3)) (i32.const 1))))
          (else (local.set $x (i32.shr_u (local.get $x) (i32.const 1)))))
        (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
        (br_table $again $exit (i32.eq (local.get $x) (i32.const 1)))))
    (local.get $steps))

  ;; spin_value loops forever inside a loop that yields a value.
  (func (export "spin_value") (result i32)
    (loop $l (result i32)
      (br $l)))
)
