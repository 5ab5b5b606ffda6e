;; wild_pointers: on an evil request, hands the host pointers outside
;; memory, or reads outside memory itself; which one is chosen by the last
;; byte of the topic (field 5). Each must trap; a call that returns allows.
(module
  (import "moat" "log" (func $log (param i32 i32 i32)))
  (import "moat" "set_message" (func $set_message (param i32 i32) (result i32)))
  (import "moat" "random" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (local $variant i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    ;; field 5 (topic): descriptor at 1024 + 16 + 5*8
    (local.set $variant
      (i32.and (i32.load8_u (i32.add (i32.const 1023)
        (i32.add (i32.load (i32.const 1080)) (i32.load (i32.const 1084))))) (i32.const 3)))
    (block $done
      (block $v3 (block $v2 (block $v1 (block $v0
        (br_table $v0 $v1 $v2 $v3 (local.get $variant)))
        ;; 0: a log line that ends beyond memory
        (call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 4096))
        (br $done))
        ;; 1: a message of 2 GiB
        (drop (call $set_message (i32.const 0) (i32.const 0x7fffffff)))
        (br $done))
        ;; 2: a load far outside memory
        (drop (i32.load (i32.const 0xfffffff0)))
        (br $done))
      ;; 3: random bytes written beyond memory
      (drop (call $random (i32.const 0xffff0000) (i32.const 65536))))
    (i32.const 1))
)
