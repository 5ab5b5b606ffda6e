;; Exports a function under a name in the host's "moat." namespace.
(module (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (func (export "moat.deadline2")))
