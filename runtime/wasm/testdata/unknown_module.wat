;; Imports from a module moat does not provide, and a global.
(module
  (import "env" "abort" (func (param i32)))
  (import "env" "limit" (global i32))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024)) (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
