;; Speaks a future ABI.
(module (memory (export "memory") 1)
  (func (export "moat_abi_v2"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
