;; Imports moat.log with the wrong type.
(module
  (import "moat" "log" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024)) (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
