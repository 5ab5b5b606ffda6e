;; Imported functions, globals (one mutable), memory and table shift the
;; index spaces: the new globals must come after $base, $counter and $own.
(module
  (import "env" "f" (func $f (param i32) (result i32)))
  (import "env" "base" (global $base i32))
  (import "env" "counter" (global $counter (mut i64)))
  (import "env" "mem" (memory 1))
  (import "env" "tab" (table 1 funcref))
  (global $own (mut i32) (i32.const 5))

  ;; get uses every global, so a shifted index would change its result.
  (func (export "get") (result i64)
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    (global.set $own (i32.add (global.get $own) (i32.const 1)))
    (i64.add (global.get $counter)
      (i64.extend_i32_u (i32.add (global.get $base) (global.get $own)))))

  ;; call loops over an imported function.
  (func (export "call") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $f (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc)))
