;; Recursion through every way a function can leave, for the stack guard
;; (Limits.Stack): each export recurses n calls deep and returns n (or, for
;; the tail calls, 0), so that a test can check that the depth global is
;; back to 0 after each call.
(module
  (type $t (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $tail_indirect)
  (tag $boom)

  ;; Falls off the end of its body.
  (func $fall (export "fall") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $fall (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))

  ;; Leaves by return, from inside a block and at the top.
  (func $ret (export "return") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (return (i32.add (call $ret (i32.sub (local.get $n) (i32.const 1))) (i32.const 1))))

  ;; Leaves by br to the function's label, from an if and at the top.
  (func $br (export "br") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (br 1 (i32.const 0))))
    (br 0 (i32.add (call $br (i32.sub (local.get $n) (i32.const 1))) (i32.const 1))))

  ;; Leaves by br_if to the function's label.
  (func $br_if (export "br_if") (param $n i32) (result i32)
    (drop (br_if 0 (i32.const 0) (i32.eqz (local.get $n))))
    (i32.add (call $br_if (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))

  ;; Leaves by br_table to the function's label (its default), and by the
  ;; end after br_table to an inner block.
  (func $br_table (export "br_table") (param $n i32) (result i32)
    (drop (block $inner (result i32)
      (br_table $inner 1 (i32.const 0) (i32.eqz (local.get $n)))))
    (i32.add (call $br_table (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))

  ;; Tail calls: depth stays one frame whatever n is.
  (func $tail (export "return_call") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (return_call $tail (i32.sub (local.get $n) (i32.const 1))))))
  (func $tail_indirect (export "return_call_indirect") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (return_call_indirect (type $t) (i32.sub (local.get $n) (i32.const 1)) (i32.const 0)))))

  ;; Ordinary recursion whose every frame makes a long chain of tail calls.
  (func $mixed (export "mixed") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add
        (call $mixed (i32.sub (local.get $n) (i32.const 1)))
        (i32.add (call $tail (i32.const 100)) (i32.const 1))))))

  ;; Two results and several parameters, leaving by return and by the end.
  (func $pair (param $n i32) (param $a i64) (param $b f64) (result i32 i64)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0) (local.get $a))))
    (call $pair (i32.sub (local.get $n) (i32.const 1)) (i64.add (local.get $a) (i64.const 2)) (local.get $b))
    (local.set $a)
    (i32.add (i32.const 1))
    (local.get $a))
  (func (export "multivalue") (param $n i32) (result i32)
    (call $pair (local.get $n) (i64.const 0) (f64.const 1))
    (i64.const 2)
    (i64.div_u)
    (i32.wrap_i64)
    (i32.ne)
    (if (then (unreachable)))
    (local.get $n))

  ;; Recurses n deep and throws, uncaught: the frames the throw unwinds
  ;; are not counted out. (wat2wasm has no try_table yet: the test that
  ;; catches is built in Go, catchModule.)
  (func $throw (export "throw") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (throw $boom)))
    (call $throw (i32.sub (local.get $n) (i32.const 1))))
)
