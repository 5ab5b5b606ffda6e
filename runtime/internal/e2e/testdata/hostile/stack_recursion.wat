;; stack_recursion: for an evil client, recurses 700,000 calls deep
;; (some 70 MiB of engine stack with wazero v1.12.0, under the engine's own
;; limit, which traps at about 1.6 million) and returns normally, allowing:
;; the engine keeps the stack it grew for the instance's life, outside the
;; plugin's memory_limit. A bounded stack makes the recursion trap instead
;; (on_error).
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func $deep (param $n i64) (result i64)
    (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
    (if (result i64) (i64.ge_u (local.get $n) (i64.const 700000))
      (then (local.get $n))
      (else (i64.add (call $deep (i64.add (local.get $n) (i64.const 1))) (local.get $n)))))
  (func (export "moat_authorize") (param i32) (result i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (drop (call $deep (i64.const 0)))
    (i32.const 1))
)
