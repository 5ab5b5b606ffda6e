;; Needs 100 pages (6.25 MiB) from the start.
(module (memory (export "memory") 100)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
