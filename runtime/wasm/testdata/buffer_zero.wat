;; buffer_zero: moat_buffer answers 0 (out of memory, in most allocators)
;; for anything above 4096 bytes, so a large request has no buffer; the
;; default 4096 gets one. Address 0 is in memory, so only the 0 itself
;; shows the failure.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 4096))
      (then (i32.const 1024))
      (else (i32.const 0))))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
)
