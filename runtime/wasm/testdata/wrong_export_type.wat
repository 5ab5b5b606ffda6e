;; moat_authorize has the wrong type; moat_buffer is missing.
(module (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_authorize") (result i32) (i32.const 1)))
