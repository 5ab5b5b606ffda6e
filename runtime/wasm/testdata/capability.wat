;; Imports the file capability.
(module
  (import "moat" "file_read" (func (param i32 i32 i64 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024)) (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
