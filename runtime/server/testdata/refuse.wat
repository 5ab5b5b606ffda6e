;; refuse: compiles and instantiates, but refuses any config it is given.
(module
  (import "moat" "set_message" (func $set_message (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8192) "this config is refused")
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (func (export "moat_configure") (param i32) (result i32)
    (drop (call $set_message (i32.const 8192) (i32.const 22)))
    (i32.const 1)))
