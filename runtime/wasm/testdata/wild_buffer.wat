;; moat_buffer returns a pointer past the end of memory.
(module (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 0xfffff000))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
