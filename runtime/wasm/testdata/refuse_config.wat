;; moat_configure refuses every config, with a message.
(module
  (import "moat" "set_message" (func $set_message (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024)) (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (data (i32.const 8192) "unknown key \"topics\"")
  (func (export "moat_configure") (param i32) (result i32)
    (drop (call $set_message (i32.const 8192) (i32.const 20)))
    (i32.const 1)))
