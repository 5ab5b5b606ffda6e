;; deep: recursion that grows wazero's engine stack. moat_authorize with a
;; topic starting 'd' recurses 10,000 calls deep (some 1 MiB of engine
;; stack, within the stack budget of the default memory_limit) and allows;
;; with 'D' it recurses 400,000 calls deep (tens of megabytes, past any
;; stack budget) and allows if it returns; any other byte allows at once.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 4096))
      (then (i32.const 1024))
      (else (i32.const 0))))
  (func $first (param $id i32) (result i32)
    (i32.load8_u (i32.add (i32.const 1024) (i32.load (i32.add (i32.const 1040) (i32.shl (local.get $id) (i32.const 3)))))))
  (func $deep (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $deep (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (if (i32.eq (call $first (i32.const 5)) (i32.const 0x64)) ;; 'd'
      (then (drop (call $deep (i32.const 10000)))))
    (if (i32.eq (call $first (i32.const 5)) (i32.const 0x44)) ;; 'D'
      (then (drop (call $deep (i32.const 400000)))))
    (i32.const 1))
)
